//! ClickHouse tables of another shape than the project's DDL: the sink inserts nothing into them
//! (never a silent insert at the wrong scale), says which table and column differ and how to fix
//! it, keeps the other tables flowing, and resumes once the table is fixed. Real nats-server and
//! ClickHouse 18.16, the real publisher and sink.
#![forbid(unsafe_code)]

use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Decimal, Event, Payload};
use marketprism_pipeline::sink::run_sink;
use marketprism_pipeline::store::{Dialect, ddl};
use marketprism_telemetry::Health;
use marketprism_tests::pipeline::{Run, eventually};
use marketprism_tests::servers::{clickhouse_url, nats_url};
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Trades at price 600.10, quantity 0.5, and some funding rates (another table).
fn events() -> Vec<Event> {
    synthetic_events(91, 360)
        .into_iter()
        .filter(|e| matches!(e.data_type(), DataType::Trades | DataType::FundingRates))
        .map(|mut e| {
            if let Payload::Trade(t) = &mut e.payload {
                t.price = Decimal::from_str("600.10").unwrap();
                t.quantity = Decimal::from_str("0.5").unwrap();
            }
            e
        })
        .collect()
}

/// The project's DDL for the trades tables (legacy dialect) with price and quantity as Decimal(38, 8).
fn narrow_trades_ddl(run: &Run, cold_too: bool) -> Vec<String> {
    let hot = format!("{}.trades\n", run.sink.clickhouse.hot_database);
    let cold = format!("{}.trades\n", run.sink.clickhouse.cold_database);
    ddl(Dialect::Legacy, &run.sink.clickhouse)
        .into_iter()
        .filter(|s| {
            s.starts_with("CREATE DATABASE")
                || s.contains(&format!("TABLE IF NOT EXISTS {hot}"))
                || (cold_too && s.contains(&format!("TABLE IF NOT EXISTS {cold}")))
        })
        .map(|s| {
            s.replace("`price` Decimal(38, 18)", "`price` Decimal(38, 8)")
                .replace("`quantity` Decimal(38, 18)", "`quantity` Decimal(38, 8)")
        })
        .collect()
}

