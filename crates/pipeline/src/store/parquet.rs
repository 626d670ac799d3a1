//! Parquet output, the embedded default when no NATS is configured.
//!
//! Layout: `<dir>/date=YYYY-MM-DD/exchange=<exchange>/data_type=<data_type>/part-<run_id>-<seq>.parquet`,
//! the date being the UTC day of `ts_ms`. Columns are the ClickHouse row types' ([`super::columns`]),
//! decimals as `Decimal128(38,18)`, times as `Timestamp(ms, UTC)`, zstd-compressed.
//!
//! Durability: a file is written as `.part-….parquet.tmp` in its final directory, fsynced, then linked to
//! its final name (a rename that refuses to replace an existing file) and the directory fsynced. Readers
//! therefore only ever see complete files, and no file is ever overwritten: `run_id` is new on every
//! process start (start time + 32 random bits) and `seq` climbs within the run.
//!
//! Loss window: events are flushed every `flush_interval_ms`, when a partition reaches `max_rows`, and on
//! shutdown after the channel is drained. A `kill -9` loses at most the events received since the last
//! flush, i.e. about `flush_interval_ms` of data (plus what was still queued in the channel). A flush
//! writes all its temporaries before committing any, so what survives a kill is whole flushes: with
//! `max_rows` not reached, a prefix of the event stream.
//!
//! Failing writes (read-only directory, full disk): the output is not ready (component `parquet`, with
//! the error), keeps its rows and retries every `flush_interval_ms`; beyond `max_buffered_rows` it drops
//! new events, counts them (`marketprism_parquet_events_dropped_total`) and writes `overflow` gaps
//! covering them once a write succeeds. A failed write leaves no file behind, not even a partial one.
//!
//! Compaction and retention ([`compact`], [`compact_io`]): every `compact.interval_s` a pass merges each
//! partition's files of closed hours into one `compacted-YYYYMMDDTHH-<hash>.parquet` and deletes `date=`
//! partitions older than `retention_days`; interrupted merges are recovered when the output starts.
//!
//! Fencing: while the shard lock is not held (the fence closed) nothing is written: buffered rows
//! are dropped and counted (`marketprism_parquet_rows_fenced_total`), and so are events still arriving.

use super::rows::Rows;
use crate::error::{Error, Result};
use crate::internal_events::InternalEvent;
use crate::internal_events::store::{
    ParquetEventDropped, ParquetFileWritten, ParquetOverflowGaps, ParquetRowsFenced,
    ParquetWriteFailed, RowRejected,
};
use crate::lease::Fence;
use crate::publish::overflow::OverflowTracker;
use marketprism_config::ParquetConfig;
use marketprism_model::{DataType, Event, Exchange, now_ms};
use marketprism_telemetry::{Health, ReadinessGuard};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

/// After shutdown, how long producers get to finish and drop their senders before the channel is closed.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// What the Parquet output did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParquetStats {
    pub events_received: u64,
    pub rows_written: u64,
    pub files_written: u64,
    /// Events that cannot be stored exactly (e.g. a decimal outside `Decimal(38,18)`): logged and skipped.
    pub rows_rejected: u64,
    pub write_errors: u64,
    /// Events dropped while writes failed and `max_buffered_rows` were held (recorded as gaps).
    pub events_dropped: u64,
    pub overflow_gaps: u64,
    /// Rows and events dropped because this instance did not hold its shard lock.
    pub rows_fenced: u64,
}

/// A new run id: `YYYYMMDDTHHMMSSZ-<8 hex>`, unique per process start.
pub fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:08x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        rand::random::<u32>()
    )
}

/// Delete `.part-*.parquet.tmp` files under `root`: only a process killed mid-flush leaves them (run ids
/// are unique, so no live writer owns one at our start), and their rows are not committed data.
pub fn remove_stale_temporaries(root: &Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                stack.push(path);
            } else if name.starts_with(".part-")
                && name.ends_with(".parquet.tmp")
                && std::fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

/// `YYYY-MM-DD`, the UTC day of `ts_ms`.
pub fn utc_date(ts_ms: i64) -> String {
    let secs = ts_ms.div_euclid(1000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => "invalid-date".to_owned(),
    }
}

/// Milliseconds in a UTC day.
const DAY_MS: i64 = 86_400_000;

