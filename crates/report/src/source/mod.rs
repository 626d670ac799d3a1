//! Where a report's rows come from: the Parquet dataset ([`parquet`]) or ClickHouse ([`clickhouse`]).
//! Both fill the same [`Observed`] with the same rules, so one dataset gives one report either way.

pub mod clickhouse;
pub mod parquet;

use crate::stats::{Observed, Range};
use marketprism_model::DataType;

/// What a source read: per-stream observations and the span of exchange times of the rows it saw.
#[derive(Debug, Default)]
pub struct Scan {
    pub observed: Observed,
    /// Earliest and latest receive time (`recv_ts_ms`) of a market data or signal row: when the
    /// collector ran. Not the exchange times, which polled history (long/short ratio periods) puts
    /// hours before the run.
    pub span: Option<(i64, i64)>,
    /// Entries of a Parquet directory that do not fit the dataset's layout, left out.
    pub skipped: Vec<std::path::PathBuf>,
}

impl Scan {
    fn widen(&mut self, recv_ts_ms: i64) {
        self.span = Some(match self.span {
            Some((lo, hi)) => (lo.min(recv_ts_ms), hi.max(recv_ts_ms)),
            None => (recv_ts_ms, recv_ts_ms),
        });
    }

    /// The range asked for, or the run's receive-time span (`[first, last + 1)`) when none was asked
    /// for (every row is then counted; minutes and rates are taken over that span).
    pub fn range_or_span(&self, asked: Option<Range>) -> Range {
        asked.unwrap_or(match self.span {
            Some((lo, hi)) => Range {
                from_ms: lo,
                to_ms: hi + 1,
            },
            None => Range {
                from_ms: 0,
                to_ms: 0,
            },
        })
    }
}

/// The tables a report reads rows from: every type but `gaps`, which is read for its spans.
pub(crate) fn row_types() -> impl Iterator<Item = DataType> {
    DataType::ALL.into_iter().filter(|&dt| dt != DataType::Gaps)
}

/// The columns of `data_type`'s natural key after the instrument (`exchange, market_type, symbol`).
pub(crate) fn key_columns(data_type: DataType) -> &'static [&'static str] {
    &marketprism_pipeline::store::columns::sort_key(data_type)[3..]
}
