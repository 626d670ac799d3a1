use super::*;
use crate::store::rows::Rows;
use marketprism_model::synthetic::synthetic_events;

fn config() -> ClickHouseConfig {
    ClickHouseConfig::default()
}

#[test]
fn dialect_from_version() {
    for (v, want) in [
        ("18.16.1", Dialect::Legacy),
        ("19.17.4.11", Dialect::Legacy),
        ("23.7.9", Dialect::Legacy),
        ("23.8.1", Dialect::Modern),
        ("23.8.1.2992", Dialect::Modern),
        ("24.3.2.23", Dialect::Modern),
        ("26.9", Dialect::Modern),
        ("26", Dialect::Modern),
        ("garbage", Dialect::Modern),
    ] {
        assert_eq!(Dialect::from_version(v), want, "{v}");
    }
    assert_eq!(Dialect::Legacy.ms("ts_ms"), "toInt64(ts_ms)");
    assert_eq!(
        Dialect::Modern.ms("end_ms"),
        "toUnixTimestamp64Milli(end_ms)"
    );
}

#[test]
fn ddl_creates_both_databases_every_table_and_a_view_each() {
    for dialect in [Dialect::Legacy, Dialect::Modern] {
        let ddl = ddl(dialect, &config());
        assert_eq!(ddl.len(), 2 + 3 * DataType::ALL.len());
        assert_eq!(ddl[0], "CREATE DATABASE IF NOT EXISTS marketprism_hot");
        assert_eq!(ddl[1], "CREATE DATABASE IF NOT EXISTS marketprism_cold");
        for stmt in &ddl {
            assert!(stmt.contains("IF NOT EXISTS"), "not idempotent: {stmt}");
        }
        for dt in DataType::ALL {
            let hot = format!("CREATE TABLE IF NOT EXISTS marketprism_hot.{dt}\n");
            let cold = format!("CREATE TABLE IF NOT EXISTS marketprism_cold.{dt}\n");
            let view = format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS marketprism_cold.{dt}_from_hot TO marketprism_cold.{dt}\n"
            );
            for head in [hot, cold, view] {
                assert!(
                    ddl.iter().any(|s| s.starts_with(&head)),
                    "{dialect:?} lacks {head}"
                );
            }
        }
    }
}

#[test]
fn sort_key_is_the_natural_key() {
    let ddl = ddl(Dialect::Modern, &config()).join("\n");
    for key in [
        "ORDER BY (exchange, market_type, symbol, trade_id)",
        "ORDER BY (exchange, market_type, symbol, ts_ms, last_update_id)",
        "ORDER BY (exchange, market_type, symbol, ts_ms, side, price, quantity)",
        "ORDER BY (exchange, market_type, symbol, period, ts_ms)",
        "ORDER BY (exchange, market_type, symbol, data_type, start_ms, cause)",
        "ORDER BY (exchange, market_type, symbol, ts_ms, update_id)",
        "ORDER BY (exchange, market_type, symbol, ts_ms, source)",
        "ORDER BY (exchange, market_type, symbol, ts_ms, source, seq)",
    ] {
        assert!(ddl.contains(key), "missing {key}");
    }
    assert_eq!(
        ddl.matches("ENGINE = ReplacingMergeTree(recv_ts_ms)")
            .count(),
        2 * DataType::ALL.len()
    );
}

#[test]
fn modern_ddl_uses_datetime64_lowcardinality_codecs_and_ttl() {
    let mut c = config();
    c.hot_ttl_days = 2;
    c.cold_ttl_days = 400;
    let ddl = ddl(Dialect::Modern, &c);
    let hot_trades = ddl
        .iter()
        .find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS marketprism_hot.trades"))
        .unwrap();
    for must in [
        "`ts_ms` DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))",
        "`symbol` LowCardinality(String),",
        "`price` Decimal(38, 18) CODEC(ZSTD(1))",
        "PARTITION BY toYYYYMMDD(ts_ms)",
        "TTL toDateTime(ts_ms) + INTERVAL 2 DAY",
    ] {
        assert!(hot_trades.contains(must), "lacks {must}: {hot_trades}");
    }
    let cold_trades = ddl
        .iter()
        .find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS marketprism_cold.trades"))
        .unwrap();
    assert!(cold_trades.contains("TTL toDateTime(ts_ms) + INTERVAL 400 DAY"));
    assert!(cold_trades.contains("PARTITION BY toYYYYMM(ts_ms)"));
    let funding = ddl
        .iter()
        .find(|s| s.contains("marketprism_hot.funding_rates\n"))
        .unwrap();
    assert!(funding.contains("`next_funding_time_ms` Nullable(DateTime64(3, 'UTC'))"));
}