/// One output file's partition. The day is kept as a number so that sorting an event into its
/// partition formats and allocates nothing; the `date=` text is made when a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionKey {
    /// UTC days since 1970-01-01 of `ts_ms`.
    pub day: i64,
    pub exchange: Exchange,
    pub data_type: DataType,
}

impl PartitionKey {
    pub fn of(event: &Event) -> PartitionKey {
        PartitionKey {
            day: event.ts_ms.div_euclid(DAY_MS),
            exchange: event.exchange,
            data_type: event.data_type(),
        }
    }

    /// `YYYY-MM-DD` of the partition's day.
    pub fn date(&self) -> String {
        utc_date(self.day.saturating_mul(DAY_MS))
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(format!("date={}", self.date()))
            .join(format!("exchange={}", self.exchange))
            .join(format!("data_type={}", self.data_type))
    }
}

/// `part-<run_id>-<seq>.parquet`; `seq` zero-padded so names sort in write order.
pub fn file_name(run_id: &str, seq: u64) -> String {
    format!("part-{run_id}-{seq:010}.parquet")
}

/// The hidden temporary name a file is written under before it is linked into place.
pub fn temp_name(final_name: &str) -> String {
    format!(".{final_name}.tmp")
}

/// What a pushed event makes due.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    /// This partition reached `max_rows`.
    Partition(PartitionKey),
    /// All partitions together reached `max_buffered_rows`.
    All,
}

/// Buffers rows per partition and writes them out as files.
struct PartWriter {
    root: PathBuf,
    run_id: String,
    max_rows: usize,
    max_buffered: usize,
    seq: u64,
    buffers: BTreeMap<PartitionKey, Rows>,
    /// Rows in `buffers`.
    buffered: usize,
    /// The last flush's first error, while writes fail.
    failing: Option<String>,
    lost: OverflowTracker,
    readiness: ReadinessGuard,
    /// The shard lock: nothing is written while it is closed.
    fence: Fence,
    stats: ParquetStats,
}

impl PartWriter {
    /// Buffers the event (or drops it: writes failing and the buffer full); says what became due.
    fn push(&mut self, event: &Event) -> Option<Due> {
        self.stats.events_received += 1;
        if self.failing.is_some() && self.buffered >= self.max_buffered {
            self.stats.events_dropped += 1;
            self.lost.record(event);
            ParquetEventDropped {
                data_type: event.data_type(),
                first: self.lost.dropped() == 1,
                buffered: self.buffered,
            }
            .emit();
            return None;
        }
        self.buffer(event)
    }

    fn buffer(&mut self, event: &Event) -> Option<Due> {
        let key = PartitionKey::of(event);
        let rows = self
            .buffers
            .entry(key)
            .or_insert_with(|| Rows::new(key.data_type));
        if let Err(error) = rows.push(event) {
            self.stats.rows_rejected += 1;
            RowRejected {
                output: "parquet",
                data_type: key.data_type,
                msg_id: event.msg_id(),
                error: &error,
            }
            .emit();
            return None;
        }
        self.buffered += 1;
        // While writes fail, only the interval retries: a full partition must not retry per event.
        if self.failing.is_some() {
            None
        } else if self.buffered >= self.max_buffered {
            Some(Due::All)
        } else {
            (rows.len() >= self.max_rows).then_some(Due::Partition(key))
        }
    }

    /// One event from the channel: dropped (fenced) without the lock, else buffered, then flushed if due.
    async fn accept(&mut self, event: &Event) {
        if !self.fence.may_publish() {
            self.stats.events_received += 1;
            self.stats.rows_fenced += 1;
            ParquetRowsFenced { rows: 1 }.emit();
            return;
        }
        match self.push(event) {
            Some(Due::Partition(key)) => self.flush(vec![key]).await,
            Some(Due::All) => self.flush_all().await,
            None => {}
        }
    }

    /// The shard lock is lost: nothing buffered may be written any more.
    fn fence(&mut self) {
        let rows = self.buffered;
        self.buffers.clear();
        self.buffered = 0;
        if rows > 0 {
            self.stats.rows_fenced += rows as u64;
            ParquetRowsFenced { rows }.emit();
        }
    }

    async fn flush_all(&mut self) {
        let keys: Vec<PartitionKey> = self.buffers.keys().copied().collect();
        self.flush(keys).await;
    }

