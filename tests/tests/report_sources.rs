//! The data-quality report's figures against a dataset whose empty minutes, duplicates, gaps and
//! latencies are known (`marketprism_tests::report_data`), written the way production writes it:
//! through the collector's Parquet output, and through the ClickHouse writer into ClickHouse 18.16.
//! Both sources must give the same report.

use marketprism_config::ClickHouseConfig;
use marketprism_model::{DataType, Event};
use marketprism_pipeline::store::ClickHouseWriter;
use marketprism_report::{Criteria, Range, Report, Verdict, evaluate, source};
use marketprism_tests::report_data::{self as data, FROM, TO, write_parquet};
use marketprism_tests::servers::{clickhouse_url, unique_name};

const RANGE: Range = Range {
    from_ms: FROM,
    to_ms: TO,
};

fn check_known_figures(report: &Report) {
    let trades = report
        .streams
        .iter()
        .find(|s| s.id.data_type == DataType::Trades)
        .expect("trades stream");
    assert_eq!(
        trades.id.to_string(),
        "binance_derivatives/perpetual/trades/BTC-USDT"
    );
    assert_eq!(trades.rows, data::TRADES_ROWS);
    assert_eq!(trades.duplicates, data::TRADES_DUPLICATES);
    assert_eq!(trades.whole_minutes, 10);
    assert_eq!(trades.empty_minutes, data::TRADES_EMPTY_MINUTES);
    assert_eq!(trades.rows_per_minute[4], 0);
    assert_eq!(
        trades.rows_per_minute[0], 22,
        "minute 0 holds two redelivered trades"
    );
    let lat = trades.latency.as_ref().unwrap();
    assert_eq!(
        (lat.p50_ms, lat.p99_ms, lat.max_ms),
        (data::TRADES_P50_MS, data::TRADES_P99_MS, 300)
    );
    assert_eq!(
        trades.gaps.count,
        data::TRADES_GAPS,
        "the disconnect gap was written twice: one gap"
    );
    assert_eq!(trades.gaps.duration_ms, data::TRADES_GAP_MS);
    assert_eq!(trades.gaps.causes.get("disconnect"), Some(&1));
    assert_eq!(trades.gaps.causes.get("sequence_gap"), Some(&1));
    let failed: Vec<&str> = trades
        .checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.criterion)
        .collect();
    assert_eq!(
        failed,
        [
            "max_empty_minute_ratio",
            "max_duplicate_ratio",
            "max_latency_p99_ms",
            "max_gap_ratio"
        ]
    );
    assert_eq!(trades.verdict, Verdict::Fail);

    let books = report
        .streams
        .iter()
        .find(|s| s.id.data_type == DataType::Orderbooks)
        .expect("orderbooks stream");
    assert_eq!(books.rows, data::BOOKS_ROWS);
    assert_eq!(
        (books.empty_minutes, books.duplicates, books.gaps.count),
        (0, 0, 0)
    );
    assert_eq!(books.latency.as_ref().unwrap().p99_ms, 5);
    assert_eq!(books.verdict, Verdict::Pass, "{:?}", books.checks);

    assert_eq!(report.streams.len(), 2);
    assert_eq!(report.verdict, Verdict::Fail, "the worst stream decides");
}

#[tokio::test]
async fn parquet_dataset_gives_the_known_figures() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path(), data::events()).await;
    let scan = source::parquet::scan(dir.path(), Some(RANGE)).unwrap();
    let report = evaluate(
        &scan.observed,
        &[],
        RANGE,
        &Criteria::default(),
        "parquet".into(),
    );
    check_known_figures(&report);

    // Without a range the report covers the run: first to last receive time, every row counted.
    let all = source::parquet::scan(dir.path(), None).unwrap();
    let span = all.range_or_span(None);
    assert_eq!(
        span.from_ms,
        FROM + 8,
        "first book at T0 + 3 ms, received 5 ms later"
    );
    assert!(span.to_ms > FROM + 9 * data::MINUTE && span.to_ms <= TO + 300);
    let rows: u64 = all.observed.values().map(|s| s.rows()).sum();
    assert_eq!(rows, data::TRADES_ROWS + data::BOOKS_ROWS);

    // A narrower range keeps only its rows (and the gaps that overlap it).
    let minute_7 = Range {
        from_ms: FROM + 7 * data::MINUTE,
        to_ms: FROM + 8 * data::MINUTE,
    };
    let scan = source::parquet::scan(dir.path(), Some(minute_7)).unwrap();
    let report = evaluate(
        &scan.observed,
        &[],
        minute_7,
        &Criteria::default(),
        "parquet".into(),
    );
    let trades = report
        .streams
        .iter()
        .find(|s| s.id.data_type == DataType::Trades)
        .unwrap();
    assert_eq!(
        (trades.rows, trades.duplicates, trades.gaps.count),
        (20, 0, 1)
    );
}

#[test]
fn a_damaged_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir
        .path()
        .join("date=2026-11-30/exchange=okx_spot/data_type=trades");
    std::fs::create_dir_all(&part).unwrap();
    std::fs::write(part.join("part-x-1.parquet"), b"PAR1 not really").unwrap();
    // A write in progress (hidden temporary) is not part of the dataset.
    std::fs::write(part.join(".part-x-2.parquet.tmp"), b"partial").unwrap();
    let err = source::parquet::scan(dir.path(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("part-x-1.parquet"), "{err}");
    assert!(!err.contains("part-x-2"), "{err}");
}

