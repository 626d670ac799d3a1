//! The JSON report of `bench pipeline`, with the definition of every figure written into it.

use super::throughput::{EVENTS_PER_S_DEFINITION, PUBLISH_PER_S_DEFINITION, SUSTAINED_DEFINITION};
use marketprism_pipeline::publish::PublishStats;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// source → publisher → JetStream → sink → ClickHouse.
    EndToEnd,
    /// source → publisher → JetStream only: the JetStream baseline.
    PublishOnly,
}

/// Fields that only exist end to end are `null` in publish-only mode (see `definitions.null_fields`).
#[derive(Debug, Clone, Serialize)]
pub struct PipelineBenchReport {
    pub mode: Mode,
    pub events: usize,
    pub rate_limit_per_s: Option<u64>,
    pub events_per_s: Option<f64>,
    pub sustained_events_per_s: Option<f64>,
    pub publish_per_s: f64,
    pub elapsed_s: f64,
    pub latency_ms: Option<Latency>,
    pub stages: Vec<Stage>,
    pub process: Process,
    pub expected_rows: u64,
    /// Events in the run's two data streams at the end (a message holds one, or a publish batch).
    pub stored: u64,
    /// Messages in the run's two data streams at the end.
    pub stored_messages: u64,
    /// `count() FINAL` over every table: rows after deduplication.
    pub rows_final: Option<u64>,
    /// `count()` without FINAL: rows including copies not merged away yet.
    pub rows_raw: Option<u64>,
    pub lost: u64,
    pub duplicated: u64,
    /// Physical copies waiting for a background merge (harmless: FINAL folds them).
    pub unmerged_copies: Option<u64>,
    pub publish: PublishStats,
    pub definitions: Definitions,
    pub run_name: String,
}

