//! `marketprism-collector report`: the data-quality report (see `marketprism_report`) of the Parquet
//! dataset or the ClickHouse database a config writes to, as JSON, an HTML page and a compact summary.

use crate::error::{Error, Result};
use marketprism_config::{ClickHouseConfig, Config};
use marketprism_model::DataType;
use marketprism_report::{Criteria, Range, Report, StreamId, evaluate, source};
use std::path::{Path, PathBuf};

/// Where the report reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Parquet(PathBuf),
    /// The server and the database to read.
    ClickHouse(ClickHouseConfig, String),
}

/// The source the arguments name: `--parquet DIR`; `--clickhouse` (the config's `sink.clickhouse`,
/// its hot database unless `database`); or, with a config alone, its Parquet output, else its sink.
pub fn choose_source(
    parquet: Option<&Path>,
    clickhouse: bool,
    config: Option<&Config>,
    database: Option<&str>,
) -> Result<Source> {
    let sink = config.and_then(|c| c.sink.as_ref()).map(|s| &s.clickhouse);
    let from_sink = |ch: &ClickHouseConfig| {
        let db = database.unwrap_or(&ch.hot_database).to_string();
        Source::ClickHouse(ch.clone(), db)
    };
    match (parquet, clickhouse) {
        (Some(dir), false) => Ok(Source::Parquet(dir.to_path_buf())),
        (None, true) => sink.map(from_sink).ok_or_else(|| {
            Error::Other("--clickhouse needs --config with a sink.clickhouse section".into())
        }),
        (Some(_), true) => Err(Error::Other(
            "give --parquet or --clickhouse, not both".into(),
        )),
        (None, false) => {
            let parquet_dir = config
                .and_then(|c| c.outputs.parquet.as_ref())
                .map(|p| p.dir.clone());
            match (parquet_dir, sink) {
                (Some(dir), _) => Ok(Source::Parquet(dir)),
                (None, Some(ch)) => Ok(from_sink(ch)),
                (None, None) => Err(Error::Other(
                    "nothing to read: give --parquet DIR, or --config with outputs.parquet or sink.clickhouse"
                        .into(),
                )),
            }
        }
    }
}

/// Reads `source` over `range` (the run's receive-time span when `None`) and judges it; `expected`
/// streams (see [`expected_streams`]) without a row are judged as empty, never left out.
pub async fn make_report(
    source: &Source,
    range: Option<Range>,
    criteria: &Criteria,
    expected: &[StreamId],
) -> Result<Report> {
    let (scan, name) = match source {
        Source::Parquet(dir) => {
            let dir2 = dir.clone();
            let scan = tokio::task::spawn_blocking(move || source::parquet::scan(&dir2, range))
                .await
                .map_err(|e| Error::Other(format!("report reader: {e}")))??;
            (scan, format!("parquet:{}", dir.display()))
        }
        Source::ClickHouse(config, database) => {
            let scan = source::clickhouse::scan(config, database, range).await?;
            // The URL only: credentials never reach a report.
            (scan, format!("clickhouse:{}/{database}", config.url))
        }
    };
    if range.is_none() && scan.span.is_none() {
        return Err(Error::Other(format!(
            "{name}: not a single row to judge (give --from/--to to judge an empty range)"
        )));
    }
    let range = scan.range_or_span(range);
    marketprism_report::when::check_range(range)?;
    let mut report = evaluate(&scan.observed, expected, range, criteria, name);
    report.skipped = scan
        .skipped
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    Ok(report)
}

/// The streams `config` collects: every offered data type of every entry's symbols, and the four
/// signal types of its signals symbols. Market types are left to the data (the venue decides them).
pub fn expected_streams(config: &Config) -> Vec<StreamId> {
    let mut out = Vec::new();
    for ex in &config.exchanges {
        let unsupported = marketprism_venues::plan::unsupported(ex);
        let mut add = |data_type: DataType, symbol: &str| {
            out.push(StreamId {
                exchange: ex.exchange.as_str().to_owned(),
                market_type: String::new(),
                data_type,
                symbol: symbol.to_owned(),
            })
        };
        for &data_type in ex.data_types.iter().filter(|d| !unsupported.contains(d)) {
            for symbol in &ex.symbols {
                add(data_type, symbol.as_str());
            }
        }
        for symbol in ex.signals.iter().flat_map(|s| &s.symbols) {
            for data_type in DataType::SIGNALS {
                add(data_type, symbol.as_str());
            }
        }
    }
    out
}

