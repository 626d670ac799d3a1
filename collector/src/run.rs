//! The `run` command: sources (exchange connectors, the synthetic feed) → fan-out → outputs.
//!
//! Shutdown order keeps every accepted event: cancel the sources, let the fan-out drain the channel,
//! then let each output drain its own channel and flush (Parquet files renamed into place, NATS acks awaited).

use crate::error::{Error, Result};
use crate::telemetry::Health;
use marketprism_config::{Config, SyntheticConfig};
use marketprism_model::Event;
use marketprism_pipeline::lease::Fence;
use marketprism_pipeline::ledger::{StreamLedger, StreamReport, StreamTracker};
use marketprism_pipeline::output::{FanOutStats, OutputPort, fan_out_fenced};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a run did; printed as one JSON line on exit.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub events_in: BTreeMap<String, u64>,
    pub gaps: u64,
    pub fenced: u64,
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// Every configured stream: events, gaps by cause, status (delivered, quiet, never_delivered,
    /// refused, not_offered).
    pub streams: Vec<StreamReport>,
    /// Components whose last status was not ready (connections as they ended), with their reasons.
    pub not_ready: BTreeMap<String, String>,
    /// Configured streams that failed (never delivered, refused, not offered, crashed tasks).
    pub problems: Vec<String>,
    /// Outputs or tasks that failed.
    pub errors: Vec<String>,
}

impl RunSummary {
    /// True when the run did everything it was configured to do: the `run` command exits 0 only then.
    pub fn succeeded(&self) -> bool {
        self.problems.is_empty() && self.errors.is_empty()
    }
}

type OutputResult = (&'static str, Result<serde_json::Value>);

/// The async runtime of a command with `worker_threads` (`collector.worker_threads`): 1 a
/// current-thread runtime, n ≥ 2 n workers, 0 one worker per core; timers and I/O enabled. With
/// `wake_coalesce_ms` > 0 (`collector.wake_coalesce_ms`) a thread out of work sleeps that long
/// before it parks, so what arrives meanwhile is handled in one wake-up.
pub fn runtime(worker_threads: usize, wake_coalesce_ms: u64) -> tokio::runtime::Builder {
    let mut builder = match worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if n > 1 {
                b.worker_threads(n);
            }
            b
        }
    };
    builder.enable_all();
    if wake_coalesce_ms > 0 {
        let pause = Duration::from_millis(wake_coalesce_ms);
        // The hook runs only when the thread has nothing to do, so no task waits behind the sleep
        // except what arrives during it: that is the point.
        builder.on_thread_park(move || std::thread::sleep(pause));
    }
    builder
}