impl PipelineBenchReport {
    /// Why the command should fail after printing the report (data lost or duplicated).
    pub fn failure(&self) -> Option<String> {
        (self.lost > 0 || self.duplicated > 0).then(|| {
            format!(
                "{} of {} events lost and {} duplicated ({})",
                self.lost,
                self.events,
                self.duplicated,
                match self.mode {
                    Mode::EndToEnd => "rows in ClickHouse after FINAL",
                    Mode::PublishOnly => "events stored in JetStream",
                }
            )
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Definitions {
    pub events_per_s: &'static str,
    pub sustained_events_per_s: &'static str,
    pub publish_per_s: &'static str,
    pub elapsed_s: &'static str,
    pub stored: &'static str,
    pub stored_messages: &'static str,
    pub lost: &'static str,
    pub duplicated: &'static str,
    pub stages: &'static str,
    pub null_fields: &'static str,
}

impl Definitions {
    pub fn for_mode(mode: Mode) -> Definitions {
        let end_to_end = mode == Mode::EndToEnd;
        Definitions {
            events_per_s: EVENTS_PER_S_DEFINITION,
            sustained_events_per_s: SUSTAINED_DEFINITION,
            publish_per_s: PUBLISH_PER_S_DEFINITION,
            elapsed_s: if end_to_end {
                "first event offered → last row confirmed by ClickHouse; s"
            } else {
                "first event offered → last publish acked by JetStream; s"
            },
            stored: "events in the run's two data streams at the end: each message counts its Marketprism-Events header (a publish batch), else 1",
            stored_messages: "messages in the run's two data streams (stream info state.messages) at the end; stored / stored_messages is the events per message the publisher's batching reached",
            lost: if end_to_end {
                "events − rows_final"
            } else {
                "events − stored"
            },
            duplicated: if end_to_end {
                "rows_final − events, when positive (a duplicate that survived deduplication)"
            } else {
                "stored − events, when positive (a duplicate JetStream did not recognize)"
            },
            stages: "source/publisher/sink: CPU of the stage's dedicated thread; nats-server/clickhouse-server: CPU of the whole server process between the first event offered and the last row (or ack), null with a note when its pid is unknown",
            null_fields: if end_to_end {
                "sustained_events_per_s is null when a single insert took the landed rows past both 10% and 90%"
            } else {
                "publish-only: events_per_s, sustained_events_per_s, latency_ms, rows_final, rows_raw and unmerged_copies are null (no sink, no ClickHouse)"
            },
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub samples: usize,
    pub definition: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: &'static str,
    /// `None`: not measurable (see `note`).
    pub cpu_s: Option<f64>,
    /// CPU milliseconds per 1000 events.
    pub cpu_ms_per_1k_events: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Stage {
    /// A stage measured (or not) over `events` events; rounded to what `/proc` resolves (10 ms).
    pub fn new(name: &'static str, cpu_s: Option<f64>, events: usize) -> Stage {
        let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
        Stage {
            name,
            cpu_s: cpu_s.map(|cpu| round(cpu, 2)),
            cpu_ms_per_1k_events: cpu_s
                .map(|cpu| round(cpu * 1_000.0 * 1_000.0 / events.max(1) as f64, 3)),
            pid: None,
            note: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Process {
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
    pub method: &'static str,
}

impl Process {
    /// This process's `cpu_s` over the run, and its peak RSS so far.
    pub fn measured(cpu_s: f64) -> Process {
        Process {
            cpu_s,
            peak_rss_mib: super::procfs::peak_rss_mib().unwrap_or(0.0),
            method: "process: /proc/self/stat and VmHWM; stages: /proc/thread-self/stat of each stage's threads; servers: /proc/<pid>/stat before and after",
        }
    }
}

const LATENCY_DEFINITION: &str = "ClickHouse INSERT confirmed (wall clock) minus recv_ts_ms stamped by the source just before the publisher; ms";

pub fn percentiles(samples: &mut [u32]) -> Latency {
    if samples.is_empty() {
        return Latency {
            definition: LATENCY_DEFINITION,
            ..Latency::default()
        };
    }
    samples.sort_unstable();
    let at = |q: f64| u64::from(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        samples: samples.len(),
        definition: LATENCY_DEFINITION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        let l = percentiles(&mut v);
        assert_eq!((l.p50, l.p99, l.max, l.samples), (51, 99, 100, 100));
        assert_eq!(percentiles(&mut []).samples, 0);
    }

    #[test]
    fn stage_cost_per_thousand_events() {
        let s = Stage::new("sink", Some(2.0), 50_000);
        assert_eq!(s.cpu_ms_per_1k_events, Some(40.0));
        // Float noise from before/after subtraction is rounded away.
        let s = Stage::new("nats-server", Some(0.820_000_000_000_007_4), 50_000);
        assert_eq!((s.cpu_s, s.cpu_ms_per_1k_events), (Some(0.82), Some(16.4)));
        assert_eq!(
            Stage::new("nats-server", None, 50_000).cpu_ms_per_1k_events,
            None
        );
        let json = serde_json::to_value(Stage::new("x", None, 1)).unwrap();
        assert!(json["cpu_s"].is_null() && json.get("note").is_none());
    }

    fn publish_only_report(stored: u64) -> PipelineBenchReport {
        PipelineBenchReport {
            mode: Mode::PublishOnly,
            events: 100,
            rate_limit_per_s: None,
            events_per_s: None,
            sustained_events_per_s: None,
            publish_per_s: 1.0,
            elapsed_s: 1.0,
            latency_ms: None,
            stages: vec![],
            process: Process {
                cpu_s: 0.0,
                peak_rss_mib: 0.0,
                method: "",
            },
            expected_rows: 100,
            stored,
            stored_messages: stored,
            rows_final: None,
            rows_raw: None,
            lost: 100u64.saturating_sub(stored),
            duplicated: stored.saturating_sub(100),
            unmerged_copies: None,
            publish: PublishStats::default(),
            definitions: Definitions::for_mode(Mode::PublishOnly),
            run_name: "r".into(),
        }
    }

    #[test]
    fn lost_or_duplicated_data_is_a_failure() {
        assert_eq!(publish_only_report(100).failure(), None);
        let lost = publish_only_report(97).failure().unwrap();
        assert!(lost.contains("3 of 100 events lost"), "{lost}");
        assert!(
            publish_only_report(101)
                .failure()
                .unwrap()
                .contains("1 duplicated")
        );
        let json = serde_json::to_value(publish_only_report(100)).unwrap();
        assert_eq!(json["mode"], "publish-only");
        assert!(json["events_per_s"].is_null() && json["rows_final"].is_null());
    }
}
