"""CI wiring: .ci/run runs tests/run.sh; the workflows run .ci/run and the opt-in kind end-to-end."""

from __future__ import annotations

import os

import yaml
from conftest import REPO


def workflow(name: str) -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())


def run_lines(flow: dict) -> list[str]:
    return [step["run"] for job in flow["jobs"].values() for step in job["steps"] if "run" in step]


def test_ci_entry_point_runs_the_suite() -> None:
    entry = REPO / ".ci" / "run"
    assert os.access(entry, os.X_OK)
    text = entry.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert "exec bash tests/run.sh" in text
    assert os.access(REPO / "tests" / "run.sh", os.X_OK)


def test_ci_workflow_runs_ci_run_on_bookworm_within_90_minutes() -> None:
    job = workflow("ci.yml")["jobs"]["test"]
    assert job["container"] == "debian:bookworm" and job["timeout-minutes"] <= 90
    assert job["env"]["CI"] == "true"
    assert "bash .ci/run" in run_lines(workflow("ci.yml"))


def test_kind_workflow_opts_in_to_the_end_to_end() -> None:
    flow = workflow("kind.yml")
    step = next(s for s in flow["jobs"]["e2e"]["steps"] if s.get("run") == "bash tests/kind/e2e.sh")
    assert step["env"]["MARKETPRISM_KIND"] == "1"