pub async fn run_collector(
    config: Config,
    health: Health,
    shutdown: CancellationToken,
) -> Result<RunSummary> {
    let run_id = marketprism_pipeline::store::new_run_id();
    let capacity = config.collector.channel_capacity;
    tracing::info!(%run_id, instance = %config.collector.instance_id, "collector starting");

    // The shard lock: without one (local runs) this instance may always publish.
    let (may_publish_tx, may_publish) = watch::channel(config.lease.is_none());
    let (takeovers_tx, takeovers) = watch::channel(None);
    let (deadline_tx, deadline) = watch::channel(None);
    let fence = match config.lease {
        Some(_) => Fence::new(may_publish.clone(), deadline),
        None => Fence::open(),
    };

    // Outputs end when their channel closes; this token tells them to flush after that.
    let outputs_done = CancellationToken::new();
    let mut ports = Vec::new();
    let mut outputs: JoinSet<OutputResult> = JoinSet::new();
    if let Some(nats) = config.outputs.nats.clone() {
        let (tx, rx) = mpsc::channel(capacity);
        ports.push(OutputPort { name: "nats", tx });
        let (h, done, lock) = (health.clone(), outputs_done.clone(), fence.clone());
        outputs.spawn(async move {
            let r = marketprism_pipeline::publish::run_nats_output_fenced(nats, rx, h, lock, done)
                .await;
            ("nats", r.map_err(Error::from).and_then(to_json))
        });
    }
    if let Some(parquet) = config.outputs.effective_parquet() {
        let (tx, rx) = mpsc::channel(capacity);
        ports.push(OutputPort {
            name: "parquet",
            tx,
        });
        let (id, done) = (run_id.clone(), outputs_done.clone());
        let (h, lock) = (health.clone(), fence.clone());
        outputs.spawn(async move {
            let r = marketprism_pipeline::store::parquet::run_parquet_output_with(
                parquet, id, rx, h, lock, done,
            )
            .await;
            ("parquet", r.map_err(Error::from).and_then(to_json))
        });
    }

    let mut background = JoinSet::new();
    // Released only after the outputs flushed: a graceful stop writes what it buffered while it
    // still holds the lock, and a standby takes over at once after.
    let lease_stop = CancellationToken::new();
    let lease_task = match config.lease.clone() {
        Some(lease) => Some(tokio::spawn(hold_lease(
            lease,
            health.clone(),
            marketprism_pipeline::lease::Signals {
                may_publish: may_publish_tx,
                takeovers: takeovers_tx,
                deadline: deadline_tx,
            },
            lease_stop.clone(),
        ))),
        None => {
            drop(may_publish_tx);
            None
        }
    };

    let sources = shutdown.child_token();
    if let Some(secs) = config.collector.duration_s {
        let s = sources.clone();
        background.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(secs)) => s.cancel(),
                _ = s.cancelled() => {}
            }
        });
    }

    // The built-in simulator stands in for every exchange that names no endpoint of its own.
    let mut config = config;
    let simulator = match config.simulator.clone() {
        Some(sim) => {
            let handle = marketprism_simulator::Simulator::start(sim).await?;
            config.tls.client = handle.trusted_by(&config.tls.client)?;
            for ex in &mut config.exchanges {
                if ex.endpoints == marketprism_config::EndpointsConfig::default() {
                    ex.endpoints = handle.endpoints(ex.exchange);
                }
            }
            tracing::info!(addr = %handle.addr(), "exchange simulator serving");
            Some(handle)
        }
        None => None,
    };

    let streams = StreamTracker::new(
        StreamLedger::new(&config.exchanges, marketprism_venues::plan::unsupported),
        &health,
    );
    let (tx, rx) = mpsc::channel::<Event>(capacity);
    let source_task = tokio::spawn(run_sources_while_active(
        config.clone(),
        tx,
        health.clone(),
        may_publish.clone(),
        sources.clone(),
    ));
    let (fan, streams) = fan_out_fenced(rx, ports, fence, takeovers, streams).await;
    let mut errors = Vec::new();
    if let Err(e) = source_task.await {
        errors.push(format!("sources: {e}"));
    }
    outputs_done.cancel();
    let mut summary_outputs = BTreeMap::new();
    while let Some(joined) = outputs.join_next().await {
        match joined {
            Ok((name, Ok(stats))) => {
                summary_outputs.insert(name.to_owned(), stats);
            }
            Ok((name, Err(e))) => errors.push(format!("{name}: {e}")),
            Err(e) => errors.push(format!("output task: {e}")),
        }
    }
    sources.cancel();
    // Components as they last were (connections drop theirs as they end): why a stream failed.
    let not_ready: BTreeMap<String, String> = health
        .last_statuses()
        .into_iter()
        .filter(|(name, s)| !s.ready && name != "streams")
        .map(|(name, s)| (name, s.reason))
        .collect();
    lease_stop.cancel();
    if let Some(task) = lease_task
        && tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
    {
        errors.push("lease: not released within 10 s".to_owned());
    }
    background.abort_all();
    if let Some(sim) = simulator {
        sim.stop().await;
    }
    let FanOutStats {
        events_in,
        gaps,
        fenced,
    } = fan;
    let mut problems = streams.ledger.problems();
    let lost_in_outputs = output_problems(&summary_outputs);
    if !problems.is_empty() {
        // Why a connection could not deliver (refused TLS, not a WebSocket, …) is in its readiness.
        problems.extend(
            not_ready
                .iter()
                .filter(|(name, _)| {
                    ["exchange:", "instruments:", "stream:"]
                        .iter()
                        .any(|p| name.starts_with(p))
                })
                .map(|(name, reason)| format!("{name}: {reason}")),
        );
    }
    problems.extend(lost_in_outputs);
    Ok(RunSummary {
        run_id,
        events_in,
        gaps,
        fenced,
        outputs: summary_outputs,
        streams: streams.ledger.report(),
        not_ready,
        problems,
        errors,
    })
}