async fn execute(run: &Run, sql: &str) {
    run.ch
        .query(sql)
        .execute()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn count(run: &Run, db: &str, table: &str) -> u64 {
    run.ch
        .query(&format!("SELECT count() FROM {db}.{table}"))
        .fetch_one::<u64>()
        .await
        .unwrap()
}

/// Sink + publish; waits for the funding rates to land and the trades to be refused.
async fn start(
    run: &Run,
    health: &Health,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let sink = tokio::spawn({
        let (config, health, stop) = (run.sink.clone(), health.clone(), stop.clone());
        async move {
            let _ = run_sink(config, health, stop).await;
        }
    });
    let events = events();
    let funding = events
        .iter()
        .filter(|e| e.data_type() == DataType::FundingRates)
        .count() as u64;
    run.publish(events).await;
    let hot = run.sink.clickhouse.hot_database.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(run, &hot, "funding_rates").await < funding {
        assert!(
            tokio::time::Instant::now() < deadline,
            "other tables keep flowing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sink
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_another_shape_get_no_rows_and_a_message_naming_the_fix() {
    let test = "tables_of_another_shape_get_no_rows_and_a_message_naming_the_fix";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let run = Run::new("st_schema", &nats, &ch, 200).await;
    let (hot, cold) = (
        run.sink.clickhouse.hot_database.clone(),
        run.sink.clickhouse.cold_database.clone(),
    );
    for sql in narrow_trades_ddl(&run, true) {
        execute(&run, &sql).await;
    }
    let health = Health::new();
    let stop = CancellationToken::new();
    let sink = start(&run, &health, &stop).await;
    eventually("not ready, naming table, column, types and fix", Duration::from_secs(30), || {
        health.snapshot().get("clickhouse").is_some_and(|s| {
            !s.ready
                && s.reason.contains(&format!(
                    "{hot}.trades: column price is Decimal(38, 8), expected Decimal(38, 18); fix: ALTER TABLE {hot}.trades MODIFY COLUMN price Decimal(38, 18)"
                ))
        })
    })
    .await;
    assert_eq!(count(&run, &hot, "trades").await, 0, "no silent insert");
    assert_eq!(count(&run, &cold, "trades").await, 0);

    // The migration the message names; the view over the old shape is created again.
    for db in [&hot, &cold] {
        for col in ["price", "quantity"] {
            execute(
                &run,
                &format!("ALTER TABLE {db}.trades MODIFY COLUMN {col} Decimal(38, 18)"),
            )
            .await;
        }
    }
    execute(&run, &format!("DROP TABLE {cold}.trades_from_hot")).await;
    let view = ddl(Dialect::Legacy, &run.sink.clickhouse)
        .into_iter()
        .find(|s| s.contains(&format!("VIEW IF NOT EXISTS {cold}.trades_from_hot")))
        .unwrap();
    execute(&run, &view).await;

    // The held batch is checked again at its retry and lands, at the right scale.
    let trades = events()
        .iter()
        .filter(|e| e.data_type() == DataType::Trades)
        .count() as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(&run, &cold, "trades").await < trades {
        assert!(
            tokio::time::Instant::now() < deadline,
            "trades land after the fix"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let prices: Vec<(String, String)> = run
        .ch
        .query(&format!(
            "SELECT DISTINCT toString(price), toString(quantity) FROM {hot}.trades"
        ))
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(prices.len(), 1, "{prices:?}");
    assert_eq!(
        Decimal::from_str(&prices[0].0).unwrap(),
        Decimal::from_str("600.10").unwrap()
    );
    assert_eq!(
        Decimal::from_str(&prices[0].1).unwrap(),
        Decimal::from_str("0.5").unwrap()
    );
    eventually("ready again", Duration::from_secs(30), || health.is_ready()).await;
    stop.cancel();
    let _ = sink.await;
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_of_another_shape_stops_the_table_before_the_hot_table_takes_rows() {
    let test = "a_view_of_another_shape_stops_the_table_before_the_hot_table_takes_rows";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let run = Run::new("st_schema_view", &nats, &ch, 200).await;
    let (hot, cold) = (
        run.sink.clickhouse.hot_database.clone(),
        run.sink.clickhouse.cold_database.clone(),
    );
    // Only the hot table pre-created: the sink creates the cold table and the view over it.
    for sql in narrow_trades_ddl(&run, false) {
        execute(&run, &sql).await;
    }
    let health = Health::new();
    let stop = CancellationToken::new();
    let sink = start(&run, &health, &stop).await;
    eventually(
        "not ready, naming the hot table and the view",
        Duration::from_secs(30),
        || {
            health.snapshot().get("clickhouse").is_some_and(|s| {
                !s.ready
                    && s.reason
                        .contains(&format!("{hot}.trades: column price is Decimal(38, 8)"))
                    && s.reason.contains(&format!(
                        "{cold}.trades_from_hot: column price is Decimal(38, 8)"
                    ))
            })
        },
    )
    .await;
    // Retries happen (back-off from 1 s): none of them writes into the hot table.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        count(&run, &hot, "trades").await,
        0,
        "no rows before the check passes"
    );
    assert_eq!(count(&run, &cold, "trades").await, 0);
    stop.cancel();
    let _ = sink.await;
    run.cleanup().await;
}

/// `schema --check` / `--migrate` of the binary on a config, with its exit status and stdout.
fn schema_command(config: &std::path::Path, flag: &str) -> (bool, String) {
    let out = std::process::Command::new(marketprism_tests::process::collector_bin())
        .args(["schema", flag, "--config"])
        .arg(config)
        .output()
        .expect("run marketprism-collector schema");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_check_names_the_differences_and_migrate_fixes_them() {
    let test = "schema_check_names_the_differences_and_migrate_fixes_them";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let run = Run::new("st_schema_cmd", &nats, &ch, 200).await;
    let (hot, cold) = (
        run.sink.clickhouse.hot_database.clone(),
        run.sink.clickhouse.cold_database.clone(),
    );
    for sql in narrow_trades_ddl(&run, true) {
        execute(&run, &sql).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sink.yaml");
    std::fs::write(
        &config,
        format!(
            "sink:\n  nats: {{url: '{nats}'}}\n  clickhouse: {{url: '{ch}', hot_database: {hot}, cold_database: {cold}}}\n"
        ),
    )
    .unwrap();

    let (ok, out) = schema_command(&config, "--check");
    assert!(!ok, "differences fail the check: {out}");
    assert!(
        out.contains(&format!("{hot}.trades: column price is Decimal(38, 8), expected Decimal(38, 18); fix: ALTER TABLE {hot}.trades MODIFY COLUMN price Decimal(38, 18)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{cold}.funding_rates: table is missing")),
        "{out}"
    );
    let (ok, out) = schema_command(&config, "--check");
    assert!(!ok, "a check changes nothing: {out}");

    let (ok, out) = schema_command(&config, "--migrate");
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "ALTER TABLE {cold}.trades MODIFY COLUMN quantity Decimal(38, 18);"
        )),
        "{out}"
    );
    assert!(out.contains("schema matches"), "{out}");
    let (ok, out) = schema_command(&config, "--check");
    assert!(
        ok && out.contains("schema matches (legacy dialect"),
        "{out}"
    );
    run.cleanup().await;
}
