"""values.schema.json: strict (unknown keys rejected everywhere), accepts the shipped values, rejects bad ones."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml
from conftest import CHART_DIR, load_values, sample_values_files

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def merged(overrides: dict[str, Any]) -> dict[str, Any]:
    """values.yaml with overrides deep-merged, as Helm coalesces them."""

    def merge(base: Any, top: Any) -> Any:
        if isinstance(base, dict) and isinstance(top, dict):
            return {k: merge(base.get(k), top[k]) if k in top else v for k, v in base.items()} | {
                k: v for k, v in top.items() if k not in base
            }
        return top

    return merge(DEFAULTS, overrides)


def object_schemas(node: Any, path: str = "#") -> list[tuple[str, dict]]:
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            found.append((path, node))
        for key, child in node.items():
            found.extend(object_schemas(child, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found.extend(object_schemas(child, f"{path}/{i}"))
    return found


def test_schema_is_a_valid_draft7_schema_and_strict_everywhere() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    objects = object_schemas(SCHEMA)
    assert len(objects) > 15
    loose = [path for path, node in objects if node.get("additionalProperties") is not False]
    assert loose == [], f"objects accepting unknown keys: {loose}"


def test_every_default_value_is_described_by_the_schema() -> None:
    """A key in values.yaml missing from the schema would be rejected by the strict schema; check both ways."""
    jsonschema.Draft7Validator(SCHEMA).validate(DEFAULTS)

    def keys(values: dict, schema: dict, path: str) -> None:
        props = schema.get("properties", {})
        for key, value in values.items():
            sub = props.get(key)
            assert sub is not None, f"{path}.{key} not in schema"
            if "$ref" in sub:
                sub = SCHEMA["definitions"][sub["$ref"].rsplit("/", 1)[1]]
            if isinstance(value, dict) and "properties" in sub:
                keys(value, sub, f"{path}.{key}")

    keys(DEFAULTS, SCHEMA, "values")


@pytest.mark.parametrize("name", sample_values_files())
def test_sample_values_pass_both_validators(chart: helm.Chart, name: str) -> None:
    values = load_values(name)
    chart.validate_schema(values)
    jsonschema.Draft7Validator(SCHEMA).validate(merged(values))


BAD_VALUES = [
    ({"bogus": 1}, "additional properties 'bogus'"),
    ({"operator": {"replicaCount": 2}}, "additional properties 'replicaCount'"),
    ({"operator": {"replicas": 0}}, "/operator/replicas"),
    ({"operator": {"replicas": "2"}}, "/operator/replicas"),
    ({"operator": {"image": {"pullPolicy": "Sometimes"}}}, "/operator/image/pullPolicy"),
    ({"operator": {"image": {"digest": "sha256:abc"}}}, "/operator/image/digest"),
    ({"operator": {"image": {"tag": "bad tag"}}}, "/operator/image/tag"),
    ({"operator": {"port": 70000}}, "/operator/port"),
    ({"operator": {"watchNamespace": "Not_A_Namespace"}}, "/operator/watchNamespace"),
    ({"operator": {"resources": {"limits": {"memory": "lots"}}}}, "/operator/resources/limits/memory"),
    ({"operator": {"livenessProbe": {"periodSeconds": 0}}}, "/operator/livenessProbe"),
    ({"operator": {"extraEnv": [{"value": "no name"}]}}, "/operator/extraEnv/0"),
    ({"metrics": {"serviceMonitor": {"interval": "soon"}}}, "/metrics/serviceMonitor/interval"),
    ({"metrics": {"prometheusRule": {"floorHitRate": {"ratio": 60}}}}, "/metrics/prometheusRule/floorHitRate/ratio"),
    ({"metrics": {"prometheusRule": {"latencyP99": {"thresholdSeconds": 0}}}},
     "/metrics/prometheusRule/latencyP99/thresholdSeconds"),
    ({"metrics": {"prometheusRule": {"silentStreams": {"afterSeconds": {"trades": -1}}}}},
     "/metrics/prometheusRule/silentStreams/afterSeconds/trades"),
    ({"metrics": {"prometheusRule": {"silentStreams": {"afterSeconds": {"trade": 60}}}}}, "additional properties 'trade'"),
    ({"metrics": {"prometheusRule": {"writeErrors": {"for": "a while"}}}}, "/metrics/prometheusRule/writeErrors/for"),
    ({"dev": {"enabled": "yes"}}, "/dev/enabled"),
    ({"dev": {"simulator": {"ratePerSecond": 0}}}, "/dev/simulator/ratePerSecond"),
    ({"dev": {"nats": {"image": {"tag": ""}}}}, "/dev/nats/image/tag"),
    ({"imagePullSecrets": ["registry"]}, "/imagePullSecrets/0"),
    ({"commonLabels": {"team": 7}}, "/commonLabels/team"),
]


@pytest.mark.parametrize(("values", "expected"), BAD_VALUES, ids=[e for _, e in BAD_VALUES])
def test_bad_values_are_rejected_naming_the_field(chart: helm.Chart, values: dict, expected: str) -> None:
    with pytest.raises(helm.HelmValuesError) as helm_error:
        chart.validate_schema(values)
    assert expected in str(helm_error.value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(merged(values))
    # An install renders through the same gate: bad values never reach a template.
    with pytest.raises(helm.HelmValuesError):
        chart.render(values=values, name="mp", namespace="marketprism")
