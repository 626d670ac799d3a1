//! `CollectorSet.status`: what the operator last planned and observed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

/// Condition types the operator maintains.
pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const PAUSED: &str = "Paused";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectorSetStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `Paused`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The current shard plan; also the memory that keeps symbols on their shard across changes.
    #[serde(default)]
    pub shards: Vec<ShardStatus>,
    /// Venues configured.
    #[serde(default)]
    pub exchanges: i32,
    /// Venue+symbol pairs configured.
    #[serde(default)]
    pub symbols: i32,
    #[serde(default)]
    pub shard_count: i32,
    /// Shards with at least one ready pod and a lock holder.
    #[serde(default)]
    pub ready_shards: i32,
    /// Objects of retired shards that still exist (listed on every reconcile).
    #[serde(default)]
    pub retired_objects: i32,
    /// `readyShards/shardCount`, for the printer column.
    #[serde(default)]
    pub ready: String,
    /// The last finished run of the scheduled data-quality report (`spec.report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportStatus>,
    /// The last finished run of each scheduled job (`spec.jobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobsStatus>,
}

/// The last finished run of each kind in `spec.jobs`; a kind not scheduled is absent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobsStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<JobRunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<JobRunStatus>,
}

/// What the last finished Job of a scheduled job said in its summary (its termination message).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRunStatus {
    /// `Pass` (every unit done, nothing wrong), `Fail` (failed or pending units, a cancelled run,
    /// discrepancies, nothing planned: `problems` says which), or `Error` (no readable summary:
    /// `message` says why).
    pub result: String,
    /// The Job that ran it.
    pub job: String,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The range the run covered, UTC ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
    /// Units in the run's plan (verify: table × day × exchange × symbol).
    #[serde(default)]
    pub units: i64,
    /// Units finished, including those finished by earlier runs in the same work directory.
    #[serde(default)]
    pub done_units: i64,
    /// Units whose last attempt failed.
    #[serde(default)]
    pub failed_units: i64,
    /// Units not attempted yet (a stopped or cancelled run).
    #[serde(default)]
    pub pending_units: i64,
    /// The run was stopped before it finished (the next run resumes).
    #[serde(default)]
    pub cancelled: bool,
    /// `verify`: discrepancies found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrepancies: Option<i64>,
    /// `backfill`: recorded gaps in the range, gaps filled, trades published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trades: Option<i64>,
    /// The first problems, human-readable (at most 10).
    #[serde(default)]
    pub problems: Vec<String>,
    /// Why the result is `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the last finished report Job said.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportStatus {
    /// `Pass`, `Fail`, or `Error` (the report could not be made: `message` says why).
    pub verdict: String,
    /// The Job that ran it.
    pub job: String,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The judged range, UTC ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
    #[serde(default)]
    pub streams: i64,
    #[serde(default)]
    pub failing_streams: i64,
    /// The first failed checks, `stream: criterion value vs limit`.
    #[serde(default)]
    pub failures: Vec<String>,
    /// Why the verdict is `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    /// Shard name (`s<N>` planned, `g-<group>` explicit); objects are named `<collectorset>-<shard>`.
    pub name: String,
    /// `venue/SYMBOL` pairs served by the shard.
    pub symbols: Vec<String>,
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pod currently holding the shard Lease (the one publishing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_holder: Option<String>,
    /// What the lock holder reports as not ready, `component: reason` (e.g.
    /// `instruments:binance_spot: not listed by the venue: BNB-XYZ`), from its Lease annotation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
}

impl CollectorSetStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}