#[test]
fn legacy_ddl_has_no_feature_18_16_lacks() {
    let ddl = ddl(Dialect::Legacy, &config()).join("\n");
    for absent in [
        "DateTime64",
        "LowCardinality",
        "CODEC",
        "TTL",
        "Bool",
        "Int128",
        "Map(",
    ] {
        assert!(!ddl.contains(absent), "legacy DDL uses {absent}");
    }
    assert!(ddl.contains("`ts_ms` Int64,"));
    assert!(ddl.contains("PARTITION BY toYYYYMMDD(toDateTime(intDiv(ts_ms, 1000)))"));
    assert!(ddl.contains("PARTITION BY toYYYYMM(toDateTime(intDiv(ts_ms, 1000)))"));
    assert!(ddl.contains("`bid_prices` Array(Decimal(38, 18))"));
}

#[test]
fn insert_values_text_is_exact_and_escaped() {
    let events = synthetic_events(3, 9);
    let mut trade = events[1].clone();
    if let marketprism_model::Payload::Trade(t) = &mut trade.payload {
        t.trade_id = "it's \\ odd".into();
        t.quantity = "0.00000001".parse().unwrap();
    }
    let rows = Rows::from_events(DataType::Trades, &[trade.clone()]).unwrap();
    let modern = insert_values_sql(Dialect::Modern, "db", &rows).unwrap();
    assert!(modern.starts_with(
        "INSERT INTO db.trades (exchange, market_type, symbol, ts_ms, recv_ts_ms, trade_id, price, quantity, side, raw_quantity, quantity_unit) VALUES ("
    ), "{modern}");
    assert!(modern.contains("'it\\'s \\\\ odd'"), "{modern}");
    assert!(
        modern.contains("CAST('0.00000001' AS Decimal(38, 18))"),
        "{modern}"
    );
    assert!(modern.contains(&format!(
        "fromUnixTimestamp64Milli(toInt64({}), 'UTC')",
        trade.ts_ms
    )));
    let legacy = insert_values_sql(Dialect::Legacy, "db", &rows).unwrap();
    assert!(
        legacy.contains(&format!(", {}, {}, ", trade.ts_ms, trade.recv_ts_ms)),
        "{legacy}"
    );

    let book = Rows::from_events(DataType::Orderbooks, &events[..1]).unwrap();
    let sql = insert_values_sql(Dialect::Legacy, "db", &book).unwrap();
    assert!(sql.contains(", [CAST('"), "{sql}");
    let funding = Rows::from_events(DataType::FundingRates, &[events[2].clone()]).unwrap();
    let sql = insert_values_sql(Dialect::Modern, "db", &funding).unwrap();
    assert_eq!(sql.matches("VALUES (").count(), 1);
}

#[test]
fn async_insert_waits_for_the_write_and_only_on_modern_servers() {
    use crate::store::clickhouse::insert_options;
    let mut c = config();
    assert!(
        insert_options(&c, Dialect::Modern).is_empty(),
        "off by default"
    );
    c.async_insert = true;
    assert_eq!(
        insert_options(&c, Dialect::Modern),
        [("async_insert", "1"), ("wait_for_async_insert", "1")]
    );
    assert!(
        insert_options(&c, Dialect::Legacy).is_empty(),
        "18.x: plain inserts"
    );
}

#[test]
fn signal_tables_use_floats_flags_and_nullable_labels_in_both_dialects() {
    for (dialect, level) in [
        (Dialect::Legacy, "`level` Nullable(String)"),
        (Dialect::Modern, "`level` LowCardinality(Nullable(String))"),
    ] {
        let ddl = ddl(dialect, &config());
        let table = |t: &str| {
            ddl.iter()
                .find(|s| {
                    s.starts_with(&format!("CREATE TABLE IF NOT EXISTS marketprism_hot.{t}\n"))
                })
                .unwrap_or_else(|| panic!("no {t}"))
                .clone()
        };
        let ofi = table("signal_ofi");
        assert!(ofi.contains("`ofi` Float64"), "{ofi}");
        assert!(ofi.contains("`ofi_z` Nullable(Float64)"), "{ofi}");
        assert!(ofi.contains("`std_zero` UInt8"), "{ofi}");
        assert!(table("signal_cvd").contains("`floor_used` UInt8"));
        assert!(table("signal_fusion").contains(level));
        assert!(table("signal_events").contains("`meta_json` String"));
    }
}

#[test]
fn signal_values_become_literals_legacy_servers_read() {
    let events: Vec<_> = synthetic_events(3, 2 * DataType::ALL.len())
        .into_iter()
        .filter(|e| e.data_type() == DataType::SignalCvd)
        .collect();
    let rows = Rows::from_events(DataType::SignalCvd, &events).unwrap();
    let sql = insert_values_sql(Dialect::Legacy, "db", &rows).unwrap();
    assert!(sql.starts_with("INSERT INTO db.signal_cvd (exchange, market_type, symbol, ts_ms, recv_ts_ms, trade_id, cvd,"), "{sql}");
    assert!(
        !sql.contains("true") && !sql.contains("false"),
        "flags are 0/1: {sql}"
    );
}
