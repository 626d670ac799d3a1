"""Lint and render the chart with defaults, dev mode and the sample values; check the objects it produces."""

from __future__ import annotations

import subprocess
from pathlib import Path

import helm_python as helm
import jsonschema
import pytest
import yaml
from conftest import CHART_DIR, NAMESPACE, RELEASE, find, load_values, one, pod_specs, sample_values_files

OPERATOR = f"{RELEASE}-marketprism-operator"
LINT_ERROR, LINT_WARNING = 3, 2


@pytest.mark.parametrize(
    "values",
    [None, {"dev": {"enabled": True}}, *[load_values(name) for name in sample_values_files()]],
    ids=["defaults", "dev", *sample_values_files()],
)
def test_lint_strict_has_no_errors_or_warnings(values: dict | None) -> None:
    report = helm.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= LINT_WARNING]
    assert report["errors"] == [] and problems == [], report


def test_lint_reports_a_broken_template(tmp_path: Path) -> None:
    """The lint gate can fail: a template with a syntax error is an error finding."""
    with helm.Chart.load(CHART_DIR) as chart:
        broken_dir = Path(chart.save_dir(tmp_path))
    (broken_dir / "templates" / "broken.yaml").write_text("{{ .Values.operator.replicas | nope }}\n")
    report = helm.lint(broken_dir, strict=True)
    assert report["errors"] or any(m["severity"] == LINT_ERROR for m in report["messages"]), report


