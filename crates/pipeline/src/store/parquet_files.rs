//! The Parquet files themselves: Arrow schema, write to a hidden temporary, commit, read back.

use super::{PartitionKey, temp_name};
use crate::error::{Error, Result};
use crate::store::columns::{ColumnType, columns};
use crate::store::decimal::{PRECISION, SCALE};
use crate::store::rows::{Rows, TableRow, with_rows};
use arrow_array::RecordBatch;
use arrow_schema::{DataType as ArrowType, Field, FieldRef, TimeUnit};
use marketprism_model::DataType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn decimal_type() -> ArrowType {
    ArrowType::Decimal128(PRECISION as u8, SCALE as i8)
}

/// The Arrow fields of a table, from the same column list as the ClickHouse DDL.
pub fn arrow_fields(data_type: DataType) -> Vec<FieldRef> {
    columns(data_type)
        .iter()
        .map(|c| {
            let (ty, nullable) = match c.ty {
                ColumnType::Label | ColumnType::Text => (ArrowType::Utf8, false),
                ColumnType::TimeMs | ColumnType::NullableTimeMs => (
                    ArrowType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    c.ty == ColumnType::NullableTimeMs,
                ),
                ColumnType::Int64 => (ArrowType::Int64, false),
                ColumnType::Decimal | ColumnType::NullableDecimal => {
                    (decimal_type(), c.ty == ColumnType::NullableDecimal)
                }
                ColumnType::NullableLabel => (ArrowType::Utf8, true),
                ColumnType::Float64 | ColumnType::NullableFloat64 => {
                    (ArrowType::Float64, c.ty == ColumnType::NullableFloat64)
                }
                ColumnType::Flag => (ArrowType::Boolean, false),
                ColumnType::DecimalArray => (
                    ArrowType::List(Arc::new(Field::new("element", decimal_type(), false))),
                    false,
                ),
            };
            Arc::new(Field::new(c.name, ty, nullable))
        })
        .collect()
}

fn parquet_err(e: impl std::fmt::Display) -> Error {
    Error::Parquet(e.to_string())
}

fn record_batch<R: TableRow>(rows: &[R]) -> Result<RecordBatch> {
    serde_arrow::to_record_batch(&arrow_fields(R::DATA_TYPE), &rows).map_err(parquet_err)
}

/// Files of fewer rows are written uncompressed. The Parquet writer makes a zstd compressor and
/// decompressor for every column chunk, which costs more than a few dozen rows save: at ~125 frames/s
/// the flushes' zstd contexts were 15 % of the collector's CPU. Compaction rewrites the hour with zstd.
pub const ZSTD_FROM_ROWS: usize = 1_000;

/// The compression of a file of `rows` rows: zstd from [`ZSTD_FROM_ROWS`] on.
pub fn compression(rows: usize) -> Compression {
    if rows >= ZSTD_FROM_ROWS {
        Compression::ZSTD(ZstdLevel::default())
    } else {
        Compression::UNCOMPRESSED
    }
}

/// Writes `rows` to the hidden temporary of `dir/name` and fsyncs it; returns its size. Blocking.
pub fn write_temp(dir: &Path, name: &str, rows: &Rows) -> Result<u64> {
    std::fs::create_dir_all(dir)?;
    let batch = with_rows!(rows, v => record_batch(v))?;
    let temp_path = dir.join(temp_name(name));
    let result = (|| -> Result<u64> {
        let mut file = std::fs::File::create(&temp_path)?;
        let props = WriterProperties::builder()
            .set_compression(compression(batch.num_rows()))
            .build();
        let mut writer =
            ArrowWriter::try_new(&mut file, batch.schema(), Some(props)).map_err(parquet_err)?;
        writer.write(&batch).map_err(parquet_err)?;
        writer.close().map_err(parquet_err)?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp_path);
    }
    result
}

/// Moves a temporary written by [`write_temp`] to `dir/name`: link + unlink, a rename that fails instead
/// of replacing an existing file. The caller fsyncs `dir` afterwards. Blocking.
pub fn commit_temp(dir: &Path, name: &str) -> Result<()> {
    let temp_path = dir.join(temp_name(name));
    let linked = std::fs::hard_link(&temp_path, dir.join(name));
    // The temporary goes either way: committed under its final name, or refused.
    std::fs::remove_file(&temp_path)?;
    Ok(linked?)
}

/// [`write_temp`] + [`commit_temp`] + directory fsync: one complete file, durably, never replacing one.
pub fn write_file(dir: &Path, name: &str, rows: &Rows) -> Result<u64> {
    let bytes = write_temp(dir, name, rows)?;
    commit_temp(dir, name)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(bytes)
}

/// One partition's rows on their way to one file.
pub(super) struct Pending {
    pub(super) key: PartitionKey,
    pub(super) dir: PathBuf,
    pub(super) name: String,
    pub(super) rows: Rows,
    pub(super) result: Result<u64>,
}

/// Writes every pending file's temporary first (the slow part), then commits them all, then fsyncs their
/// directories: a flush becomes visible nearly at once, so a kill leaves whole flushes, not half of one.
pub(super) fn write_all(mut pending: Vec<Pending>) -> Vec<Pending> {
    for p in &mut pending {
        p.result = write_temp(&p.dir, &p.name, &p.rows);
    }
    for p in &mut pending {
        if p.result.is_ok()
            && let Err(e) = commit_temp(&p.dir, &p.name)
        {
            p.result = Err(e);
        }
    }
    let dirs: std::collections::BTreeSet<&PathBuf> = pending
        .iter()
        .filter(|p| p.result.is_ok())
        .map(|p| &p.dir)
        .collect();
    let mut synced = Ok(());
    for dir in dirs {
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            synced = Err(e);
        }
    }
    if let Err(e) = synced {
        // Renamed but maybe not durable: report it; the rows are in readable files, so not re-written.
        tracing::error!(error = %e, "fsync of a Parquet directory failed");
    }
    pending
}

/// Reads a file written by [`write_file`] back into rows of its table.
pub fn read_file(path: &Path, data_type: DataType) -> Result<Rows> {
    fn read<R: TableRow>(path: &Path) -> Result<Vec<R>> {
        let file = std::fs::File::open(path)?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(parquet_err)?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(parquet_err)?;
            let rows: Vec<R> = serde_arrow::from_record_batch(&batch).map_err(parquet_err)?;
            out.extend(rows);
        }
        Ok(out)
    }
    let mut rows = Rows::new(data_type);
    with_rows!(&mut rows, v => *v = read(path)?);
    Ok(rows)
}
