//! From observed streams and criteria to a report: per-stream figures, each criterion's check, and a
//! verdict taken from the worst stream (one failing stream fails the run, as in the harvester).

use crate::criteria::{Criteria, Thresholds};
use crate::stats::{Observed, Range, StreamId, StreamStats, gap_time_ms, quantile};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

/// One criterion applied to one stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The criterion's name, as in the criteria file (`max_latency_p99_ms`).
    pub criterion: &'static str,
    /// The stream's value; `None` when there is nothing to measure (no rows, no whole minute), which fails.
    pub value: Option<f64>,
    pub limit: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
    pub min_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapSummary {
    pub count: usize,
    /// Union of the stream's gaps inside the range, ms.
    pub duration_ms: i64,
    /// Gaps per cause.
    pub causes: BTreeMap<String, usize>,
    /// The gaps themselves (start, end, cause), for the timeline.
    pub spans: Vec<crate::stats::Gap>,
}

/// Everything the report says about one stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamReport {
    #[serde(flatten)]
    pub id: StreamId,
    pub rows: u64,
    pub whole_minutes: u64,
    pub empty_minutes: u64,
    pub duplicates: u64,
    pub events_per_hour: f64,
    pub latency: Option<Latency>,
    pub gaps: GapSummary,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
    /// Rows per whole minute of the range, in order (the heat strip).
    pub rows_per_minute: Vec<u64>,
    /// Exact latency distribution (ms → rows), for the histogram.
    #[serde(skip)]
    pub latency_ms: BTreeMap<i64, u64>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub range: Range,
    /// Where the rows came from (`parquet:<dir>`, `clickhouse:<url>/<database>`).
    pub source: String,
    pub criteria: Criteria,
    pub streams: Vec<StreamReport>,
    pub verdict: Verdict,
    /// Failed checks of every stream, worst stream first, as `stream: criterion value > limit`.
    pub failures: Vec<String>,
    /// What the source left out because it does not fit the dataset's layout (files, directories).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl Report {
    /// A compact summary (≤ 4 KB, the size of a Kubernetes termination message): verdict, range,
    /// stream count and the first failures.
    pub fn summary_json(&self) -> String {
        let mut failures: Vec<&str> = Vec::new();
        let mut size = 0;
        for f in &self.failures {
            size += f.len() + 4;
            if size > 3_000 {
                break;
            }
            failures.push(f);
        }
        serde_json::json!({
            "verdict": self.verdict,
            "from_ms": self.range.from_ms,
            "to_ms": self.range.to_ms,
            "streams": self.streams.len(),
            "failing_streams": self.streams.iter().filter(|s| s.verdict == Verdict::Fail).count(),
            "failures": failures,
            "failures_total": self.failures.len(),
        })
        .to_string()
    }
}

/// Judges every observed stream; `expected` streams without a single row (or gap) are added as empty
/// streams (they fail `min_rows`), so a configured stream that wrote nothing is never missing from
/// the report. An expected id may leave `market_type` empty (see [`StreamId`]).
pub fn evaluate(
    observed: &Observed,
    expected: &[StreamId],
    range: Range,
    criteria: &Criteria,
    source: String,
) -> Report {
    let empty = StreamStats::default();
    let mut ids: Vec<&StreamId> = observed.keys().collect();
    // An expected stream without a market type (a config names exchange, type and symbol) matches
    // an observed one of any market type.
    let seen = |e: &StreamId| {
        observed.keys().any(|o| {
            o.exchange == e.exchange
                && o.data_type == e.data_type
                && o.symbol == e.symbol
                && (e.market_type.is_empty() || o.market_type == e.market_type)
        })
    };
    ids.extend(expected.iter().filter(|e| !seen(e)));
    ids.sort();
    let streams: Vec<StreamReport> = ids
        .into_iter()
        .map(|id| {
            let stats = observed.get(id).unwrap_or(&empty);
            judge_stream(id, stats, range, &criteria.for_type(id.data_type))
        })
        .collect();
    let mut failing: Vec<&StreamReport> = streams
        .iter()
        .filter(|s| s.verdict == Verdict::Fail)
        .collect();
    // Worst first: most failed checks, then name order.
    failing.sort_by_key(|s| std::cmp::Reverse(s.checks.iter().filter(|c| !c.pass).count()));
    let mut failures: Vec<String> = failing
        .iter()
        .flat_map(|s| {
            s.checks.iter().filter(|c| !c.pass).map(move |c| {
                let value = c.value.map_or("none".to_string(), number);
                format!(
                    "{}: {} {} vs limit {}",
                    s.id,
                    c.criterion,
                    value,
                    number(c.limit)
                )
            })
        })
        .collect();
    if streams.is_empty() {
        failures.push("no stream has a row in the range".to_string());
    }
    let verdict = if failures.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    Report {
        range,
        source,
        criteria: criteria.clone(),
        streams,
        verdict,
        failures,
        skipped: Vec::new(),
    }
}

