//! Pure pieces of the job kinds: unit planning (import files, replay partitions), the replay filter,
//! and UTC day arithmetic. No I/O except [`list_dataset`], which only lists a directory.

use marketprism_jobs::UnitId;
use marketprism_model::{DataType, Event, Exchange};
use std::path::Path;

/// Milliseconds in a UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// Start (UTC ms) of the UTC day holding `ts_ms`.
pub fn day_start(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS) * DAY_MS
}

/// `YYYY-MM-DD` of the UTC day holding `ts_ms` (the Parquet `date=` partition value).
pub fn day_name(ts_ms: i64) -> String {
    marketprism_pipeline::store::parquet::utc_date(ts_ms)
}

/// Whether `rel` (a path relative to a dataset root, `/`-separated) is a committed Parquet file of
/// the embedded layout: ends in `.parquet` (any case: `.PARQUET` too), and no component is hidden
/// (the writer's temporaries are `.part-….parquet.tmp`, and nothing under a hidden directory is
/// data).
pub fn is_data_file(rel: &str) -> bool {
    rel.to_ascii_lowercase().ends_with(".parquet")
        && !rel.split('/').any(|c| c.is_empty() || c.starts_with('.'))
}

/// What a dataset holds: its data files, and every other file (and hidden directory, with a
/// trailing `/`) that is not imported, so none is left out silently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Data files ([`is_data_file`]), sorted, `/`-separated relative paths.
    pub files: Vec<String>,
    /// Everything else, sorted.
    pub skipped: Vec<String>,
}

/// The table of a dataset file, from its `data_type=<table>` path component.
pub fn data_type_of(rel: &str) -> Option<DataType> {
    rel.split('/')
        .find_map(|c| c.strip_prefix("data_type="))
        .and_then(DataType::parse)
}

/// The `date=YYYY-MM-DD` component of a dataset path.
pub fn date_of(rel: &str) -> Option<&str> {
    rel.split('/').find_map(|c| c.strip_prefix("date="))
}

/// The `exchange=<exchange>` component of a dataset path.
pub fn exchange_of(rel: &str) -> Option<Exchange> {
    rel.split('/')
        .find_map(|c| c.strip_prefix("exchange="))
        .and_then(parse_exchange)
}

/// An exchange by its config name (`binance_spot`).
pub fn parse_exchange(name: &str) -> Option<Exchange> {
    Exchange::ALL.into_iter().find(|x| x.as_str() == name)
}

/// Every data file under `root` (see [`is_data_file`]) as sorted `/`-separated relative paths: the
/// import plan, one unit per file, the same on every run over the same dataset.
pub fn list_dataset(root: &Path) -> crate::error::Result<Vec<String>> {
    Ok(list_dataset_all(root)?.files)
}

/// Every file under `root`: the data files and the skipped ones ([`Listing`]). A directory that
/// cannot be listed is an error naming it (its files cannot be verified or imported).
pub fn list_dataset_all(root: &Path) -> crate::error::Result<Listing> {
    let mut out = Listing::default();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(super::io_error("list", &dir))?;
        for entry in entries {
            let entry = entry.map_err(super::io_error("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if name.starts_with('.') {
                    out.skipped.push(format!("{rel}/"));
                } else {
                    stack.push((entry.path(), rel));
                }
            } else if is_data_file(&rel) {
                out.files.push(rel);
            } else {
                out.skipped.push(rel);
            }
        }
    }
    out.files.sort();
    out.skipped.sort();
    Ok(out)
}

/// The import plan's unit ids (the relative paths); a path that is not a valid unit id (over 1024
/// bytes, control characters) is left out with an error logged.
pub fn import_units(files: &[String]) -> Vec<UnitId> {
    files
        .iter()
        .filter_map(|f| match UnitId::new(f.clone()) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(file = %f, error = %e, "file left out of the import");
                None
            }
        })
        .collect()
}

/// What a replay selects: a time range (UTC ms, `to` exclusive) and optional exchange, data type and
/// symbol lists (empty: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// First exchange time replayed, UTC ms, inclusive.
    pub from_ms: i64,
    /// End of the range, UTC ms, exclusive.
    pub to_ms: i64,
    pub exchanges: Vec<Exchange>,
    pub data_types: Vec<DataType>,
    pub symbols: Vec<String>,
}

/// The range of a job given no `--from`/`--to`: `[0, 10000-01-01)`, every stored time.
pub const ALL_TIME: (i64, i64) = (0, 253_402_300_800_000);

impl Filter {
    /// Everything in `[from_ms, to_ms)`, no filter.
    pub fn range(from_ms: i64, to_ms: i64) -> Filter {
        Filter {
            from_ms,
            to_ms,
            exchanges: vec![],
            data_types: vec![],
            symbols: vec![],
        }
    }

