"""The kind end-to-end script without a cluster: opt-in behaviour and the CollectorSet it applies."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "kind" / "e2e.sh"
ALL_DATA_TYPES = {"orderbooks", "trades", "funding_rates", "open_interests", "liquidations", "lsr_top_positions",
                  "lsr_all_accounts", "volatility_indices"}


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_skips_with_exit_0_unless_opted_in() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MARKETPRISM_KIND"}
    result = run(env)
    assert result.returncode == 0
    assert "skipped" in result.stdout and "MARKETPRISM_KIND=1" in result.stdout


def test_opted_in_without_tools_fails_naming_the_tool(tmp_path: Path) -> None:
    # A PATH with bash and coreutils only: docker/kind/helm are missing.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = run({"PATH": str(bin_dir), "MARKETPRISM_KIND": "1", "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert re.search(r"'(docker|kind|kubectl|helm|python3)' is not installed", result.stderr), result.stderr


def generated_collectorset(symbols: str) -> dict:
    """Runs the script's `collectorset` function on its own."""
    text = SCRIPT.read_text()
    start = text.index("collectorset() {")
    end = text.index("\nEOF\n", start) + len("\nEOF\n")
    function = text[start:end] + "}\n"
    script = f"SIMULATOR=sim:9200\n{function}collectorset {symbols}\n"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=30).stdout
    return json.loads(out)


def test_applied_collectorset_covers_all_8_data_types_with_a_standby() -> None:
    cs = generated_collectorset("BTC-USDT,ETH-USDT")
    types = {t for exchange in cs["spec"]["exchanges"] for t in exchange["dataTypes"]}
    assert types == ALL_DATA_TYPES
    assert cs["spec"]["replicasPerShard"] == 2, "failover needs a standby"
    assert cs["spec"]["exchanges"][0]["symbols"] == ["BTC-USDT", "ETH-USDT"]
    binance, deribit = cs["spec"]["exchanges"]
    assert binance["endpoints"] == {"wsUrl": "ws://sim:9200/binance_derivatives",
                                    "restUrl": "http://sim:9200/binance_derivatives"}
    assert deribit["endpoints"]["wsUrl"] == "ws://sim:9200/deribit_derivatives"


def test_applied_collectorset_is_valid_for_the_crd() -> None:
    crd = yaml.safe_load((REPO / "crds" / "collectorset.yaml").read_text())
    schema = next(v for v in crd["spec"]["versions"] if v.get("storage"))["schema"]["openAPIV3Schema"]
    cs = generated_collectorset("BTC-USDT")
    jsonschema.Draft7Validator(schema).validate(cs)
    assert cs["apiVersion"] == f"{crd['spec']['group']}/{next(v['name'] for v in crd['spec']['versions'])}"
    assert cs["kind"] == crd["spec"]["names"]["kind"]