/// Events an output took but did not land (NATS: dropped beyond the buffer or at the shutdown
/// deadline; Parquet: dropped while writes failed, or not representable): each a problem, so the run
/// exits non-zero even when the drops were recorded as overflow gaps. Fenced events (a standby's)
/// are not lost: the lock holder publishes them.
pub fn output_problems(outputs: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
    let counts = [
        (
            "nats",
            "dropped",
            "events dropped (NATS did not take them in time; see the log and the overflow gaps)",
        ),
        (
            "parquet",
            "events_dropped",
            "events dropped while writes failed (recorded as overflow gaps)",
        ),
        (
            "parquet",
            "rows_rejected",
            "events not representable in the tables (see the log)",
        ),
    ];
    counts
        .iter()
        .filter_map(|(output, field, what)| {
            let n = outputs.get(*output)?.get(*field)?.as_u64()?;
            (n > 0).then(|| format!("output {output}: {n} {what}"))
        })
        .collect()
}

/// Run the lease task and mirror its verdict into `may_publish`; whatever way the task ends,
/// the instance is fenced afterwards (a dead lock keeper must never leave publishing on).
async fn hold_lease(
    lease: marketprism_config::LeaseConfig,
    health: Health,
    signals: marketprism_pipeline::lease::Signals,
    shutdown: CancellationToken,
) {
    let (lease_tx, mut lease_rx) = watch::channel(false);
    // The keeper's verdict goes through `lease_rx`, mirrored below, so a dead keeper fences too.
    let marketprism_pipeline::lease::Signals {
        may_publish,
        takeovers,
        deadline,
    } = signals;
    let signals = marketprism_pipeline::lease::Signals {
        may_publish: lease_tx,
        takeovers,
        deadline,
    };
    let keeper = marketprism_pipeline::lease::run_lease(lease, health, signals, shutdown);
    tokio::pin!(keeper);
    loop {
        tokio::select! {
            ended = &mut keeper => {
                if let Err(e) = ended {
                    tracing::error!(error = %e, "lease task ended: this instance is fenced");
                }
                break;
            }
            changed = lease_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let active = *lease_rx.borrow_and_update();
                may_publish.send_replace(active);
            }
        }
    }
    may_publish.send_replace(false);
}

fn to_json<T: Serialize>(stats: T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(stats)?)
}

/// Run the sources until `stop`, whether or not this instance holds the shard lock: a warm standby
/// (connected, books in sync) whose events the fan-out drops until it takes over, so a takeover
/// costs seconds, not a reconnect and resync. `may_publish` only gates the outputs (fan-out, writers).
async fn run_sources_while_active(
    config: Config,
    tx: mpsc::Sender<Event>,
    health: Health,
    _may_publish: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    let mut tasks = start_sources(&config, &tx, &health, &stop);
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = drain(&mut tasks) => return,
    }
    while tasks.join_next().await.is_some() {}
}

