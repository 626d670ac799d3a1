"""The dev-mode simulator's rendered config is accepted by the real `marketprism-collector simulate`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import RELEASE, REPO, one


def collector_binary() -> Path:
    binary = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "marketprism-collector"
    if not binary.exists():
        pytest.skip(f"{binary} not built (tests/run.sh builds it in its cargo test step)")
    return binary


def test_rendered_simulator_config_starts_the_simulator(render, tmp_path: Path) -> None:
    objects = render({"dev": {"enabled": True, "simulator": {"enabled": True, "seed": 9, "ratePerSecond": 5}}})
    config = one(objects, "ConfigMap", f"{RELEASE}-marketprism-simulator")["data"]["config.yaml"]
    assert yaml.safe_load(config)["simulator"] == {"seed": 9, "rate_per_s": 5, "listen": "0.0.0.0:9200"}
    path = tmp_path / "config.yaml"
    path.write_text(config)
    # Same args as the Deployment, plus a free loopback port instead of 0.0.0.0:9200.
    deployment = one(objects, "Deployment", f"{RELEASE}-marketprism-simulator")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["simulate", "--config", "/etc/marketprism/config.yaml"]
    process = subprocess.Popen([collector_binary(), "simulate", "--config", str(path), "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_line = process.stdout.readline()
        assert first_line, process.stderr.read() if process.poll() is not None else "no output"
        started = json.loads(first_line)
        assert started["endpoints"]["binance_derivatives"]["ws_url"].endswith("/binance_derivatives")
        assert process.poll() is None, "simulator exited after starting"
    finally:
        process.terminate()
        process.wait(timeout=30)
