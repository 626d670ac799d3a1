//! JetStream → ClickHouse: durable pull consumers, per-type batches, ack after the INSERT succeeded.
//!
//! Exactly-once in the table comes from at-least-once delivery plus idempotent rows: a message is acked
//! only after its row is in ClickHouse, so a crash or an outage at worst redelivers it, and the
//! ReplacingMergeTree key (the natural key) folds the copy away; redeliveries that meet a batch still
//! held in memory are folded there already. Undecodable messages go to `deadletter.<subject>` and are acked.
//!
//! | file | does |
//! |---|---|
//! | `setup` | connect, create streams, the dead-letter stream and the durable consumers |
//! | `runner` | the loop: pull, decode, batch, insert, ack, retry |
//! | `batch`, `decode`, `backoff` | pure decisions |

pub mod backoff;
pub mod batch;
mod dead_letter;
pub mod decode;
mod runner;
pub mod setup;

use crate::error::Result;
use marketprism_config::SinkConfig;
use marketprism_model::DataType;
use marketprism_telemetry::Health;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Sent after each successful insert to an observer (benchmarks): which rows landed when.
#[derive(Debug, Clone)]
pub struct InsertReport {
    pub data_type: DataType,
    /// Wall clock (UTC ms) when ClickHouse confirmed the INSERT.
    pub inserted_at_ms: i64,
    /// `recv_ts_ms` of each inserted row.
    pub recv_ts_ms: Vec<i64>,
}

/// Run the sink until `shutdown`; then flush what is held (bounded by `nats.drain_timeout_ms`).
pub async fn run_sink(
    config: SinkConfig,
    health: Health,
    shutdown: CancellationToken,
) -> Result<()> {
    run_sink_observed(config, health, shutdown, None).await
}

/// [`run_sink`], reporting every successful insert to `observer`.
pub async fn run_sink_observed(
    config: SinkConfig,
    health: Health,
    shutdown: CancellationToken,
    observer: Option<mpsc::UnboundedSender<InsertReport>>,
) -> Result<()> {
    let Some(parts) = setup::setup(&config, &health, &shutdown).await? else {
        return Ok(()); // shut down before the servers were reachable
    };
    runner::run(config, parts, health, shutdown, observer).await
}