    /// Writes each partition's rows to a new file; rows whose file failed stay buffered for the next flush.
    async fn flush(&mut self, keys: Vec<PartitionKey>) {
        // Checked last thing before writing: a deposed holder writes nothing.
        if !self.fence.may_publish() {
            self.fence();
            return;
        }
        let mut pending = Vec::new();
        for key in keys {
            let Some(rows) = self.buffers.remove(&key).filter(|r| !r.is_empty()) else {
                continue;
            };
            self.buffered -= rows.len();
            pending.push(Pending {
                dir: key.dir(&self.root),
                name: file_name(&self.run_id, self.seq),
                key,
                rows,
                result: Ok(0),
            });
            self.seq += 1;
        }
        if pending.is_empty() {
            return;
        }
        let done = match tokio::task::spawn_blocking(move || write_all(pending)).await {
            Ok(done) => done,
            Err(e) => {
                // Only a panic in the writer gets here; the rows went with it.
                self.stats.write_errors += 1;
                tracing::error!(error = %e, "Parquet writer task failed");
                return;
            }
        };
        let mut first_error = None;
        for p in done {
            match p.result {
                Ok(bytes) => {
                    self.stats.rows_written += p.rows.len() as u64;
                    self.stats.files_written += 1;
                    ParquetFileWritten {
                        path: p.dir.join(p.name),
                        data_type: p.key.data_type,
                        rows: p.rows.len(),
                        bytes,
                    }
                    .emit();
                }
                Err(error) => {
                    self.stats.write_errors += 1;
                    ParquetWriteFailed {
                        path: p.dir.join(p.name),
                        rows: p.rows.len(),
                        error: &error,
                    }
                    .emit();
                    first_error.get_or_insert_with(|| error.to_string());
                    self.buffered += p.rows.len();
                    // Nothing was pushed during the flush (same task): the partition is empty.
                    self.buffers.insert(p.key, p.rows);
                }
            }
        }
        self.set_failing(first_error);
    }

    /// Readiness follows the last flush; on recovery the drops become gap rows.
    fn set_failing(&mut self, error: Option<String>) {
        match error {
            Some(error) => {
                self.readiness.not_ready(&format!(
                    "Parquet writes to {} fail ({error}); {} rows buffered (max_buffered_rows {}), {} events dropped",
                    self.root.display(),
                    self.buffered,
                    self.max_buffered,
                    self.stats.events_dropped
                ));
                self.failing = Some(error);
            }
            None => {
                self.failing = None;
                self.readiness.ready();
                if !self.lost.is_empty() {
                    let dropped = self.lost.dropped();
                    let gaps = self.lost.take_gaps(now_ms());
                    ParquetOverflowGaps {
                        gaps: gaps.len(),
                        dropped,
                    }
                    .emit();
                    self.stats.overflow_gaps += gaps.len() as u64;
                    for gap in &gaps {
                        self.buffer(gap);
                    }
                }
            }
        }
    }
}

/// [`run_parquet_output_with`] for a lone instance: no shard lock, readiness not reported.
pub async fn run_parquet_output(
    config: ParquetConfig,
    run_id: String,
    rx: Receiver<Event>,
    shutdown: CancellationToken,
) -> Result<ParquetStats> {
    run_parquet_output_with(config, run_id, rx, Health::new(), Fence::open(), shutdown).await
}

