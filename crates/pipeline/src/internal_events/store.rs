//! Events of the stores (`store/`): ClickHouse schema and inserts, Parquet files.

use super::InternalEvent;
use marketprism_model::DataType;
use std::path::PathBuf;

/// The schema was created (or already existed) on a ClickHouse server.
pub(crate) struct ClickHouseSchemaEnsured<'a> {
    pub version: &'a str,
    pub dialect: &'static str,
    pub statements: usize,
}

impl InternalEvent for ClickHouseSchemaEnsured<'_> {
    fn emit(self) {
        tracing::info!(
            version = self.version,
            dialect = self.dialect,
            statements = self.statements,
            "ClickHouse schema ensured"
        );
    }
}

/// One INSERT into a hot table succeeded.
pub(crate) struct ClickHouseRowsInserted {
    pub data_type: DataType,
    pub rows: usize,
}

impl InternalEvent for ClickHouseRowsInserted {
    fn emit(self) {
        tracing::debug!(data_type = %self.data_type, rows = self.rows, "ClickHouse insert");
        metrics::counter!("marketprism_clickhouse_rows_inserted_total", "data_type" => self.data_type.as_str())
            .increment(self.rows as u64);
        metrics::counter!("marketprism_clickhouse_inserts_total", "data_type" => self.data_type.as_str())
            .increment(1);
    }
}

/// One INSERT failed; the caller keeps the batch and retries.
pub(crate) struct ClickHouseInsertFailed<'a> {
    pub data_type: DataType,
    pub rows: usize,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for ClickHouseInsertFailed<'_> {
    fn emit(self) {
        tracing::warn!(data_type = %self.data_type, rows = self.rows, error = %self.error, "ClickHouse insert failed");
        metrics::counter!("marketprism_clickhouse_insert_errors_total", "data_type" => self.data_type.as_str())
            .increment(1);
    }
}

/// An event could not become a row (e.g. a decimal outside `Decimal(38,18)`): counted and skipped.
pub(crate) struct RowRejected<'a> {
    pub output: &'static str,
    pub data_type: DataType,
    pub msg_id: String,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for RowRejected<'_> {
    fn emit(self) {
        tracing::warn!(
            output = self.output,
            data_type = %self.data_type,
            msg_id = %self.msg_id,
            error = %self.error,
            "event rejected: cannot store it exactly"
        );
        metrics::counter!(
            "marketprism_store_rows_rejected_total",
            "output" => self.output,
            "data_type" => self.data_type.as_str()
        )
        .increment(1);
    }
}

/// A Parquet file was written, synced and renamed into place.
pub(crate) struct ParquetFileWritten {
    pub path: PathBuf,
    pub data_type: DataType,
    pub rows: usize,
    pub bytes: u64,
}

impl InternalEvent for ParquetFileWritten {
    fn emit(self) {
        tracing::debug!(path = %self.path.display(), rows = self.rows, bytes = self.bytes, "Parquet file written");
        metrics::counter!("marketprism_parquet_rows_written_total", "data_type" => self.data_type.as_str())
            .increment(self.rows as u64);
        metrics::counter!("marketprism_parquet_files_written_total").increment(1);
        metrics::counter!("marketprism_parquet_bytes_written_total").increment(self.bytes);
    }
}

/// Writing a Parquet file failed; its rows stay buffered for the next flush.
pub(crate) struct ParquetWriteFailed<'a> {
    pub path: PathBuf,
    pub rows: usize,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for ParquetWriteFailed<'_> {
    fn emit(self) {
        tracing::error!(path = %self.path.display(), rows = self.rows, error = %self.error, "Parquet write failed; will retry");
        metrics::counter!("marketprism_parquet_write_errors_total").increment(1);
    }
}

/// The Parquet output dropped an event: writes fail and `max_buffered_rows` are held. Counted; the
/// drops become `overflow` gap rows once a write succeeds. Logged once per failing period.
pub(crate) struct ParquetEventDropped {
    pub data_type: DataType,
    pub first: bool,
    pub buffered: usize,
}

impl InternalEvent for ParquetEventDropped {
    fn emit(self) {
        if self.first {
            tracing::error!(
                buffered = self.buffered,
                "Parquet writes fail and the buffer is full: dropping events; they will be recorded as overflow gaps"
            );
        }
        metrics::counter!("marketprism_parquet_events_dropped_total", "data_type" => self.data_type.as_str())
            .increment(1);
    }
}

/// Writes succeed again: the events dropped meanwhile were queued as `overflow` gap rows.
pub(crate) struct ParquetOverflowGaps {
    pub gaps: usize,
    pub dropped: u64,
}

impl InternalEvent for ParquetOverflowGaps {
    fn emit(self) {
        tracing::warn!(
            gaps = self.gaps,
            dropped = self.dropped,
            "Parquet writes succeed again; recording the dropped events as overflow gaps"
        );
        metrics::counter!("marketprism_parquet_overflow_gaps_total").increment(self.gaps as u64);
    }
}

/// Rows dropped unwritten because this instance lost (or never held) its shard lock.
pub(crate) struct ParquetRowsFenced {
    pub rows: usize,
}

impl InternalEvent for ParquetRowsFenced {
    fn emit(self) {
        if self.rows > 1 {
            tracing::warn!(
                rows = self.rows,
                "shard lock lost: dropping the Parquet rows buffered, unwritten"
            );
        }
        metrics::counter!("marketprism_parquet_rows_fenced_total").increment(self.rows as u64);
    }
}

/// A table or view of the sink's path differs from the DDL: that data type takes no inserts until fixed.
pub(crate) struct ClickHouseSchemaMismatch<'a> {
    pub data_type: DataType,
    pub differences: &'a [crate::store::schema_check::Difference],
}

impl InternalEvent for ClickHouseSchemaMismatch<'_> {
    fn emit(self) {
        for d in self.differences {
            tracing::error!(
                data_type = %self.data_type,
                table = %d.table,
                what = %d.what,
                found = %d.found,
                expected = %d.expected,
                fix = %d.fix,
                "ClickHouse schema differs: no inserts into this table until it is fixed"
            );
        }
        metrics::counter!("marketprism_clickhouse_schema_mismatches_total", "data_type" => self.data_type.as_str())
            .increment(1);
    }
}