/// Writes the report's files; `-` as the JSON path is stdout.
pub fn write_outputs(
    report: &Report,
    json: Option<&Path>,
    html: Option<&Path>,
    summary: Option<&Path>,
) -> Result<()> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text)
            .map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))
    };
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report)?;
        if path == Path::new("-") {
            println!("{text}");
        } else {
            write(path, text)?;
        }
    }
    if let Some(path) = html {
        write(path, marketprism_report::html::render(report))?;
    }
    if let Some(path) = summary {
        write(path, report.summary_json())?;
    }
    Ok(())
}

/// The criteria file's overrides on the defaults, or the defaults.
pub fn load_criteria(path: Option<&Path>) -> Result<Criteria> {
    match path {
        None => Ok(Criteria::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::Other(format!("criteria {}: {e}", p.display())))?;
            Ok(Criteria::from_file_text(&text, &p.display().to_string())?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml).unwrap()
    }

    #[test]
    fn the_source_follows_the_arguments_then_the_config() {
        let both = config(
            "outputs:\n  parquet: {dir: /data}\nsink:\n  nats: {url: 'nats://n:4222'}\n  clickhouse: {url: 'http://ch:8123', hot_database: hot}\n",
        );
        assert_eq!(
            choose_source(None, false, Some(&both), None).unwrap(),
            Source::Parquet("/data".into())
        );
        let Source::ClickHouse(ch, db) = choose_source(None, true, Some(&both), None).unwrap()
        else {
            panic!("clickhouse expected")
        };
        assert_eq!((ch.url.as_str(), db.as_str()), ("http://ch:8123", "hot"));
        let Source::ClickHouse(_, db) =
            choose_source(None, true, Some(&both), Some("cold")).unwrap()
        else {
            panic!("clickhouse expected")
        };
        assert_eq!(db, "cold");
        assert_eq!(
            choose_source(Some(Path::new("/x")), false, Some(&both), None).unwrap(),
            Source::Parquet("/x".into())
        );
    }

    #[test]
    fn the_config_says_which_streams_to_expect() {
        let c = config(
            "exchanges:\n  - {exchange: binance_derivatives, symbols: [BTC-USDT, ETH-USDT], data_types: [trades, orderbooks, liquidations],\n     signals: {symbols: [BTC-USDT]}}\n  - {exchange: binance_spot, symbols: [BTC-USDT], data_types: [trades, funding_rates]}\n",
        );
        let names: Vec<String> = expected_streams(&c).iter().map(|s| s.to_string()).collect();
        assert!(
            names.contains(&"binance_derivatives/*/liquidations/ETH-USDT".to_owned()),
            "{names:?}"
        );
        assert!(names.contains(&"binance_derivatives/*/signal_events/BTC-USDT".to_owned()));
        assert!(!names.contains(&"binance_derivatives/*/signal_events/ETH-USDT".to_owned()));
        // Binance spot has no funding rates: the run reports that; the report does not expect it.
        assert!(names.contains(&"binance_spot/*/trades/BTC-USDT".to_owned()));
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("binance_spot/*/funding_rates")),
            "{names:?}"
        );
        assert_eq!(names.len(), 6 + 4 + 1, "{names:?}");
    }

    #[test]
    fn nothing_to_read_is_an_error_that_says_what_to_give() {
        let e = choose_source(None, false, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--parquet"), "{e}");
        let no_sink = config("outputs:\n  parquet: {dir: /data}\n");
        let e = choose_source(None, true, Some(&no_sink), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sink.clickhouse"), "{e}");
        assert!(choose_source(Some(Path::new("/x")), true, None, None).is_err());
    }
}
