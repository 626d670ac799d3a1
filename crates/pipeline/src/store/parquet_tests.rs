use super::*;
use marketprism_model::synthetic::{synthetic_event, synthetic_events};
use marketprism_telemetry::Health;
use tokio::sync::watch;

fn list_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every event in every `.parquet` file under `root`, in file-name order.
fn read_all(root: &Path) -> Vec<Event> {
    let mut out = Vec::new();
    for path in list_files(root) {
        if path.extension().is_some_and(|e| e == "parquet") {
            let dt = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("data_type="))
                .and_then(DataType::parse)
                .unwrap();
            out.extend(read_file(&path, dt).unwrap().to_events().unwrap());
        }
    }
    out
}

fn config(dir: &Path, flush_interval_ms: u64, max_rows: usize) -> ParquetConfig {
    ParquetConfig {
        dir: dir.to_path_buf(),
        flush_interval_ms,
        max_rows,
        max_buffered_rows: max_rows.max(200_000),
        compact: marketprism_config::ParquetCompactConfig {
            enabled: false,
            ..Default::default()
        },
        retention_days: 0,
    }
}

#[test]
fn layout_and_names() {
    let e = synthetic_event(0, 1);
    let key = PartitionKey::of(&e);
    assert_eq!(key.date(), "2026-01-01");
    assert_eq!(
        key.dir(Path::new("/d")),
        PathBuf::from("/d/date=2026-01-01/exchange=")
            .with_file_name(format!("exchange={}", e.exchange))
            .join("data_type=trades")
    );
    assert_eq!(utc_date(-1), "1969-12-31");
    // The partition's day is the UTC day of ts_ms, midnight belonging to the new day.
    let at = |ts_ms| {
        let mut e = e.clone();
        e.ts_ms = ts_ms;
        PartitionKey::of(&e)
    };
    assert_eq!(at(1_767_225_599_999).date(), "2025-12-31");
    assert_eq!(at(1_767_225_600_000).date(), "2026-01-01");
    assert!(at(1_767_225_599_999) < at(1_767_225_600_000));
    assert_eq!(at(-1).date(), "1969-12-31");
    assert_eq!(utc_date(1_767_225_599_999), "2025-12-31");
    assert_eq!(file_name("r1", 7), "part-r1-0000000007.parquet");
    assert_eq!(
        temp_name("part-r1-0000000007.parquet"),
        ".part-r1-0000000007.parquet.tmp"
    );
    let (a, b) = (new_run_id(), new_run_id());
    assert_ne!(a, b, "run ids are random per start");
    assert_eq!(a.len(), "20260101T000000Z-0123abcd".len(), "{a}");
}

#[test]
fn written_file_reads_back_exactly_and_leaves_no_temp() {
    let tmp = tempfile::tempdir().unwrap();
    let events = synthetic_events(9, 100 * DataType::ALL.len());
    for dt in DataType::ALL {
        let mine: Vec<Event> = events
            .iter()
            .filter(|e| e.data_type() == dt)
            .cloned()
            .collect();
        let rows = Rows::from_events(dt, &mine).unwrap();
        let name = file_name("t", 0);
        let dir = tmp.path().join(dt.as_str());
        let bytes = write_file(&dir, &name, &rows).unwrap();
        assert!(bytes > 0);
        assert_eq!(read_file(&dir.join(&name), dt).unwrap(), rows, "{dt}");
        assert_eq!(
            read_file(&dir.join(&name), dt)
                .unwrap()
                .to_events()
                .unwrap(),
            mine
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(&name)],
            "no .tmp left behind"
        );
    }
}

#[test]
fn small_files_are_uncompressed_large_ones_zstd_and_both_read_back() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let tmp = tempfile::tempdir().unwrap();
    let trades: Vec<Event> = synthetic_events(3, 30 * files::ZSTD_FROM_ROWS)
        .into_iter()
        .filter(|e| e.data_type() == DataType::Trades)
        .collect();
    for (n, zstd) in [(10, false), (files::ZSTD_FROM_ROWS, true)] {
        let rows = Rows::from_events(DataType::Trades, &trades[..n]).unwrap();
        let name = file_name("c", n as u64);
        write_file(tmp.path(), &name, &rows).unwrap();
        let path = tmp.path().join(&name);
        assert_eq!(read_file(&path, DataType::Trades).unwrap(), rows);
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let codec = reader.metadata().row_group(0).column(0).compression();
        let expected = if zstd {
            matches!(codec, parquet::basic::Compression::ZSTD(_))
        } else {
            codec == parquet::basic::Compression::UNCOMPRESSED
        };
        assert!(expected, "{n} rows: {codec:?}");
    }
}