async fn drain(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

fn start_sources(
    config: &Config,
    tx: &mpsc::Sender<Event>,
    health: &Health,
    term: &CancellationToken,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    if let Some(syn) = config.collector.synthetic.clone() {
        tasks.spawn(synthetic_feed(syn, tx.clone(), term.clone()));
    }
    if !config.exchanges.is_empty() {
        let mut connectors = marketprism_venues::spawn_connectors(
            &config.exchanges,
            &config.tls.client,
            tx.clone(),
            health.clone(),
            term.clone(),
        );
        tasks.spawn(async move { while connectors.join_next().await.is_some() {} });
    }
    tasks
}

/// Paced synthetic events; `count` bounds the total, `rate_per_s` the speed.
pub async fn synthetic_feed(
    cfg: SyntheticConfig,
    tx: mpsc::Sender<Event>,
    stop: CancellationToken,
) {
    const TICK: Duration = Duration::from_millis(10);
    let per_tick = (cfg.rate_per_s / 100).max(1);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        for _ in 0..per_tick {
            if cfg.count.is_some_and(|n| i >= n) {
                return;
            }
            let mut event = marketprism_model::synthetic::synthetic_event(cfg.seed, i);
            event.recv_ts_ms = marketprism_model::now_ms();
            if tx.send(event).await.is_err() {
                return;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Ten messages sent 1 ms apart from another thread, into a runtime that pauses 40 ms before it
    /// parks: they arrive during the pause and are taken in one or two wake-ups, not ten; every
    /// message is delivered either way.
    #[test]
    fn a_coalescing_runtime_takes_what_arrived_during_its_pause_in_one_wake_up() {
        let wake_ups = |coalesce_ms| {
            let rt = runtime(1, coalesce_ms).build().unwrap();
            rt.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let sender = std::thread::spawn(move || {
                    for i in 0..10 {
                        std::thread::sleep(Duration::from_millis(1));
                        tx.send(i).unwrap();
                    }
                });
                let (mut got, mut wake_ups) = (Vec::new(), 0);
                while got.len() < 10 {
                    rx.recv_many(&mut got, 100).await;
                    wake_ups += 1;
                }
                sender.join().unwrap();
                assert_eq!(got, (0..10).collect::<Vec<_>>());
                wake_ups
            })
        };
        let coalesced = wake_ups(40);
        assert!(coalesced <= 2, "{coalesced} wake-ups for 10 messages");
        assert!(wake_ups(0) >= 1);
    }

    #[test]
    fn any_event_an_output_did_not_land_is_a_problem() {
        let fine = BTreeMap::from([
            (
                "nats".to_owned(),
                json!({"acked": 10, "dropped": 0, "fenced": 4}),
            ),
            (
                "parquet".to_owned(),
                json!({"rows_written": 10, "events_dropped": 0, "rows_rejected": 0}),
            ),
        ]);
        assert_eq!(output_problems(&fine), Vec::<String>::new());
        let lost = BTreeMap::from([
            ("nats".to_owned(), json!({"acked": 0, "dropped": 590})),
            (
                "parquet".to_owned(),
                json!({"events_dropped": 3, "rows_rejected": 1}),
            ),
        ]);
        let problems = output_problems(&lost);
        assert_eq!(problems.len(), 3, "{problems:?}");
        // The field names are the outputs' own stats as the summary serializes them: a rename
        // there must not silently turn this check off.
        let real = BTreeMap::from([
            (
                "nats".to_owned(),
                to_json(marketprism_pipeline::publish::PublishStats {
                    dropped: 590,
                    ..Default::default()
                })
                .unwrap(),
            ),
            (
                "parquet".to_owned(),
                to_json(marketprism_pipeline::store::ParquetStats {
                    events_dropped: 3,
                    rows_rejected: 1,
                    ..Default::default()
                })
                .unwrap(),
            ),
        ]);
        assert_eq!(output_problems(&real), problems);
        assert!(
            problems[0].starts_with("output nats: 590 events dropped"),
            "{problems:?}"
        );
    }
}
