"""The chdb engine runner: statement splitting, one session across statements, failure reporting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("chdb_exec.py")
sys.path.insert(0, str(RUNNER.parent))
from chdb_exec import split_statements  # noqa: E402


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUNNER), *args], input=script, capture_output=True, text=True, timeout=120
    )


def test_split_only_on_lines_holding_a_semicolon() -> None:
    script = "SELECT 'a;b'\n;\n\n  ;  \nSELECT 1;\nSELECT 2\n;\n"
    assert split_statements(script) == ["SELECT 'a;b'", "SELECT 1;\nSELECT 2"]


def test_modern_ddl_runs_in_one_session_and_rows_are_json_lines() -> None:
    script = """
CREATE TABLE t (
  exchange LowCardinality(String),
  id UInt64,
  ts DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
  version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (exchange, id)
TTL toDateTime(ts) + INTERVAL 30 DAY
;
INSERT INTO t VALUES ('okx', 1, now64(3), 1)
;
INSERT INTO t VALUES ('okx', 1, now64(3), 2)
;
SELECT id, version FROM t FINAL ORDER BY id
"""
    result = run(script)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"id": 1, "version": 2}]


def test_marker_separates_results_of_each_statement() -> None:
    result = run("SELECT 1 AS a\n;\nSELECT 2 AS b UNION ALL SELECT 3\n", "--marker")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"__statement__": 1} and lines[1] == {"a": 1}
    assert lines[2] == {"__statement__": 2}
    assert sorted(row["b"] for row in lines[3:]) == [2, 3]


def test_failing_statement_is_named_and_exit_is_non_zero() -> None:
    result = run("SELECT 1\n;\nSELECT no_such_column\n;\nSELECT 3\n")
    assert result.returncode == 1
    assert "statement 2 failed" in result.stderr and "no_such_column" in result.stderr
    assert result.stdout.strip() == '{"1":1}', "statements after the failure must not run"


def test_persistent_path_keeps_tables(tmp_path: Path) -> None:
    assert run("CREATE TABLE kept (x UInt8) ENGINE = MergeTree ORDER BY x\n;\nINSERT INTO kept VALUES (7)",
               "--path", str(tmp_path)).returncode == 0
    result = run("SELECT x FROM kept", "--path", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"x": 7}


@pytest.mark.parametrize("script", ["", "\n;\n  \n"])
def test_empty_script_is_a_usage_error(script: str) -> None:
    assert run(script).returncode == 2
