"""Fixtures for the Helm chart tests: the real Helm v4 SDK (helm-python-sdk) loads, lints and renders offline."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "marketprism"
VALUES_DIR = Path(__file__).resolve().parent / "values"
RELEASE = "mp"
NAMESPACE = "marketprism"

Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def load_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((VALUES_DIR / name).read_text())


def sample_values_files() -> list[str]:
    return sorted(p.name for p in VALUES_DIR.glob("*.yaml"))


def parse(rendered: dict[str, str]) -> list[Manifest]:
    """All objects of a render, NOTES.txt excluded, each tagged with the template it came from."""
    objects: list[Manifest] = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__template__"] = template
                objects.append(doc)
    return objects


@pytest.fixture(scope="session")
def render(chart: helm.Chart) -> Callable[..., list[Manifest]]:
    def _render(values: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> list[Manifest]:
        return parse(chart.render(values=copy.deepcopy(values), name=RELEASE, namespace=namespace, is_install=True))

    return _render


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_specs(objects: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in objects
            if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]
