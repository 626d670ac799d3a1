//! Reads the collector's Parquet dataset
//! (`<dir>/date=YYYY-MM-DD/exchange=<exchange>/data_type=<data_type>/part-*.parquet`, see
//! `marketprism_pipeline::store::parquet`) one file at a time, only the columns the report needs.
//!
//! Hidden files (`.part-….parquet.tmp`, a write in progress) are not part of the dataset. Duplicates
//! are counted across files: one 64-bit hash per row of each stream's natural key is kept while
//! reading (8 bytes a row).

use super::{Scan, key_columns};
use crate::error::{Error, Result};
use crate::stats::{Gap, KeySeen, Range, StreamId};
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, TimeUnit};
use marketprism_model::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

/// Reads every stream of the dataset under `dir` whose rows fall in `range` (all rows when `None`).
pub fn scan(dir: &Path, range: Option<Range>) -> Result<Scan> {
    let mut scan = Scan::default();
    let mut seen: HashMap<StreamId, KeySeen> = HashMap::new();
    let files = dataset_files(dir, range, &mut scan.skipped)?;
    for (data_type, path) in files {
        let file = std::fs::File::open(&path).map_err(|e| parquet_err(&path, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(&path, e))?;
        let wanted: Vec<&str> = if data_type == DataType::Gaps {
            vec![
                "exchange",
                "market_type",
                "symbol",
                "data_type",
                "start_ms",
                "end_ms",
                "cause",
            ]
        } else {
            let mut c = vec!["exchange", "market_type", "symbol", "ts_ms", "recv_ts_ms"];
            c.extend(key_columns(data_type).iter().filter(|k| **k != "ts_ms"));
            c
        };
        let mask = ProjectionMask::columns(builder.parquet_schema(), wanted.iter().copied());
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| parquet_err(&path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| parquet_err(&path, e))?;
            if data_type == DataType::Gaps {
                read_gaps(&batch, range, &mut scan).map_err(|e| parquet_err(&path, e))?;
            } else {
                read_rows(data_type, &batch, range, &mut scan, &mut seen)
                    .map_err(|e| parquet_err(&path, e))?;
            }
        }
    }
    Ok(scan)
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Parquet {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The dataset's files with their data type. Row files of date partitions outside `range` are not
/// read; gap files always are (few, and a gap row lives in the partition of the day it started,
/// which may be long before the range it reaches into). What does not fit the layout is listed in
/// `skipped` (writes in progress, `.….parquet.tmp`, are the collector's own and not listed). A
/// directory without a single `date=` partition is an error: the wrong path, most likely.
fn dataset_files(
    dir: &Path,
    range: Option<Range>,
    skipped: &mut Vec<PathBuf>,
) -> Result<Vec<(DataType, PathBuf)>> {
    let dates = range.map(|r| (date_of(r.from_ms), date_of(r.to_ms)));
    let mut out = Vec::new();
    let mut partitions = 0;
    let mut skip = |path: PathBuf| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with('.') && name.ends_with(".parquet.tmp")) {
            skipped.push(path);
        }
    };
    for date_dir in read_dir(dir)? {
        let Some(date) = partition_value(&date_dir, "date").filter(|_| date_dir.is_dir()) else {
            skip(date_dir);
            continue;
        };
        partitions += 1;
        let in_range = dates.as_ref().is_none_or(|(first, last)| {
            date.as_str() >= first.as_str() && date.as_str() <= last.as_str()
        });
        for exchange_dir in read_dir(&date_dir)? {
            if partition_value(&exchange_dir, "exchange").is_none() || !exchange_dir.is_dir() {
                skip(exchange_dir);
                continue;
            }
            for type_dir in read_dir(&exchange_dir)? {
                let Some(name) = partition_value(&type_dir, "data_type") else {
                    skip(type_dir);
                    continue;
                };
                let data_type = DataType::parse(&name).ok_or_else(|| Error::Parquet {
                    path: type_dir.clone(),
                    reason: format!("unknown data type {name:?}"),
                })?;
                if data_type != DataType::Gaps && !in_range {
                    continue;
                }
                for file in read_dir(&type_dir)? {
                    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if !name.starts_with('.') && name.ends_with(".parquet") {
                        out.push((data_type, file));
                    } else {
                        skip(file);
                    }
                }
            }
        }
    }
    if partitions == 0 {
        return Err(Error::Parquet {
            path: dir.to_path_buf(),
            reason:
                "no dataset here: expected date=YYYY-MM-DD/exchange=…/data_type=…/part-*.parquet \
                     (the Parquet output's dir)"
                    .into(),
        });
    }
    out.sort();
    Ok(out)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| parquet_err(dir, e))?;
    let mut paths = entries
        .map(|e| e.map(|e| e.path()).map_err(|e| parquet_err(dir, e)))
        .collect::<Result<Vec<_>>>()?;
    paths.sort();
    Ok(paths)
}

fn partition_value(path: &Path, key: &str) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix(key)?
        .strip_prefix('=')
        .map(str::to_string)
}

