"""The opt-in PrometheusRule: absent by default, the harvester's alerts when enabled, every expression on metrics
the Rust code registers, thresholds from values; and the dashboard panels for the same metrics."""

from __future__ import annotations

import json
import re

import yaml
from conftest import CHART_DIR, find, one
from test_crd_dashboard import DASHBOARD, dashboard_metric_names, emitted_metric_names

DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["metrics"]["prometheusRule"]
ON = {"metrics": {"prometheusRule": {"enabled": True}}}


def rules(objects: list[dict]) -> list[dict]:
    rule = one(objects, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def expr_metrics(expr: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\b(marketprism_[a-z0-9_]+)", expr)}


def test_absent_by_default_and_when_disabled(render) -> None:
    assert find(render(), "PrometheusRule") == []
    assert find(render({"metrics": {"prometheusRule": {"enabled": False}}}), "PrometheusRule") == []


def test_enabled_it_alerts_on_what_users_of_the_harvester_watch(render) -> None:
    objects = render({"metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus"}}}})
    rule = one(objects, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "marketprism"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    by_name: dict[str, list[dict]] = {}
    for r in rules(objects):
        by_name.setdefault(r["alert"], []).append(r)
        assert r["labels"] == {"severity": "warning"}, r
        assert r["annotations"]["summary"] and r["annotations"]["description"], r
    expected = {
        "MarketprismExchangeLatencyHigh": "marketprism_exchange_latency_seconds",
        "MarketprismReconnectsFrequent": "marketprism_exchange_disconnects_total",
        "MarketprismStreamSilent": "marketprism_exchange_last_event_timestamp_seconds",
        "MarketprismGapsRecorded": "marketprism_events_in_total",
        "MarketprismOverflowGaps": "marketprism_publish_overflow_gaps_total",
        "MarketprismWriteErrors": "marketprism_clickhouse_insert_errors_total",
        "MarketprismSignalFloorHitRateHigh": "marketprism_signal_floor_hits_total",
    }
    assert set(by_name) == set(expected)
    for name, metric in expected.items():
        assert all(metric in expr_metrics(r["expr"]) for r in by_name[name]), (name, by_name[name])
    latency = by_name["MarketprismExchangeLatencyHigh"][0]
    assert "histogram_quantile(0.99" in latency["expr"] and latency["expr"].endswith("> 0.12")
    assert latency["for"] == "5m"
    assert by_name["MarketprismReconnectsFrequent"][0]["expr"].endswith("[1h])) > 10")
    floor = by_name["MarketprismSignalFloorHitRateHigh"][0]
    assert floor["expr"].endswith("> 0.6") and 'signal="cvd"' in floor["expr"]
    errors = by_name["MarketprismWriteErrors"][0]["expr"]
    for metric in ("marketprism_parquet_write_errors_total", "marketprism_clickhouse_insert_errors_total",
                   "marketprism_publish_errors_total"):
        assert metric in errors
    assert 'data_type="gaps"' in by_name["MarketprismGapsRecorded"][0]["expr"]


def test_silent_stream_thresholds_are_per_data_type_and_zero_disables(render) -> None:
    silent = {re.search(r'data_type="(\w+)"', r["expr"]).group(1): r["expr"]
              for r in rules(render(ON)) if r["alert"] == "MarketprismStreamSilent"}
    after = DEFAULTS["silentStreams"]["afterSeconds"]
    assert set(silent) == {t for t, s in after.items() if s > 0}
    assert "liquidations" not in silent, "liquidations may be absent for hours: no default alert"
    for data_type, expr in silent.items():
        assert expr.startswith("time() - marketprism_exchange_last_event_timestamp_seconds{")
        assert expr.endswith(f"> {after[data_type]}"), expr


def test_thresholds_come_from_values(render) -> None:
    values = {"metrics": {"prometheusRule": {
        "enabled": True,
        "alertLabels": {"severity": "page", "team": "data"},
        "latencyP99": {"thresholdSeconds": 0.25, "for": "10m"},
        "reconnects": {"perHour": 3},
        "silentStreams": {"afterSeconds": {"trades": 0, "liquidations": 7200}},
        "gaps": {"rowsPer15m": 5},
        "floorHitRate": {"ratio": 0.8, "window": "30m"},
    }}}
    found = {(r["alert"], r["expr"].split("{")[1].split("}")[0] if "Silent" in r["alert"] else ""): r
             for r in rules(render(values))}
    latency = found[("MarketprismExchangeLatencyHigh", "")]
    assert latency["expr"].endswith("> 0.25") and latency["for"] == "10m"
    assert latency["labels"] == {"severity": "page", "team": "data"}
    assert found[("MarketprismReconnectsFrequent", "")]["expr"].endswith("> 3")
    assert found[("MarketprismGapsRecorded", "")]["expr"].endswith("> 5")
    floor = found[("MarketprismSignalFloorHitRateHigh", "")]["expr"]
    assert floor.endswith("> 0.8") and "[30m]" in floor
    silent = {k[1] for k in found if k[0] == "MarketprismStreamSilent"}
    assert 'data_type="liquidations"' in silent and 'data_type="trades"' not in silent
    assert found[("MarketprismStreamSilent", 'data_type="liquidations"')]["expr"].endswith("> 7200")


def test_every_alert_expression_uses_metrics_the_code_registers_and_parses(render) -> None:
    emitted = emitted_metric_names()
    pairs = {")": "(", "]": "[", "}": "{"}
    for r in rules(render(ON)):
        used = expr_metrics(r["expr"])
        assert used, r["alert"]
        assert used <= emitted, f"{r['alert']} uses metrics no Rust code registers: {sorted(used - emitted)}"
        stack: list[str] = []
        for char in re.sub(r'"[^"]*"', '""', r["expr"]):
            if char in "([{":
                stack.append(char)
            elif char in pairs:
                assert stack and stack.pop() == pairs[char], r["expr"]
        assert stack == [], r["expr"]
        assert "$" not in r["expr"] and "{{" not in r["expr"], r["expr"]


def test_dashboard_has_panels_for_the_harvester_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("exchange latency p50 / p99", "last event age", "clock offset", "reconnects", "duplicate trades",
                  "floor-hit rate", "signal scale"):
        assert topic in titles, f"no panel about {topic}: {titles}"
    used = dashboard_metric_names(dashboard)
    for metric in ("marketprism_exchange_latency_seconds", "marketprism_exchange_last_event_timestamp_seconds",
                   "marketprism_exchange_clock_offset_seconds", "marketprism_exchange_disconnects_total",
                   "marketprism_exchange_duplicate_trades_total", "marketprism_signal_floor_hits_total",
                   "marketprism_signal_z_rows_total", "marketprism_signal_scale"):
        assert metric in used, metric
    assert used <= emitted_metric_names()
    offset = next(p for p in dashboard["panels"] if "clock offset" in p["title"].lower())
    assert "min" not in offset["fieldConfig"]["defaults"], "an offset can be negative"