/// A figure for people: integers as integers, other values to 4 significant digits.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
        format!("{v:.digits$}")
    }
}

/// One stream's figures and checks (pure).
pub(crate) fn judge_stream(
    id: &StreamId,
    stats: &StreamStats,
    range: Range,
    limits: &Thresholds,
) -> StreamReport {
    let rows = stats.rows();
    let rows_per_minute: Vec<u64> = range
        .whole_minutes()
        .map(|m| stats.minutes.get(&m).copied().unwrap_or(0))
        .collect();
    let whole_minutes = rows_per_minute.len() as u64;
    let empty_minutes = rows_per_minute.iter().filter(|&&n| n == 0).count() as u64;
    let hours = range.duration_ms() as f64 / 3_600_000.0;
    let events_per_hour = if hours > 0.0 {
        rows as f64 / hours
    } else {
        0.0
    };
    let latency = quantile(&stats.latency_ms, 0.5).map(|p50| Latency {
        p50_ms: p50,
        p99_ms: quantile(&stats.latency_ms, 0.99).unwrap_or(p50),
        max_ms: *stats.latency_ms.keys().next_back().unwrap_or(&p50),
        min_ms: *stats.latency_ms.keys().next().unwrap_or(&p50),
    });
    let spans = stats.gap_list();
    let mut causes = BTreeMap::new();
    for g in &spans {
        *causes.entry(g.cause.clone()).or_default() += 1;
    }
    let gaps = GapSummary {
        count: spans.len(),
        duration_ms: gap_time_ms(&spans, range),
        causes,
        spans,
    };
    let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
    let at_most = |criterion, value: Option<f64>, limit: Option<f64>| {
        limit.map(|limit| Check {
            criterion,
            value,
            limit,
            pass: value.is_some_and(|v| v <= limit),
        })
    };
    let at_least = |criterion, value: Option<f64>, limit: Option<f64>| {
        limit.map(|limit| Check {
            criterion,
            value,
            limit,
            pass: value.is_some_and(|v| v >= limit),
        })
    };
    let checks: Vec<Check> = [
        at_least(
            "min_rows",
            Some(rows as f64),
            limits.min_rows.map(|n| n as f64),
        ),
        // A range without a whole minute has nothing to judge here: not a failure.
        (whole_minutes > 0)
            .then(|| {
                at_most(
                    "max_empty_minute_ratio",
                    ratio(empty_minutes, whole_minutes),
                    limits.max_empty_minute_ratio,
                )
            })
            .flatten(),
        (rows > 0)
            .then(|| {
                at_most(
                    "max_duplicate_ratio",
                    ratio(stats.duplicates, rows),
                    limits.max_duplicate_ratio,
                )
            })
            .flatten(),
        at_most(
            "max_latency_p50_ms",
            latency.as_ref().map(|l| l.p50_ms as f64),
            limits.max_latency_p50_ms,
        ),
        at_most(
            "max_latency_p99_ms",
            latency.as_ref().map(|l| l.p99_ms as f64),
            limits.max_latency_p99_ms,
        ),
        at_least(
            "min_events_per_hour",
            Some(events_per_hour),
            limits.min_events_per_hour,
        ),
        (range.duration_ms() > 0)
            .then(|| {
                at_most(
                    "max_gap_ratio",
                    Some(gaps.duration_ms as f64 / range.duration_ms() as f64),
                    limits.max_gap_ratio,
                )
            })
            .flatten(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let verdict = if checks.iter().all(|c| c.pass) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    StreamReport {
        id: id.clone(),
        rows,
        whole_minutes,
        empty_minutes,
        duplicates: stats.duplicates,
        events_per_hour,
        latency,
        gaps,
        checks,
        verdict,
        rows_per_minute,
        latency_ms: stats.latency_ms.clone(),
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