    /// The filter of the command-line options: `from`/`to` RFC 3339 or UTC ms (`to` exclusive;
    /// [`ALL_TIME`]'s end when absent), comma-split exchange config names, table names and
    /// normalized symbols. The error names the bad option.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        exchanges: &[String],
        data_types: &[String],
        symbols: &[String],
    ) -> Result<Filter, String> {
        let time = |t: Option<&str>, what: &str, default: i64| match t {
            Some(t) => marketprism_report::when::parse_time(t, what).map_err(|e| e.to_string()),
            None => Ok(default),
        };
        let filter = Filter {
            from_ms: time(from, "--from", ALL_TIME.0)?,
            to_ms: time(to, "--to", ALL_TIME.1)?,
            exchanges: exchanges
                .iter()
                .map(|x| parse_exchange(x).ok_or_else(|| format!("--exchange {x:?}")))
                .collect::<Result<_, _>>()?,
            data_types: data_types
                .iter()
                .map(|d| DataType::parse(d).ok_or_else(|| format!("--data-type {d:?}")))
                .collect::<Result<_, _>>()?,
            symbols: symbols
                .iter()
                .map(|s| {
                    marketprism_model::Symbol::new(s.as_str())
                        .map(|_| s.clone())
                        .map_err(|_| format!("--symbol {s:?}"))
                })
                .collect::<Result<_, _>>()?,
        };
        if filter.to_ms <= filter.from_ms {
            return Err("--to must be after --from".into());
        }
        Ok(filter)
    }

    /// Whether `event` is replayed.
    pub fn matches(&self, event: &Event) -> bool {
        event.ts_ms >= self.from_ms
            && event.ts_ms < self.to_ms
            && self.wants_exchange(event.exchange)
            && self.wants_type(event.data_type())
            && (self.symbols.is_empty() || self.symbols.iter().any(|s| s == event.symbol.as_str()))
    }

    pub fn wants_exchange(&self, exchange: Exchange) -> bool {
        self.exchanges.is_empty() || self.exchanges.contains(&exchange)
    }

    pub fn wants_type(&self, data_type: DataType) -> bool {
        self.data_types.is_empty() || self.data_types.contains(&data_type)
    }

    /// The selected data types in [`DataType::ALL`] order.
    pub fn types(&self) -> Vec<DataType> {
        DataType::ALL
            .into_iter()
            .filter(|d| self.wants_type(*d))
            .collect()
    }

    /// Whether `[lo, hi]` (UTC ms, inclusive) overlaps the range.
    pub fn overlaps(&self, lo: i64, hi: i64) -> bool {
        hi >= self.from_ms && lo < self.to_ms
    }
}

/// One replay unit: a data type on one UTC day, clipped to the filter's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub data_type: DataType,
    /// The part of the day inside the range: UTC ms, `to` exclusive.
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Partition {
    /// The unit id: `{day}/{data_type}`, e.g. `2026-11-30/trades`.
    pub fn unit_id(&self) -> String {
        format!("{}/{}", self.day, self.data_type)
    }
}