def kinds(objects: list[dict]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


def test_defaults_render_operator_rbac_and_dashboard_only(render) -> None:
    objects = render()
    assert kinds(objects) == {
        ("ServiceAccount", OPERATOR),
        ("ClusterRole", OPERATOR),
        ("ClusterRoleBinding", OPERATOR),
        # Leases and Secret reads only in the release namespace (where CollectorSets go by default).
        ("Role", OPERATOR),
        ("RoleBinding", OPERATOR),
        ("Deployment", OPERATOR),
        ("Service", OPERATOR),
        ("PodDisruptionBudget", OPERATOR),
        ("ConfigMap", f"{RELEASE}-marketprism-dashboard"),
    }
    namespaced = [o for o in objects if o["kind"] not in ("ClusterRole", "ClusterRoleBinding")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {NAMESPACE}


def test_dev_mode_adds_nats_clickhouse_and_simulator(render) -> None:
    extra = kinds(render({"dev": {"enabled": True}})) - kinds(render())
    assert extra == {
        (kind, f"{RELEASE}-marketprism-{component}")
        for component in ("nats", "clickhouse", "simulator")
        for kind in ("Deployment", "Service")
    } | {("ConfigMap", f"{RELEASE}-marketprism-simulator")}
    without_simulator = kinds(render({"dev": {"enabled": True, "simulator": {"enabled": False}}}))
    assert not any("simulator" in name for _, name in without_simulator)


def test_dev_nats_runs_jetstream_and_is_probed_on_js_health(render) -> None:
    nats = one(render({"dev": {"enabled": True}}), "Deployment", f"{RELEASE}-marketprism-nats")
    container = nats["spec"]["template"]["spec"]["containers"][0]
    assert "-js" in container["args"] and container["args"][container["args"].index("-sd") + 1] == "/data"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz?js-enabled-only=true"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/data" in mounts


def test_simulator_runs_the_collector_image_with_its_config(render) -> None:
    objects = render({"dev": {"enabled": True, "simulator": {"enabled": True, "seed": 7, "ratePerSecond": 5}},
                      "collector": {"image": {"repository": "c", "tag": "t1", "pullPolicy": "Never"}}})
    sim = one(objects, "Deployment", f"{RELEASE}-marketprism-simulator")
    container = sim["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "c:t1" and container["args"][0] == "simulate"
    config = one(objects, "ConfigMap", f"{RELEASE}-marketprism-simulator")["data"]["config.yaml"]
    assert "seed: 7" in config and "rate_per_s: 5" in config and "listen: 0.0.0.0:9200" in config


def test_operator_deployment_runs_leader_elected_replicas(render) -> None:
    deployment = one(render(), "Deployment", OPERATOR)
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, "a standby must exist during rollouts"
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/marketprism/marketprism-operator:0.1.0"
    assert container["args"] == [
        "run",
        "--listen=0.0.0.0:8080",
        "--leader-lease=marketprism-operator",
        "--collector-image=ghcr.io/marketprism/marketprism-collector:0.1.0",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["RUST_LOG"]["value"] == "info"
    assert spec["template"]["spec"]["serviceAccountName"] == OPERATOR


def test_operator_values_flow_into_the_deployment(render) -> None:
    objects = render(load_values("production.yaml"))
    deployment = one(objects, "Deployment", OPERATOR)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert container["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert "--namespace=market-data" in container["args"]
    assert "--collector-image=registry.example.com/marketprism/marketprism-collector:0.1.0" in container["args"]
    assert {"name": "OTEL_SERVICE_NAME", "value": "marketprism-operator"} in container["env"]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["priorityClassName"] == "market-data-critical"
    assert all(o["metadata"]["labels"]["team"] == "market-data" for o in objects)


def test_single_replica_has_no_disruption_budget(render) -> None:
    assert find(render({"operator": {"replicas": 1}}), "PodDisruptionBudget") == []


def test_selectors_match_pod_labels_and_service_ports_exist(render) -> None:
    objects = render({"dev": {"enabled": True}})
    pods = {name: spec for name, spec in pod_specs(objects)}
    for deployment in find(objects, "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), deployment["metadata"]["name"]
    for service in find(objects, "Service"):
        targets = [d for d in find(objects, "Deployment")
                   if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(targets) == 1, f"service {service['metadata']['name']} selects {len(targets)} deployments"
        port_names = {p["name"] for c in pods[targets[0]["metadata"]["name"]]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, (service["metadata"]["name"], port)


def test_every_object_carries_the_standard_labels(render) -> None:
    for obj in render({"dev": {"enabled": True}, "metrics": {"serviceMonitor": {"enabled": True}}}):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE, obj["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "marketprism"
        assert labels["helm.sh/chart"] == "marketprism-0.1.0"


def test_service_monitors_scrape_operator_and_operator_created_services(render) -> None:
    assert find(render(), "ServiceMonitor") == []
    monitors = find(render(load_values("production.yaml")), "ServiceMonitor")
    by_name = {m["metadata"]["name"]: m for m in monitors}
    operator = by_name[OPERATOR]
    assert operator["spec"]["endpoints"][0]["port"] == "http"
    assert operator["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    collectors = by_name[f"{RELEASE}-marketprism-collectors"]
    assert collectors["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "marketprism-operator"}
    assert collectors["spec"]["namespaceSelector"] == {"matchNames": ["market-data"]}
    assert [e["port"] for e in collectors["spec"]["endpoints"]] == ["metrics", "sink-metrics"]


def test_notes_give_next_steps(chart) -> None:
    notes = chart.render(values={"dev": {"enabled": True}}, name=RELEASE, namespace=NAMESPACE)
    text = next(v for k, v in notes.items() if k.endswith("NOTES.txt"))
    assert f"rollout status deploy/{OPERATOR}" in text
    assert f"nats://{RELEASE}-marketprism-nats.{NAMESPACE}.svc:4222" in text
    assert f"http://{RELEASE}-marketprism-clickhouse.{NAMESPACE}.svc:8123" in text
    assert "kubectl get collectorsets" in text
    plain = chart.render(values=None, name=RELEASE, namespace=NAMESPACE)
    assert "Dev mode" not in next(v for k, v in plain.items() if k.endswith("NOTES.txt"))


def _dev_notes_collector_set(chart, tmp_path: Path, values: dict) -> dict:
    """Run the dev NOTES' apply command as written (kubectl stubbed) and return what it applies."""
    notes = chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    text = next(v for k, v in notes.items() if k.endswith("NOTES.txt"))
    start = text.index(f"kubectl -n {NAMESPACE} apply -f - <<'EOF'")
    end = text.index("\nEOF\n", start) + len("\nEOF\n")
    script = tmp_path / "apply.sh"
    out = tmp_path / "applied.yaml"
    script.write_text(f'set -euo pipefail\nkubectl() {{ cat > "{out}"; }}\n{text[start:end]}')
    subprocess.run(["bash", str(script)], check=True)
    return yaml.safe_load(out.read_text())


@pytest.mark.parametrize("simulator", [True, False], ids=["simulator", "no-simulator"])
def test_dev_notes_apply_a_collector_set_pointed_at_the_dev_services(chart, tmp_path: Path, simulator: bool) -> None:
    values = {"dev": {"enabled": True, "simulator": {"enabled": simulator}}}
    applied = _dev_notes_collector_set(chart, tmp_path, values)
    spec = applied["spec"]
    assert spec["nats"]["url"] == f"nats://{RELEASE}-marketprism-nats.{NAMESPACE}.svc:4222"
    assert spec["clickhouse"]["url"] == f"http://{RELEASE}-marketprism-clickhouse.{NAMESPACE}.svc:8123"
    endpoints = spec["exchanges"][0].get("endpoints")
    if simulator:
        sim = f"{RELEASE}-marketprism-simulator.{NAMESPACE}.svc:9200"
        assert endpoints == {"wsUrl": f"ws://{sim}/binance_spot", "restUrl": f"http://{sim}/binance_spot"}
    else:
        assert endpoints is None
    # Valid by the CRD's schema (structure, enums, patterns), as the apiserver checks it.
    crd = yaml.safe_load((CHART_DIR / "crds" / "collectorset.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.validate(applied, schema)
    # The repository's samples point at other services and Secrets: dev mode does not send users there.
    notes = chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    assert "collectorset-minimal.yaml" not in next(v for k, v in notes.items() if k.endswith("NOTES.txt"))


def test_package_round_trips_with_crd_and_schema(tmp_path: Path) -> None:
    archive = helm.package(CHART_DIR, destination=tmp_path)
    assert Path(archive).name == "marketprism-0.1.0.tgz"
    with helm.Chart.load_archive(Path(archive).read_bytes()) as packaged:
        assert [c["filename"] for c in packaged.crds] == ["marketprism/crds/collectorset.yaml"]
        assert packaged.schema is not None and packaged.schema["additionalProperties"] is False
        assert not any("__pycache__" in f["name"] for f in packaged.files)
