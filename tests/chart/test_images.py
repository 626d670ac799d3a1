"""Static checks of the Dockerfiles and .dockerignore (images cannot be built on machines without a Docker engine)."""

from __future__ import annotations

import fnmatch
import re
import tomllib

import pytest
import yaml
from conftest import REPO

IMAGES = {"collector": "marketprism-collector", "operator": "marketprism-operator"}


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / dockerfile).read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize(("crate", "binary"), IMAGES.items())
def test_image_is_multi_stage_distroless_and_non_root(crate: str, binary: str) -> None:
    steps = instructions(f"{crate}/Dockerfile")
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) == 2 and " AS builder" in stages[0]
    assert stages[1].startswith("gcr.io/distroless/cc-debian12:nonroot"), "runtime: no shell, no package manager"
    final = steps[[i for i, (op, _) in enumerate(steps) if op == "FROM"][1]:]
    assert ("USER", "65532:65532") in final
    assert ("ENTRYPOINT", f'["/usr/local/bin/{binary}"]') in final
    copy = [args for op, args in final if op == "COPY"]
    assert copy == [f"--from=builder /out/{binary} /usr/local/bin/{binary}"]
    build = next(args for op, args in steps if op == "RUN" and "cargo build" in args)
    assert f"-p {binary} --bin {binary}" in build and "--release" in build and "--locked" in build


@pytest.mark.parametrize(("crate", "binary"), IMAGES.items())
def test_built_binary_is_declared_by_the_crate(crate: str, binary: str) -> None:
    manifest = tomllib.loads((REPO / crate / "Cargo.toml").read_text())
    assert manifest["package"]["name"] == binary
    assert binary in [b["name"] for b in manifest.get("bin", [])]


def test_collector_image_serves_the_simulator_port() -> None:
    exposed = " ".join(args for op, args in instructions("collector/Dockerfile") if op == "EXPOSE").split()
    assert {"9100", "9200"} <= set(exposed)


def ignored(path: str, patterns: list[str]) -> bool:
    hit = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        glob = pattern.replace("**/", "*")
        if fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(path, pattern + "/*") or path == pattern:
            hit = not negate
    return hit


def test_dockerignore_keeps_the_workspace_and_drops_heavy_dirs() -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    workspace = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    needed = ["Cargo.toml", "Cargo.lock", *[f"{m}/Cargo.toml" for m in workspace], "collector/src/lib.rs",
              "operator/src/lib.rs", "tests/src/lib.rs"]
    assert [p for p in needed if ignored(p, patterns)] == []
    for heavy in ("target/debug/x", ".git/HEAD", ".venv/bin/python", "charts/marketprism/Chart.yaml"):
        assert ignored(heavy, patterns), heavy


def test_chart_app_version_is_the_workspace_version() -> None:
    chart = yaml.safe_load((REPO / "charts" / "marketprism" / "Chart.yaml").read_text())
    workspace = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    assert chart["appVersion"] == workspace, "image tags default to appVersion: keep it equal to the crates' version"
    for crate in IMAGES:
        version = next(args for op, args in instructions(f"{crate}/Dockerfile") if op == "ARG" and "VERSION=" in args
                       and "RUST" not in args)
        assert version == f"VERSION={workspace}"