/// The replay plan: per UTC day of `[from, to)`, in time order, one partition per selected data type
/// (in [`DataType::ALL`] order). Day-major, so replaying a day's partitions together in exchange-time
/// order and the days in order gives exchange-time order over the whole range.
pub fn replay_plan(filter: &Filter) -> Vec<Partition> {
    let mut out = Vec::new();
    if filter.to_ms <= filter.from_ms {
        return out;
    }
    let types = filter.types();
    let mut day = day_start(filter.from_ms);
    while day < filter.to_ms {
        let (from_ms, to_ms) = (day.max(filter.from_ms), (day + DAY_MS).min(filter.to_ms));
        for &data_type in &types {
            out.push(Partition {
                day: day_name(day),
                data_type,
                from_ms,
                to_ms,
            });
        }
        day += DAY_MS;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::synthetic::synthetic_event;

    #[test]
    fn data_files_skip_temporaries_and_hidden_directories() {
        let ok = "date=2026-01-01/exchange=okx_spot/data_type=trades/part-x-0000000001.parquet";
        assert!(is_data_file(ok));
        assert!(!is_data_file(
            "date=2026-01-01/exchange=okx_spot/data_type=trades/.part-x-0000000001.parquet.tmp"
        ));
        assert!(!is_data_file(
            "date=2026-01-01/exchange=okx_spot/data_type=trades/.part-x.parquet"
        ));
        assert!(!is_data_file(".trash/part-x.parquet"));
        assert!(!is_data_file("notes.txt"));
        assert!(is_data_file(
            "date=2026-01-01/exchange=okx_spot/data_type=trades/part-x.PARQUET"
        ));
        assert_eq!(data_type_of(ok), Some(DataType::Trades));
        assert_eq!(date_of(ok), Some("2026-01-01"));
        assert_eq!(exchange_of(ok), Some(Exchange::OkxSpot));
        assert_eq!(data_type_of("date=x/data_type=nope/a.parquet"), None);
    }

    #[test]
    fn listing_is_sorted_and_relative() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir
            .path()
            .join("date=2026-01-02/exchange=okx_spot/data_type=trades");
        std::fs::create_dir_all(&d).unwrap();
        for name in ["part-b.parquet", "part-a.parquet", ".part-c.parquet.tmp"] {
            std::fs::write(d.join(name), b"x").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("date=2026-01-01")).unwrap();
        std::fs::write(dir.path().join("date=2026-01-01/z.parquet"), b"x").unwrap();
        let files = list_dataset(dir.path()).unwrap();
        assert_eq!(
            files,
            [
                "date=2026-01-01/z.parquet",
                "date=2026-01-02/exchange=okx_spot/data_type=trades/part-a.parquet",
                "date=2026-01-02/exchange=okx_spot/data_type=trades/part-b.parquet",
            ]
        );
        let missing = dir.path().join("missing");
        let e = list_dataset(&missing).unwrap_err().to_string();
        assert!(
            e.contains(&missing.display().to_string()),
            "the path is named: {e}"
        );
        std::fs::write(d.join("part-d.PARQUET"), b"x").unwrap();
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        std::fs::create_dir_all(dir.path().join(".trash")).unwrap();
        let all = list_dataset_all(dir.path()).unwrap();
        assert_eq!(all.files.len(), 4);
        assert!(all.files[3].ends_with("part-d.PARQUET"));
        assert_eq!(
            all.skipped,
            [
                ".trash/",
                "date=2026-01-02/exchange=okx_spot/data_type=trades/.part-c.parquet.tmp",
                "date=2026-01-02/exchange=okx_spot/data_type=trades/notes.txt",
            ]
        );
    }

    fn filter(from_ms: i64, to_ms: i64) -> Filter {
        Filter::range(from_ms, to_ms)
    }

    #[test]
    fn plan_is_day_major_and_clipped_to_the_range() {
        let day0 = 20_000 * DAY_MS;
        let mut f = filter(day0 + 5, day0 + DAY_MS + 7);
        f.data_types = vec![DataType::Trades, DataType::Orderbooks];
        let plan = replay_plan(&f);
        let ids: Vec<String> = plan.iter().map(Partition::unit_id).collect();
        let (d0, d1) = (day_name(day0), day_name(day0 + DAY_MS));
        assert_eq!(
            ids,
            [
                format!("{d0}/orderbooks"),
                format!("{d0}/trades"),
                format!("{d1}/orderbooks"),
                format!("{d1}/trades"),
            ]
        );
        assert_eq!((plan[0].from_ms, plan[0].to_ms), (day0 + 5, day0 + DAY_MS));
        assert_eq!(
            (plan[3].from_ms, plan[3].to_ms),
            (day0 + DAY_MS, day0 + DAY_MS + 7)
        );
        assert!(replay_plan(&filter(10, 10)).is_empty());
        // A range ending at midnight has no partition of the next day.
        assert_eq!(
            replay_plan(&filter(day0, day0 + DAY_MS)).len(),
            DataType::ALL.len()
        );
        assert_eq!(day_start(-1), -DAY_MS);
    }

    #[test]
    fn filters_parse_from_the_options_and_name_the_bad_one() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = Filter::parse(None, None, &[], &[], &[]).unwrap();
        assert_eq!((f.from_ms, f.to_ms), ALL_TIME);
        let f = Filter::parse(
            Some("2026-11-30T00:00:00Z"),
            Some("1796083200000"),
            &v(&["okx_spot"]),
            &v(&["trades"]),
            &v(&["BTC-USDT"]),
        )
        .unwrap();
        assert_eq!((f.from_ms, f.to_ms), (1_795_996_800_000, 1_796_083_200_000));
        assert_eq!(f.exchanges, [Exchange::OkxSpot]);
        let bad = |r: Result<Filter, String>| r.unwrap_err();
        assert!(bad(Filter::parse(None, None, &v(&["nope"]), &[], &[])).contains("--exchange"));
        assert!(bad(Filter::parse(None, None, &[], &v(&["x"]), &[])).contains("--data-type"));
        assert!(bad(Filter::parse(None, None, &[], &[], &v(&["a b"]))).contains("--symbol"));
        let t = Some("1796083200000");
        assert!(bad(Filter::parse(t, t, &[], &[], &[])).contains("after"));
        // A time in seconds is refused, not read as 1970.
        assert!(bad(Filter::parse(Some("1796083200"), None, &[], &[], &[])).contains("seconds"));
        assert!(bad(Filter::parse(Some("x"), None, &[], &[], &[])).contains("--from"));
    }

    #[test]
    fn filter_matches_range_exchange_type_and_symbol() {
        let e = synthetic_event(3, 1);
        let mut f = filter(e.ts_ms, e.ts_ms + 1);
        assert!(f.matches(&e));
        f.to_ms = e.ts_ms;
        assert!(!f.matches(&e), "to is exclusive");
        f.to_ms = e.ts_ms + 1;
        f.symbols = vec!["NOPE-USD".into()];
        assert!(!f.matches(&e));
        f.symbols = vec![e.symbol.as_str().into()];
        f.exchanges = vec![e.exchange];
        f.data_types = vec![e.data_type()];
        assert!(f.matches(&e));
        f.data_types = vec![DataType::Gaps];
        assert!(!f.matches(&e) || e.data_type() == DataType::Gaps);
        assert!(f.overlaps(e.ts_ms, e.ts_ms) && !f.overlaps(e.ts_ms + 1, e.ts_ms + 9));
    }
}