#[test]
fn a_file_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = Rows::from_events(DataType::Trades, &[synthetic_event(1, 1)]).unwrap();
    let other = Rows::from_events(
        DataType::Trades,
        &[synthetic_event(1, 1 + DataType::ALL.len() as u64)],
    )
    .unwrap();
    write_file(tmp.path(), "part-x-0.parquet", &rows).unwrap();
    let err = write_file(tmp.path(), "part-x-0.parquet", &other).unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    assert_eq!(
        read_file(&tmp.path().join("part-x-0.parquet"), DataType::Trades).unwrap(),
        rows
    );
    assert_eq!(
        list_files(tmp.path()).len(),
        1,
        "the failed attempt left nothing behind"
    );
}

#[tokio::test]
async fn output_writes_every_event_on_shutdown_and_a_new_run_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let events = synthetic_events(4, 2_000);
    let run = |run_id: String, batch: Vec<Event>| {
        let cfg = config(tmp.path(), 60_000, 150);
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(run_parquet_output(cfg, run_id, rx, shutdown.clone()));
            for e in batch {
                tx.send(e).await.unwrap();
            }
            shutdown.cancel();
            drop(tx);
            task.await.unwrap().unwrap()
        }
    };
    let stats = run(new_run_id(), events[..1_000].to_vec()).await;
    assert_eq!(stats.events_received, 1_000);
    assert_eq!(stats.rows_written, 1_000);
    assert_eq!(stats.rows_rejected, 0);
    assert!(stats.files_written > 9, "max_rows splits files: {stats:?}");
    let first_files = list_files(tmp.path());
    let first_bytes: Vec<Vec<u8>> = first_files
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(
        first_files
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".tmp"))
    );

    let stats = run(new_run_id(), events[1_000..].to_vec()).await;
    assert_eq!(stats.rows_written, 1_000);
    for (p, bytes) in first_files.iter().zip(&first_bytes) {
        assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
    }
    let mut got = read_all(tmp.path());
    got.sort_by_key(|e| e.ts_ms);
    assert_eq!(got, events, "exactly the events, none lost or doubled");
}

#[tokio::test(start_paused = true)]
async fn flushes_every_interval_without_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_parquet_output(
        config(tmp.path(), 1_000, 1_000_000),
        "r".into(),
        rx,
        shutdown.clone(),
    ));
    tx.send(synthetic_event(2, 1)).await.unwrap();
    tokio::task::yield_now().await;
    assert!(
        read_all(tmp.path()).is_empty(),
        "nothing before the interval"
    );
    // Paused time: sleeping advances the clock to the next flush deterministically.
    let mut waited = 0;
    while read_all(tmp.path()).is_empty() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(read_all(tmp.path()), vec![synthetic_event(2, 1)]);
    shutdown.cancel();
    drop(tx);
    let stats = task.await.unwrap().unwrap();
    assert_eq!((stats.files_written, stats.rows_written), (1, 1));
}

#[tokio::test]
async fn events_that_cannot_be_stored_exactly_are_counted_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_parquet_output(
        config(tmp.path(), 60_000, 100),
        "r".into(),
        rx,
        shutdown.clone(),
    ));
    let mut bad = synthetic_event(2, 1);
    if let marketprism_model::Payload::Trade(t) = &mut bad.payload {
        t.price = "100000000000000000000".parse().unwrap();
    }
    tx.send(bad).await.unwrap();
    tx.send(synthetic_event(2, 10)).await.unwrap();
    drop(tx);
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        (
            stats.events_received,
            stats.rows_rejected,
            stats.rows_written
        ),
        (2, 1, 1)
    );
    assert_eq!(read_all(tmp.path()), vec![synthetic_event(2, 10)]);
}

#[test]
fn stale_temporaries_of_a_killed_run_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir
        .path()
        .join("date=2026-01-01/exchange=okx_spot/data_type=trades");
    std::fs::create_dir_all(&part).unwrap();
    std::fs::write(part.join(".part-a-0000000001.parquet.tmp"), b"half").unwrap();
    std::fs::write(part.join("part-a-0000000000.parquet"), b"whole").unwrap();
    std::fs::write(part.join("notes.tmp"), b"not ours").unwrap();
    assert_eq!(remove_stale_temporaries(dir.path()), 1);
    let mut left: Vec<_> = list_files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["notes.tmp", "part-a-0000000000.parquet"]);
}

/// Polls `check` every 10 ms for up to 10 s.
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out: {what}");
}

