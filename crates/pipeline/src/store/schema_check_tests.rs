use super::*;

fn config() -> ClickHouseConfig {
    ClickHouseConfig {
        hot_database: "mp_hot".into(),
        cold_database: "mp_cold".into(),
        ..ClickHouseConfig::default()
    }
}

/// What 18.16 reports for a table created by our own legacy DDL.
fn as_created(want: &Expected) -> Found {
    let columns = want
        .columns
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    match &want.view_of {
        Some((target, source)) => Found {
            engine: "MaterializedView".into(),
            create_table_query: format!(
                "CREATE MATERIALIZED VIEW {} TO {target} (exchange String) AS SELECT exchange FROM {source}",
                want.qualified()
            ),
            columns,
            ..Found::default()
        },
        None => Found {
            engine: "ReplacingMergeTree".into(),
            engine_full: "ReplacingMergeTree(recv_ts_ms) PARTITION BY toYYYYMMDD(toDateTime(intDiv(ts_ms, 1000))) ORDER BY (exchange, market_type, symbol, trade_id) SETTINGS index_granularity = 8192".into(),
            sorting_key: want.sorting_key.clone(),
            columns,
            ..Found::default()
        },
    }
}

#[test]
fn our_own_ddl_matches_and_extra_columns_are_allowed() {
    for want in expected(Dialect::Legacy, &config(), DataType::Trades) {
        let mut found = as_created(&want);
        assert_eq!(compare(&want, Some(&found)), vec![], "{}", want.qualified());
        found.columns.push(("note".into(), "String".into()));
        assert_eq!(
            compare(&want, Some(&found)),
            vec![],
            "extra columns take their defaults"
        );
    }
}

#[test]
fn a_column_of_another_type_names_table_column_types_and_the_fix() {
    let [hot, _, view] = expected(Dialect::Legacy, &config(), DataType::Trades);
    let mut found = as_created(&hot);
    found
        .columns
        .iter_mut()
        .find(|(n, _)| n == "price")
        .unwrap()
        .1 = "Decimal(38, 8)".into();
    let diffs = compare(&hot, Some(&found));
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(
        diffs[0].to_string(),
        "mp_hot.trades: column price is Decimal(38, 8), expected Decimal(38, 18); \
         fix: ALTER TABLE mp_hot.trades MODIFY COLUMN price Decimal(38, 18)"
    );
    // The view over such a hot table inherits the type: it is recreated, not altered.
    let mut found = as_created(&view);
    found
        .columns
        .iter_mut()
        .find(|(n, _)| n == "quantity")
        .unwrap()
        .1 = "Decimal(38, 8)".into();
    let diffs = compare(&view, Some(&found));
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(
        diffs[0]
            .fix
            .starts_with("DROP TABLE mp_cold.trades_from_hot"),
        "{}",
        diffs[0]
    );
}

#[test]
fn missing_columns_engines_keys_and_views_are_differences() {
    let [hot, cold, view] = expected(Dialect::Legacy, &config(), DataType::Trades);
    let mut found = as_created(&hot);
    found.columns.retain(|(n, _)| n != "side");
    found.engine = "MergeTree".into();
    found.sorting_key = "exchange, symbol".into();
    let whats: Vec<String> = compare(&hot, Some(&found))
        .into_iter()
        .map(|d| d.what)
        .collect();
    assert_eq!(whats, ["engine", "sort key", "column side"]);
    assert!(
        compare(&hot, Some(&found))[2].fix == "ALTER TABLE mp_hot.trades ADD COLUMN side String"
    );
    assert_eq!(compare(&cold, None)[0].what, "table");
    assert_eq!(compare(&view, None)[0].what, "view");
    let mut elsewhere = as_created(&view);
    elsewhere.create_table_query = "CREATE MATERIALIZED VIEW mp_cold.trades_from_hot TO other.trades AS SELECT * FROM mp_hot.trades".into();
    assert_eq!(compare(&view, Some(&elsewhere))[0].what, "view");
}

#[test]
fn the_modern_dialect_expects_its_own_types() {
    let [hot, ..] = expected(Dialect::Modern, &config(), DataType::Trades);
    let ty = |n: &str| hot.columns.iter().find(|(c, _)| *c == n).unwrap().1;
    assert_eq!(ty("exchange"), "LowCardinality(String)");
    assert_eq!(ty("ts_ms"), "DateTime64(3, 'UTC')");
    assert_eq!(ty("price"), "Decimal(38, 18)");
    assert_eq!(hot.sorting_key, "exchange, market_type, symbol, trade_id");
}

#[test]
fn the_migration_alters_columns_recreates_views_and_leaves_engines_to_a_human() {
    let cfg = config();
    let [hot, cold, view] = expected(Dialect::Legacy, &cfg, DataType::Trades);
    let mut narrow = as_created(&hot);
    narrow
        .columns
        .iter_mut()
        .find(|(n, _)| n == "price")
        .unwrap()
        .1 = "Decimal(38, 8)".into();
    narrow.columns.retain(|(n, _)| n != "side");
    let mut engine = as_created(&cold);
    engine.engine = "MergeTree".into();
    let mut view_found = as_created(&view);
    view_found
        .columns
        .iter_mut()
        .find(|(n, _)| n == "price")
        .unwrap()
        .1 = "Decimal(38, 8)".into();
    let mut diffs = compare(&hot, Some(&narrow));
    diffs.extend(compare(&cold, Some(&engine)));
    diffs.extend(compare(&view, Some(&view_found)));
    let (statements, manual) = migration(&diffs, Dialect::Legacy, &cfg);
    assert_eq!(
        statements[..3],
        [
            "ALTER TABLE mp_hot.trades MODIFY COLUMN price Decimal(38, 18)".to_owned(),
            "ALTER TABLE mp_hot.trades ADD COLUMN side String".to_owned(),
            "DROP TABLE mp_cold.trades_from_hot".to_owned(),
        ]
    );
    assert_eq!(
        statements[3..],
        super::super::schema::ddl(Dialect::Legacy, &cfg)[..]
    );
    assert_eq!(manual.len(), 1);
    assert_eq!(
        (manual[0].table.as_str(), manual[0].what.as_str()),
        ("mp_cold.trades", "engine")
    );
    assert_eq!(migration(&[], Dialect::Legacy, &cfg), (vec![], vec![]));
}
