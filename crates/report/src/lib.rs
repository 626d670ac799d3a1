//! The data-quality report: what landed, per stream (exchange × market type × data type × symbol),
//! judged against acceptance criteria.
//!
//! | step | module |
//! |---|---|
//! | read rows from the Parquet dataset or ClickHouse into per-stream observations | [`source`] |
//! | what was observed of one stream (rows per minute, exact latencies, duplicates, gaps) | [`stats`] |
//! | the harvester's acceptance criteria, overridable by a file | [`criteria`] |
//! | figures, checks and the verdict of the worst stream | [`evaluate`] |
//! | the self-contained HTML page (heat strips, gap timelines, latency histograms) | [`html`] |
//!
//! Figures per stream: rows; empty whole minutes; duplicates by natural key (the table's sort key,
//! counted before `FINAL` in ClickHouse, across files in Parquet); gaps (count, union of their time,
//! causes); latency p50 / p99 / max (`recv_ts_ms − ts_ms`, ms, exact by nearest rank); rows per hour.

#![forbid(unsafe_code)]

pub mod criteria;
pub mod error;
pub mod evaluate;
pub mod html;
pub mod source;
pub mod stats;
pub mod when;

pub use criteria::{Criteria, Thresholds};
pub use error::{Error, Result};
pub use evaluate::{Report, StreamReport, Verdict, evaluate};
pub use stats::{Observed, Range, StreamId, StreamStats};