#[tokio::test]
async fn failing_writes_are_not_ready_bounded_and_their_drops_become_gap_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("out");
    // A file where the directory should be: every write fails, whoever runs the test (root too).
    std::fs::write(&root, b"not a directory").unwrap();
    let mut cfg = config(&root, 20, 100);
    cfg.max_buffered_rows = 100;
    let health = Health::new();
    let (_lock_tx, lock) = watch::channel(true);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_parquet_output_with(
        cfg,
        "r".into(),
        rx,
        health.clone(),
        crate::lease::Fence::from_verdict(lock),
        shutdown.clone(),
    ));
    let events = synthetic_events(5, 400);
    for e in &events[..300] {
        tx.send(e.clone()).await.unwrap();
    }
    let reason = |h: &Health| {
        h.snapshot()
            .get("parquet")
            .map(|s| (s.ready, s.reason.clone()))
    };
    wait_until("not ready, with the reason and the drops", || {
        reason(&health).is_some_and(|(ready, why)| !ready && why.contains("200 events dropped"))
    })
    .await;
    let (_, why) = reason(&health).unwrap();
    assert!(
        why.contains("Parquet writes to") && why.contains("100 rows buffered"),
        "{why}"
    );

    // The disk is back: the buffered rows are written, then the drops as overflow gaps.
    std::fs::remove_file(&root).unwrap();
    std::fs::create_dir(&root).unwrap();
    wait_until("ready again", || health.is_ready()).await;
    for e in &events[300..] {
        tx.send(e.clone()).await.unwrap();
    }
    shutdown.cancel();
    drop(tx);
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.events_received, 400);
    assert_eq!(stats.events_dropped, 200, "{stats:?}");
    assert!(stats.overflow_gaps > 0, "{stats:?}");
    assert_eq!(stats.rows_written, 200 + stats.overflow_gaps, "{stats:?}");
    assert!(
        list_files(&root)
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".tmp"))
    );

    let got = read_all(&root);
    let kept: Vec<&Event> = events[..100].iter().chain(&events[300..]).collect();
    for e in &kept {
        assert!(got.contains(e), "kept event lost: {e:?}");
    }
    let gaps: Vec<(&Event, &marketprism_model::Gap)> = got
        .iter()
        .filter_map(|e| match &e.payload {
            marketprism_model::Payload::Gap(g)
                if g.cause == marketprism_model::GapCause::Overflow
                    && g.detail.starts_with("Parquet output dropped") =>
            {
                Some((e, g))
            }
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len() as u64, stats.overflow_gaps);
    for e in &events[100..300] {
        if e.data_type() == DataType::Gaps {
            continue;
        }
        assert!(
            gaps.iter().any(|(ge, g)| {
                (ge.exchange, ge.market_type, &ge.symbol) == (e.exchange, e.market_type, &e.symbol)
                    && g.data_type == e.data_type()
                    && g.start_ms <= e.ts_ms
                    && e.ts_ms <= g.end_ms
            }),
            "dropped event not covered by a gap row: {e:?}"
        );
    }
}

#[tokio::test]
async fn writes_that_still_fail_at_exit_are_an_error_naming_rows_and_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("out");
    std::fs::write(&root, b"not a directory").unwrap();
    let mut cfg = config(&root, 20, 10);
    cfg.max_buffered_rows = 10;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_parquet_output(cfg, "r".into(), rx, shutdown.clone()));
    for e in synthetic_events(6, 25) {
        tx.send(e).await.unwrap();
    }
    drop(tx);
    let error = task.await.unwrap().unwrap_err().to_string();
    assert!(
        error.contains("10 rows could not be written") && error.contains("15 dropped events"),
        "{error}"
    );
}

#[tokio::test]
async fn a_lost_lock_drops_the_buffered_rows_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (lock_tx, lock) = watch::channel(true);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_parquet_output_with(
        config(tmp.path(), 60_000, 1_000),
        "r".into(),
        rx,
        Health::new(),
        crate::lease::Fence::from_verdict(lock),
        shutdown.clone(),
    ));
    let events = synthetic_events(7, 15);
    for e in &events[..10] {
        tx.send(e.clone()).await.unwrap();
    }
    // Buffered, not written yet (the interval is a minute); then the lock is lost.
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock_tx.send_replace(false);
    for e in &events[10..] {
        tx.send(e.clone()).await.unwrap();
    }
    shutdown.cancel();
    drop(tx);
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        (stats.rows_fenced, stats.rows_written),
        (15, 0),
        "{stats:?}"
    );
    assert!(
        list_files(tmp.path()).is_empty(),
        "a deposed holder writes nothing"
    );
}

#[test]
fn signal_datasets_have_float_flag_and_nullable_columns() {
    use arrow_schema::DataType as A;
    let fields = arrow_fields(DataType::SignalCvd);
    let field = |n: &str| fields.iter().find(|f| f.name() == n).unwrap().clone();
    assert_eq!(field("cvd").data_type(), &A::Float64);
    assert!(!field("cvd").is_nullable());
    assert!(field("z_cvd").is_nullable());
    assert_eq!(field("floor_used").data_type(), &A::Boolean);
    assert_eq!(field("trade_id").data_type(), &A::Utf8);
    let fusion = arrow_fields(DataType::SignalFusion);
    let level = fusion.iter().find(|f| f.name() == "level").unwrap();
    assert!(level.is_nullable() && level.data_type() == &A::Utf8);
}
