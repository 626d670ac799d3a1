//! The ClickHouse store against a real server (ClickHouse 18.16 from `tests/run.sh`):
//! schema creation, RowBinary inserts of every table, deduplication with FINAL, and the cold copy by MV.

use marketprism_config::ClickHouseConfig;
use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Event, Payload};
use marketprism_pipeline::store::rows::*;
use marketprism_pipeline::store::{ClickHouseWriter, Dialect, Rows, TableRow};
use marketprism_tests::servers::{clickhouse_url, unique_name};

/// A schema in databases of its own, dropped when the test ends.
struct TestSchema {
    writer: ClickHouseWriter,
    admin: clickhouse::Client,
}

impl TestSchema {
    async fn create(url: &str) -> TestSchema {
        let config = ClickHouseConfig {
            url: url.to_owned(),
            hot_database: unique_name("mp_hot"),
            cold_database: unique_name("mp_cold"),
            ..ClickHouseConfig::default()
        };
        let writer = ClickHouseWriter::connect(&config).await.unwrap();
        let admin = clickhouse::Client::default()
            .with_url(url)
            .with_validation(false);
        // No background merges, so raw counts show every inserted copy until FINAL collapses them.
        for db in [&config.hot_database, &config.cold_database] {
            for dt in DataType::ALL {
                let sql = format!("SYSTEM STOP MERGES {db}.{dt}");
                admin.query(&sql).execute().await.unwrap();
            }
        }
        TestSchema { writer, admin }
    }

    fn hot(&self) -> &str {
        &self.writer.config().hot_database
    }

    fn cold(&self) -> &str {
        &self.writer.config().cold_database
    }

    async fn raw_count(&self, database: &str, dt: DataType) -> u64 {
        self.admin
            .query(&format!("SELECT count() FROM {database}.{dt}"))
            .fetch_one()
            .await
            .unwrap()
    }

    async fn drop(self) {
        for db in [self.cold(), self.hot()] {
            self.admin
                .query(&format!("DROP DATABASE IF EXISTS {db}"))
                .execute()
                .await
                .unwrap();
        }
    }
}

fn by_type(events: &[Event], dt: DataType) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.data_type() == dt)
        .cloned()
        .collect()
}

async fn fetch_events<R: TableRow>(writer: &ClickHouseWriter, database: &str) -> Vec<Event> {
    let rows: Vec<R> = writer.fetch_final(database).await.unwrap();
    rows.iter().map(|r| r.to_event().unwrap()).collect()
}

/// Every table's rows after FINAL, as events sorted by `ts_ms`.
async fn all_final(writer: &ClickHouseWriter, database: &str, dt: DataType) -> Vec<Event> {
    let mut events = match dt {
        DataType::Orderbooks => fetch_events::<OrderbookRow>(writer, database).await,
        DataType::Trades => fetch_events::<TradeRow>(writer, database).await,
        DataType::FundingRates => fetch_events::<FundingRateRow>(writer, database).await,
        DataType::OpenInterests => fetch_events::<OpenInterestRow>(writer, database).await,
        DataType::Liquidations => fetch_events::<LiquidationRow>(writer, database).await,
        DataType::LsrTopPositions => fetch_events::<LsrTopPositionRow>(writer, database).await,
        DataType::LsrAllAccounts => fetch_events::<LsrAllAccountRow>(writer, database).await,
        DataType::VolatilityIndices => fetch_events::<VolatilityIndexRow>(writer, database).await,
        DataType::Gaps => fetch_events::<GapRow>(writer, database).await,
        DataType::SignalOfi => fetch_events::<SignalOfiRow>(writer, database).await,
        DataType::SignalCvd => fetch_events::<SignalCvdRow>(writer, database).await,
        DataType::SignalFusion => fetch_events::<SignalFusionRow>(writer, database).await,
        DataType::SignalEvents => fetch_events::<SignalEventRow>(writer, database).await,
    };
    events.sort_by_key(|e| e.ts_ms);
    events
}

#[tokio::test]
async fn every_table_deduplicates_and_feeds_the_cold_database() {
    let Some(url) = clickhouse_url("every_table_deduplicates_and_feeds_the_cold_database") else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    assert_eq!(
        schema.writer.dialect(),
        Dialect::from_version(schema.writer.version())
    );
    // Creating the schema again is harmless (IF NOT EXISTS everywhere).
    schema.writer.create_schema().await.unwrap();

    let events = synthetic_events(21, DataType::ALL.len() * 120);
    for dt in DataType::ALL {
        let mine = by_type(&events, dt);
        assert_eq!(mine.len(), 120);
        // The same facts twice, in two inserts, as a redelivery after a crash would send them.
        schema.writer.insert(dt, &mine).await.unwrap();
        schema.writer.insert(dt, &mine).await.unwrap();
    }
    for dt in DataType::ALL {
        let mine = by_type(&events, dt);
        for db in [schema.hot(), schema.cold()] {
            assert_eq!(
                schema.raw_count(db, dt).await,
                240,
                "{db}.{dt}: both copies stored"
            );
            assert_eq!(
                schema.writer.count_final(db, dt).await.unwrap(),
                120,
                "{db}.{dt}: FINAL keeps one row per natural key"
            );
            assert_eq!(
                all_final(&schema.writer, db, dt).await,
                mine,
                "{db}.{dt}: every field round-trips exactly"
            );
        }
    }
    schema.drop().await;
}

#[tokio::test]
async fn the_latest_received_copy_wins_and_bad_decimals_insert_nothing() {
    let Some(url) = clickhouse_url("the_latest_received_copy_wins_and_bad_decimals_insert_nothing")
    else {
        return;
    };
    let schema = TestSchema::create(&url).await;
    let first = by_type(&synthetic_events(5, 18), DataType::Trades);
    let mut later = first.clone();
    for e in &mut later {
        e.recv_ts_ms += 60_000;
    }
    // Later copy inserted first: the version column, not insert order, decides.
    schema
        .writer
        .insert(DataType::Trades, &later)
        .await
        .unwrap();
    schema
        .writer
        .insert(DataType::Trades, &first)
        .await
        .unwrap();
    let stored = all_final(&schema.writer, schema.hot(), DataType::Trades).await;
    assert_eq!(stored, later);

    let mut huge = first[0].clone();
    if let Payload::Trade(t) = &mut huge.payload {
        t.trade_id = "huge".into();
        t.price = "100000000000000000000".parse().unwrap();
    }
    let err = schema
        .writer
        .insert(DataType::Trades, &[first[1].clone(), huge])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("price"), "{err}");
    assert_eq!(
        schema.raw_count(schema.hot(), DataType::Trades).await,
        4,
        "a batch with an unstorable decimal is refused whole"
    );
    // Wrong type for the table: refused before anything is sent.
    assert!(
        Rows::from_events(DataType::Gaps, &first).is_err()
            && schema.writer.insert(DataType::Gaps, &first).await.is_err()
    );
    schema.drop().await;
}
