"""The kind test's ClickHouse checks, run on a modern engine (chdb) against the collector's real production DDL:
a hole in trade ids is reported unless a gap row covers it, and FINAL collapses redelivered trades."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHDB_EXEC = REPO / "tests" / "engine" / "chdb_exec.py"
sys.path.insert(0, str(HERE))
from uncovered_holes import uncovered  # noqa: E402


def collector_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "debug" / "marketprism-collector"
    if not binary.exists():
        pytest.skip(f"{binary} not built (tests/run.sh builds it in its cargo test step)")
    return binary


def production_ddl() -> str:
    """`marketprism-collector schema` for the dev-mode ClickHouse (24.8), in chdb_exec's statement format."""
    out = subprocess.run([collector_binary(), "schema", "--server-version", "24.8"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    statements = [s.strip() for s in out.split(";\n") if s.strip()]
    for table in ("marketprism_hot.trades", "marketprism_hot.gaps"):
        assert any(table in s for s in statements), table
    return "\n;\n".join(statements)


def trade(symbol: str, trade_id: int, ts_ms: int, recv_ms: int) -> str:
    return (f"('binance_derivatives', 'perpetual', '{symbol}', fromUnixTimestamp64Milli({ts_ms}), "
            f"fromUnixTimestamp64Milli({recv_ms}), '{trade_id}', 100.5, 0.01, 'buy', 0.01, 'base')")


def query_rows(script: str) -> list[list[list[str]]]:
    """Rows (as strings, in column order) of each statement of script, via chdb_exec --marker."""
    result = subprocess.run([sys.executable, str(CHDB_EXEC), "--marker"], input=script, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    per_statement: list[list[list[str]]] = []
    for line in result.stdout.splitlines():
        row = json.loads(line)
        if "__statement__" in row:
            per_statement.append([])
        else:
            per_statement[-1].append([str(v) for v in row.values()])
    return per_statement


def test_holes_are_found_and_only_recorded_gaps_excuse_them() -> None:
    base = int(time.time()) * 1000 - 60_000  # recent: the hot tables' TTL drops old rows on insert
    # BTC-USDT: ids 1,2,3,5,6,9 (holes 3->5 and 6->9), id 2 delivered twice; ETH-USDT contiguous.
    trades = [trade("BTC-USDT", i, base + i * 10, base + i * 10 + 1) for i in (1, 2, 3, 5, 6, 9)]
    trades += [trade("BTC-USDT", 2, base + 20, base + 500)]
    trades += [trade("ETH-USDT", 7, base, base), trade("ETH-USDT", 8, base, base)]
    gap = (f"('binance_derivatives', 'perpetual', 'BTC-USDT', fromUnixTimestamp64Milli({base + 31}), "
           f"fromUnixTimestamp64Milli({base + 40}), 'trades', fromUnixTimestamp64Milli({base + 31}), "
           f"fromUnixTimestamp64Milli({base + 49}), 'disconnect', 'failover')")
    script = "\n;\n".join([
        production_ddl(),
        "INSERT INTO marketprism_hot.trades VALUES " + ", ".join(trades),
        "INSERT INTO marketprism_hot.gaps VALUES " + gap,
        (HERE / "sql" / "trade_holes.sql").read_text(),
        (HERE / "sql" / "trade_gaps.sql").read_text(),
        "SELECT count() - uniqExact(symbol, trade_id) FROM marketprism_hot.trades FINAL",
    ])
    *_, holes, gaps, dupes = query_rows(script)
    assert [h[:3] for h in holes] == [["BTC-USDT", "3", "5"], ["BTC-USDT", "6", "9"]]
    assert gaps == [["BTC-USDT", str(base + 31), str(base + 49), "disconnect"]]
    assert [h[:3] for h in uncovered(holes, gaps)] == [["BTC-USDT", "6", "9"]], "only the gap-less hole is reported"
    assert dupes == [["0"]], "FINAL must collapse the redelivered trade"


def test_checker_cli_exit_codes() -> None:
    checker = HERE / "uncovered_holes.py"
    hole = "BTC-USDT\t6\t9\t1000\t2000\n"
    covering_gap = "BTC-USDT\t1500\t1600\tdisconnect\n"
    other_symbol_gap = "ETH-USDT\t1500\t1600\tdisconnect\n"
    run = lambda h, g: subprocess.run([sys.executable, str(checker), h, g], capture_output=True, text=True)  # noqa: E731
    assert run(hole, covering_gap).returncode == 0
    failed = run(hole, other_symbol_gap)
    assert failed.returncode == 1 and "ids 6 -> 9" in failed.stderr
    assert run("", "").returncode == 0