/// Drains `rx` into Parquet files until `shutdown`, then drains what producers still send (they get
/// `DRAIN_GRACE` to drop their senders), flushes, and returns the counts. Writes only while
/// `fence` is open (the shard lock); reports readiness as component `parquet`. An error means
/// rows that could not be written at the final flush, or events dropped and never recorded as gaps.
pub async fn run_parquet_output_with(
    config: ParquetConfig,
    run_id: String,
    mut rx: Receiver<Event>,
    health: Health,
    mut fence: Fence,
    shutdown: CancellationToken,
) -> Result<ParquetStats> {
    let readiness = health.register("parquet");
    readiness.ready();
    let mut writer = PartWriter {
        root: config.dir.clone(),
        run_id,
        max_rows: config.max_rows.max(1),
        max_buffered: config.effective_max_buffered_rows(),
        seq: 0,
        buffers: BTreeMap::new(),
        buffered: 0,
        failing: None,
        lost: OverflowTracker::new(
            "Parquet output dropped {n} events: writes failing and max_buffered_rows reached",
        ),
        readiness,
        fence: fence.clone(),
        stats: ParquetStats::default(),
    };
    let root = config.dir.clone();
    let removed = tokio::task::spawn_blocking(move || remove_stale_temporaries(&root))
        .await
        .unwrap_or(0);
    if removed > 0 {
        tracing::warn!(removed, dir = %config.dir.display(), "removed temporaries of an earlier run that was killed mid-flush");
    }
    // Its own token: the output also ends when its channel closes, without `shutdown`.
    let stop_compaction = shutdown.child_token();
    let compaction = spawn_compaction(&config, fence.clone(), stop_compaction.clone());
    let period = Duration::from_millis(config.flush_interval_ms.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            () = fence.changed() => if !fence.may_publish() {
                writer.fence();
            },
            _ = tick.tick() => writer.flush_all().await,
            event = rx.recv() => match event {
                Some(event) => writer.accept(&event).await,
                None => break,
            },
        }
    }
    drain(&mut writer, &mut rx).await;
    writer.flush_all().await;
    stop_compaction.cancel();
    if let Some(task) = compaction {
        let _ = task.await;
    }
    let (left, lost) = (writer.buffered, writer.lost.dropped());
    if left > 0 || lost > 0 {
        return Err(Error::Parquet(format!(
            "{left} rows could not be written at shutdown and {lost} dropped events not recorded as gaps (see the errors above)"
        )));
    }
    Ok(writer.stats)
}

/// The periodic compaction of the output's dataset: a recovery pass at once (interrupted merges of a
/// killed run), then a pass every `compact.interval_s` while the shard lock is held; `None` when
/// neither compaction nor retention is configured. Stops (between merges) at `shutdown`.
fn spawn_compaction(
    config: &ParquetConfig,
    fence: Fence,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let c = &config.compact;
    if !c.enabled && config.retention_days == 0 {
        return None;
    }
    let (root, merge, retention_days) = (config.dir.clone(), c.enabled, config.retention_days);
    let (grace_ms, every) = (
        (c.grace_s as i64).saturating_mul(1000),
        Duration::from_secs(c.interval_s.max(1)),
    );
    Some(tokio::spawn(async move {
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
            if !fence.may_publish() || !root.is_dir() {
                first = false;
                continue;
            }
            let opts = compact_io::CompactOptions {
                now_ms: now_ms(),
                grace_ms,
                retention_days: if first { 0 } else { retention_days },
                merge: merge && !first,
            };
            first = false;
            let (root, cancel) = (root.clone(), shutdown.clone());
            let started = std::time::Instant::now();
            let pass = tokio::task::spawn_blocking(move || {
                compact_io::compact_dataset(&root, &opts, &|| cancel.is_cancelled())
            })
            .await;
            match pass {
                Ok(Ok(r)) => {
                    for p in &r.problems {
                        tracing::warn!(problem = %p, "Parquet compaction");
                    }
                    tracing::info!(
                        merges = r.merges,
                        files_merged = r.files_merged,
                        recovered = r.recovered_forward + r.recovered_back,
                        dates_deleted = r.dates_deleted.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "Parquet compaction pass"
                    );
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "Parquet compaction pass failed"),
                Err(e) => tracing::error!(error = %e, "Parquet compaction task failed"),
            }
        }
    }))
}

/// Receives until every sender is gone, or until the grace period ends and the channel is closed.
async fn drain(writer: &mut PartWriter, rx: &mut Receiver<Event>) {
    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) => writer.accept(&event).await,
            Ok(None) => return,
            Err(_) => {
                tracing::warn!(
                    "Parquet output: producers still running after the drain grace; closing the channel"
                );
                rx.close();
                while let Some(event) = rx.recv().await {
                    writer.push(&event);
                }
                return;
            }
        }
    }
}

#[path = "parquet_files.rs"]
mod files;
use files::{Pending, write_all};
pub use files::{arrow_fields, commit_temp, read_file, write_file, write_temp};

#[path = "parquet_check.rs"]
pub mod check;
#[path = "parquet_compact.rs"]
pub mod compact;
#[path = "parquet_compact_io.rs"]
pub mod compact_io;

#[cfg(test)]
#[path = "parquet_tests.rs"]
mod tests;