/// `YYYY-MM-DD` of a UTC ms timestamp (the collector's date partitions).
fn date_of(ts_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ts_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> std::result::Result<&'a ArrayRef, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column {name:?}"))
}

fn strings<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> std::result::Result<&'a arrow_array::StringArray, String> {
    column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| format!("column {name:?} is not a string"))
}

fn times<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> std::result::Result<&'a arrow_array::TimestampMillisecondArray, String> {
    column(batch, name)?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| format!("column {name:?} is not a ms timestamp"))
}

fn stream_id(
    batch: &RecordBatch,
    data_type: DataType,
    i: usize,
) -> std::result::Result<StreamId, String> {
    Ok(StreamId {
        exchange: strings(batch, "exchange")?.value(i).to_string(),
        market_type: strings(batch, "market_type")?.value(i).to_string(),
        data_type,
        symbol: strings(batch, "symbol")?.value(i).to_string(),
    })
}

fn read_rows(
    data_type: DataType,
    batch: &RecordBatch,
    range: Option<Range>,
    scan: &mut Scan,
    seen: &mut HashMap<StreamId, KeySeen>,
) -> std::result::Result<(), String> {
    let ts = times(batch, "ts_ms")?;
    let recv = times(batch, "recv_ts_ms")?;
    let keys: Vec<&ArrayRef> = key_columns(data_type)
        .iter()
        .map(|k| column(batch, k))
        .collect::<std::result::Result<_, _>>()?;
    let hasher = foldhash::fast::FixedState::with_seed(0x6d70_7265_706f_7274);
    let (exchange, market_type, symbol) = (
        strings(batch, "exchange")?,
        strings(batch, "market_type")?,
        strings(batch, "symbol")?,
    );
    // Files hold few streams: reuse the last row's id unless the instrument changed.
    let mut id: Option<StreamId> = None;
    for i in 0..batch.num_rows() {
        let t = ts.value(i);
        if range.is_some_and(|r| !r.contains(t)) {
            continue;
        }
        scan.widen(recv.value(i));
        let same = id.as_ref().is_some_and(|id| {
            id.exchange == exchange.value(i)
                && id.market_type == market_type.value(i)
                && id.symbol == symbol.value(i)
        });
        if !same {
            id = Some(stream_id(batch, data_type, i)?);
        }
        let id = id.as_ref().expect("set above");
        let mut h = hasher.build_hasher();
        for k in &keys {
            hash_value(k, i, &mut h)?;
        }
        // Look up before inserting: the id is cloned once per stream, not per row.
        if !seen.contains_key(id) {
            seen.insert(id.clone(), KeySeen::default());
            scan.observed.entry(id.clone()).or_default();
        }
        let repeat = seen.get_mut(id).expect("inserted above").repeat(h.finish());
        let stats = scan.observed.get_mut(id).expect("inserted above");
        stats.add_rows(t, recv.value(i) - t, 1);
        if repeat {
            stats.duplicates += 1;
        }
    }
    Ok(())
}

/// Feeds one key column's value at `i` to the hasher (null and each type distinguished).
fn hash_value(array: &ArrayRef, i: usize, h: &mut impl Hasher) -> std::result::Result<(), String> {
    if array.is_null(i) {
        h.write_u8(0);
        return Ok(());
    }
    h.write_u8(1);
    match array.data_type() {
        ArrowType::Utf8 => {
            let v = array.as_string::<i32>().value(i);
            h.write_usize(v.len());
            h.write(v.as_bytes());
        }
        ArrowType::Int64 => h.write_i64(array.as_primitive::<Int64Type>().value(i)),
        ArrowType::Timestamp(TimeUnit::Millisecond, _) => {
            h.write_i64(array.as_primitive::<TimestampMillisecondType>().value(i))
        }
        ArrowType::Decimal128(_, _) => {
            h.write_i128(array.as_primitive::<Decimal128Type>().value(i))
        }
        ArrowType::Float64 => h.write_u64(array.as_primitive::<Float64Type>().value(i).to_bits()),
        ArrowType::Boolean => h.write_u8(u8::from(array.as_boolean().value(i))),
        other => return Err(format!("key column of type {other} is not supported")),
    }
    Ok(())
}

fn read_gaps(
    batch: &RecordBatch,
    range: Option<Range>,
    scan: &mut Scan,
) -> std::result::Result<(), String> {
    let of_type = strings(batch, "data_type")?;
    let start = times(batch, "start_ms")?;
    let end = times(batch, "end_ms")?;
    let cause = strings(batch, "cause")?;
    for i in 0..batch.num_rows() {
        let (s, e) = (start.value(i), end.value(i));
        if range.is_some_and(|r| e < r.from_ms || s >= r.to_ms) {
            continue;
        }
        let Some(data_type) = DataType::parse(of_type.value(i)) else {
            return Err(format!("gap of unknown data type {:?}", of_type.value(i)));
        };
        let id = stream_id(batch, data_type, i)?;
        scan.observed.entry(id).or_default().add_gap(Gap {
            start_ms: s,
            end_ms: e,
            cause: cause.value(i).to_string(),
        });
    }
    Ok(())
}
