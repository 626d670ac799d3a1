#!/usr/bin/env python3
"""Generates charts/marketprism/dashboards/marketprism.json (the Grafana dashboard the chart ships).

Run `python3 tests/chart/gen_dashboard.py --write` after editing; test_dashboard.py fails when the
committed file drifts from this generator or names a metric the Rust code does not emit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "charts/marketprism/dashboards/marketprism.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 12
HEIGHT = 8

JOB = '{job=~"$job"}'
CVD = 'signal="cvd"'


def rate(metric: str, by: str = "", match: str = "") -> str:
    """`sum by (by) (rate(metric{job=~"$job", match}[$__rate_interval]))`."""
    selector = JOB if not match else JOB[:-1] + ", " + match + "}"
    return f"sum{f' by ({by})' if by else ''} (rate({metric}{selector}[$__rate_interval]))"


def quantile(q: float, metric: str, by: str) -> str:
    return f"histogram_quantile({q}, {rate(metric + '_bucket', 'le, ' + by)})"


# (title, unit, [(expr, legend)], description[, y-axis min: 0 unless given, None for none]). Metric names must
# exist in collector/ or operator/ sources.
PANELS: list[tuple] = [
    ("Events in /s by venue and type", "ops",
     [(rate("marketprism_events_in_total", "exchange, data_type"), "{{exchange}} {{data_type}}")],
     "Normalized events entering the outputs, per exchange and data type."),
    ("Gaps recorded /s", "ops",
     [(rate("marketprism_events_in_total", "exchange", 'data_type="gaps"'), "gap rows {{exchange}}"),
      (rate("marketprism_exchange_disconnects_total", "exchange, cause"), "disconnect {{exchange}} {{cause}}"),
      (rate("marketprism_publish_overflow_gaps_total"), "publish overflow")],
     "Every disconnect, sequence gap, stale stream or overflow is recorded as a Gap row; this is their rate."),
    ("Order book resyncs /s", "ops",
     [(rate("marketprism_orderbook_resyncs_total", "exchange, cause"), "{{exchange}} {{cause}}")],
     "Order books rebuilt from a snapshot after a sequence break or checksum mismatch."),
    ("JetStream publish acks /s", "ops",
     [(rate("marketprism_publish_acks_total"), "acked"),
      (rate("marketprism_publish_duplicate_acks_total"), "duplicate (deduplicated)"),
      (rate("marketprism_publish_errors_total"), "errors"),
      (rate("marketprism_publish_dropped_total"), "dropped")],
     "Publisher acknowledgements from JetStream; duplicates are retries the stream already had."),
    ("Publisher in flight / buffered", "short",
     [(f"sum by (pod) (marketprism_publish_in_flight{JOB})", "in flight {{pod}}"),
      (f"sum by (pod) (marketprism_publish_buffered{JOB})", "buffered {{pod}}")],
     "Messages awaiting an ack and messages buffered while NATS is unreachable."),
    ("ClickHouse insert latency p50 / p99", "s",
     [(quantile(0.5, "marketprism_sink_insert_seconds", "data_type"), "p50 {{data_type}}"),
      (quantile(0.99, "marketprism_sink_insert_seconds", "data_type"), "p99 {{data_type}}")],
     "Time of one batch INSERT by the sink, per data type."),
    ("Rows inserted /s and retries", "ops",
     [(rate("marketprism_sink_rows_inserted_total", "data_type"), "{{data_type}}"),
      (rate("marketprism_sink_insert_retries_total"), "insert retries"),
      (rate("marketprism_sink_dead_letters_total"), "dead letters")],
     "Rows landed in ClickHouse by the sink; retries mean ClickHouse was slow or down."),
    ("Sink consumer lag", "short",
     [(f"max by (consumer) (marketprism_sink_consumer_pending{JOB})", "pending {{consumer}}"),
      (f"max by (consumer) (marketprism_sink_consumer_ack_pending{JOB})", "ack pending {{consumer}}")],
     "Messages in JetStream not yet delivered (pending) or delivered but not yet acked."),
    ("Shard lock holders", "short",
     [(f"sum by (namespace, service) (marketprism_lease_active{JOB})", "holders {{namespace}}/{{service}}"),
      (f"sum by (role) (increase(marketprism_lease_role_changes_total{JOB}[$__rate_interval]))", "became {{role}}"),
      (rate("marketprism_lease_errors_total"), "Lease API errors /s")],
     "Collector pods holding each shard Lease (per shard Service): exactly 1 is healthy, 0 means nobody publishes; "
     "and shard lock role changes."),
    ("Events fenced /s (standby)", "ops",
     [(rate("marketprism_events_fenced_total", "data_type"), "{{data_type}}")],
     "Events a standby collector dropped because it does not hold its shard Lease."),
    ("Components not ready", "short",
     [(f"count by (component) (marketprism_component_ready{JOB} == 0)", "{{component}}")],
     "Readiness registry: components currently reporting not ready."),
    ("Operator reconciles /s and leader", "ops",
     [(rate("marketprism_operator_reconciles_total", "result"), "{{result}}"),
      (f"sum(marketprism_operator_leader{JOB})", "leaders (must be 1)")],
     "Reconciliations of CollectorSets by the leader operator replica (errors are retried with backoff) and the "
     "number of replicas that believe they lead."),
    ("Shards per CollectorSet", "short",
     [(f"max by (collectorset) (marketprism_operator_shards{JOB})", "{{collectorset}}")],
     "Collector shards the operator planned for each CollectorSet."),
    ("Parquet rows written /s", "ops",
     [(rate("marketprism_parquet_rows_written_total", "data_type"), "{{data_type}}"),
      (rate("marketprism_parquet_write_errors_total"), "write errors")],
     "Embedded mode (no NATS/ClickHouse): rows flushed to Parquet files."),
    # Issue 14: what users of the harvester watch (the chart's PrometheusRule alerts on the same metrics).
    ("Exchange latency p50 / p99 by venue and type", "s",
     [(quantile(0.5, "marketprism_exchange_latency_seconds", "exchange, data_type"), "p50 {{exchange}} {{data_type}}"),
      (quantile(0.99, "marketprism_exchange_latency_seconds", "exchange, data_type"), "p99 {{exchange}} {{data_type}}")],
     "Receive time minus the venue's event time (clamped at 0; negative ones are counted in "
     "marketprism_exchange_negative_latency_total). Includes the venue's clock offset."),
    ("Last event age per stream", "s",
     [(f"max by (exchange, data_type, symbol) (time() - marketprism_exchange_last_event_timestamp_seconds{JOB})",
       "{{exchange}} {{data_type}} {{symbol}}")],
     "Seconds since each configured stream last delivered an event; compare with its expected cadence."),
    ("Venue clock offset and round trip", "s",
     [(f"max by (exchange) (marketprism_exchange_clock_offset_seconds{JOB})", "offset {{exchange}}"),
      (f"max by (exchange) (marketprism_exchange_clock_rtt_seconds{JOB})", "round trip {{exchange}}"),
      (rate("marketprism_exchange_clock_probe_failures_total", "exchange, reason"), "probe failures /s {{exchange}} {{reason}}")],
     "Venue server time minus our clock at the middle of the request (positive: the venue is ahead), from its "
     "server-time endpoint every 60 s; error at most half the round trip.", None),
    ("Reconnects per hour by venue", "short",
     [(f"sum by (exchange) (increase(marketprism_exchange_disconnects_total{JOB}[1h]))", "disconnects {{exchange}}"),
      (f"sum by (exchange) (increase(marketprism_exchange_connects_total{JOB}[1h]))", "connects {{exchange}}")],
     "Connection losses in the last hour (each followed by a reconnect and a disconnect gap) and connections "
     "established (also counts the first connect and make-before-break rotations)."),
    ("Duplicate trades dropped /s", "ops",
     [(rate("marketprism_exchange_duplicate_trades_total", "exchange"), "{{exchange}}")],
     "Trades the venue sent twice on one connection, dropped before the outputs."),
    ("Signal floor-hit rate", "percentunit",
     [(rate("marketprism_signal_floor_hits_total", "exchange, symbol", CVD) + " / "
       + rate("marketprism_signal_z_rows_total", "exchange, symbol", CVD), "{{exchange}} {{symbol}}")],
     "Share of CVD z rows whose scale was the MAD floor (hybrid scale mode): high means the stream is too quiet "
     "for its z window."),
    ("Signal scale", "short",
     [(f"max by (exchange, symbol, signal) (marketprism_signal_scale{JOB})", "{{signal}} {{exchange}} {{symbol}}")],
     "The scale the OFI and CVD z-scores currently divide by (base-asset quantity)."),
]


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]], description: str,
          minimum: float | None = 0) -> dict:
    defaults: dict = {"unit": unit} if minimum is None else {"unit": unit, "min": minimum}
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": (index % 2) * WIDTH, "y": (index // 2) * HEIGHT, "w": WIDTH, "h": HEIGHT},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict:
    return {
        "uid": "marketprism-overview",
        "title": "marketprism",
        "tags": ["marketprism"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
                {"name": "job", "type": "query", "datasource": DS, "label": "Job",
                 "query": "label_values(marketprism_component_ready, job)", "includeAll": True, "multi": True,
                 "current": {"text": "All", "value": "$__all"}, "allValue": ".*", "refresh": 2},
            ]
        },
        "panels": [panel(i, *p) for i, p in enumerate(PANELS)],
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        OUT.write_text(render())
        print(f"wrote {OUT}")
    else:
        sys.stdout.write(render())