#[tokio::test]
async fn clickhouse_gives_the_same_report_as_parquet() {
    let Some(url) = clickhouse_url("clickhouse_gives_the_same_report_as_parquet") else {
        return;
    };
    let config = ClickHouseConfig {
        url: url.clone(),
        hot_database: unique_name("mp_report_hot"),
        cold_database: unique_name("mp_report_cold"),
        ..ClickHouseConfig::default()
    };
    let writer = ClickHouseWriter::connect(&config).await.unwrap();
    let admin = clickhouse::Client::default()
        .with_url(&url)
        .with_validation(false);
    // Merges off: the report counts duplicates as stored, before FINAL or a merge folds them.
    for dt in DataType::ALL {
        let sql = format!("SYSTEM STOP MERGES {}.{dt}", config.hot_database);
        admin.query(&sql).execute().await.unwrap();
    }
    let events = data::events();
    let (first, redelivered) = events.split_at(events.len() - 3);
    for batch in [first, redelivered] {
        for dt in DataType::ALL {
            let of_type: Vec<Event> = batch
                .iter()
                .filter(|e| e.data_type() == dt)
                .cloned()
                .collect();
            if !of_type.is_empty() {
                writer.insert(dt, &of_type).await.unwrap();
            }
        }
    }
    let scan = source::clickhouse::scan(&config, &config.hot_database, Some(RANGE))
        .await
        .unwrap();
    let from_clickhouse = evaluate(
        &scan.observed,
        &[],
        RANGE,
        &Criteria::default(),
        "ch".into(),
    );
    check_known_figures(&from_clickhouse);

    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path(), events.clone()).await;
    let scan = source::parquet::scan(dir.path(), Some(RANGE)).unwrap();
    let from_parquet = evaluate(
        &scan.observed,
        &[],
        RANGE,
        &Criteria::default(),
        "ch".into(),
    );
    assert_eq!(from_clickhouse, from_parquet);

    // No range: ClickHouse finds the same span as the files.
    let scan_all = source::clickhouse::scan(&config, &config.hot_database, None)
        .await
        .unwrap();
    let files_all = source::parquet::scan(dir.path(), None).unwrap();
    assert_eq!(scan_all.span, files_all.span);

    for db in [&config.hot_database, &config.cold_database] {
        admin
            .query(&format!("DROP DATABASE IF EXISTS {db}"))
            .execute()
            .await
            .unwrap();
    }
}

/// The binary's contract: exit 0 pass, 1 fail, 2 when the report cannot be made; JSON, HTML and
/// the compact summary written where asked.
#[tokio::test]
async fn the_report_command_exits_by_its_verdict() {
    let bin = marketprism_tests::process::collector_bin();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_parquet(&data, data::events()).await;
    let run = |extra: &[&str]| {
        std::process::Command::new(&bin)
            .arg("report")
            .arg("--parquet")
            .arg(&data)
            .args(["--from", &FROM.to_string(), "--to", &TO.to_string()])
            .args(extra)
            .output()
            .unwrap()
    };
    let summary = dir.path().join("summary.json");
    let html = dir.path().join("report.html");
    let out = run(&[
        "--json",
        "-",
        "--html",
        html.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["streams"].as_array().unwrap().len(), 2);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        (s["verdict"].as_str(), s["failing_streams"].as_u64()),
        (Some("fail"), Some(1))
    );
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));

    // The same data passes criteria that accept its faults.
    let lenient = dir.path().join("criteria.yaml");
    std::fs::write(
        &lenient,
        "data_types:\n  trades: {max_empty_minute_ratio: 0.2, max_duplicate_ratio: 0.02, \
         max_latency_p99_ms: 400, max_gap_ratio: 0.2}\n",
    )
    .unwrap();
    let out = run(&["--criteria", lenient.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A criteria file with a typo: exit 2, naming the field.
    std::fs::write(&lenient, "data_types:\n  trades: {max_latency_p99: 400}\n").unwrap();
    let out = run(&["--criteria", lenient.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_latency_p99"), "{err}");

    // A dataset that is not there: exit 2.
    let out = std::process::Command::new(&bin)
        .args(["report", "--parquet", "/nonexistent/marketprism"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// With `--config`, every stream the config collects is judged: one that wrote nothing in the range
/// is listed with 0 rows and fails, never left out; a wrong directory is exit 2, and what does
/// not fit the dataset's layout is named.
#[tokio::test]
async fn configured_streams_without_rows_fail_and_wrong_paths_are_errors() {
    let bin = marketprism_tests::process::collector_bin();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_parquet(&data, data::events()).await;
    std::fs::write(data.join("README.txt"), "notes").unwrap();
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "exchanges:\n  - {{exchange: binance_derivatives, symbols: [BTC-USDT, ETH-USDT], data_types: [trades]}}\n\
             outputs:\n  parquet: {{dir: {}}}\n",
            data.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(&bin)
        .args(["report", "--config"])
        .arg(&config)
        .args([
            "--from",
            &FROM.to_string(),
            "--to",
            &TO.to_string(),
            "--json",
            "-",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().unwrap();
    let eth = streams
        .iter()
        .find(|s| s["symbol"] == "ETH-USDT" && s["data_type"] == "trades")
        .unwrap_or_else(|| panic!("the configured ETH-USDT trades are judged: {json}"));
    assert_eq!(
        (eth["rows"].as_u64(), eth["verdict"].as_str()),
        (Some(0), Some("fail"))
    );
    assert!(json["skipped"].to_string().contains("README.txt"), "{json}");
    assert!(stderr.contains("README.txt"), "{stderr}");

    // The directory above the dataset, and an empty one: exit 2 naming the expected layout.
    for wrong in [dir.path().to_path_buf(), dir.path().join("empty")] {
        std::fs::create_dir_all(&wrong).unwrap();
        let out = std::process::Command::new(&bin)
            .args(["report", "--parquet"])
            .arg(&wrong)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", wrong.display());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no dataset here"));
    }
}
