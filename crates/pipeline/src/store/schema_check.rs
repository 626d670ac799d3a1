//! Does the server's schema match ours? Every table and view the sink writes through (hot table,
//! cold table, the materialized view between them) is compared with what [`super::schema::ddl`]
//! creates for the server's dialect: column names and types, engine, sort key, the view's target.
//!
//! Why: RowBinary carries no types, so a `Decimal(38, 8)` column silently stores our `Decimal(38, 18)`
//! bytes ten orders of magnitude off, and a view of another shape fails every insert after the hot
//! table took the rows. A difference stops that table's inserts (the sink keeps its messages unacked)
//! with a message naming table, column, found and expected type, and the fix.
//!
//! Columns the server has and we do not write are allowed (they take their defaults); a missing or
//! differently typed column is not. Pure comparison here; [`introspect`] reads `system.tables` and
//! `system.columns`, which exist on 18.16 and 23.8+ alike.

use super::columns::{columns, sort_key};
use super::schema::{Dialect, sql_type};
use crate::error::Result;
use clickhouse::Client;
use marketprism_config::ClickHouseConfig;
use marketprism_model::DataType;
use std::fmt;

/// One table or view as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    /// `system.tables.engine`: `ReplacingMergeTree`, `MaterializedView`, …
    pub engine: String,
    /// `system.tables.engine_full`: with parameters, `ReplacingMergeTree(recv_ts_ms) PARTITION BY …`.
    pub engine_full: String,
    /// `system.tables.sorting_key`: `exchange, market_type, symbol, trade_id`.
    pub sorting_key: String,
    pub create_table_query: String,
    /// `(name, type)` from `system.columns`, types as the server prints them.
    pub columns: Vec<(String, String)>,
}

/// What a table or view must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub data_type: DataType,
    pub database: String,
    pub name: String,
    /// `None` for a table; for the view: `(target, source)` as `db.table`.
    pub view_of: Option<(String, String)>,
    pub columns: Vec<(&'static str, &'static str)>,
    pub sorting_key: String,
}

impl Expected {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.name)
    }
}

/// One difference, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub data_type: DataType,
    /// `db.table`.
    pub table: String,
    /// `column price`, `engine`, `sort key`, `table`, `view target`.
    pub what: String,
    pub found: String,
    pub expected: String,
    /// An SQL statement or an instruction.
    pub fix: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} is {}, expected {}; fix: {}",
            self.table, self.what, self.found, self.expected, self.fix
        )
    }
}

/// The hot table, the cold table and the view of `data_type`, as [`super::schema::ddl`] creates them.
pub fn expected(dialect: Dialect, config: &ClickHouseConfig, data_type: DataType) -> [Expected; 3] {
    let table = data_type.as_str();
    let cols: Vec<(&'static str, &'static str)> = columns(data_type)
        .iter()
        .map(|c| (c.name, sql_type(dialect, c.ty)))
        .collect();
    let key = sort_key(data_type).join(", ");
    let of = |database: &str, name: String, view_of| Expected {
        data_type,
        database: database.to_owned(),
        name,
        view_of,
        columns: cols.clone(),
        sorting_key: key.clone(),
    };
    let (hot, cold) = (&config.hot_database, &config.cold_database);
    [
        of(hot, table.to_owned(), None),
        of(cold, table.to_owned(), None),
        of(
            cold,
            format!("{table}_from_hot"),
            Some((format!("{cold}.{table}"), format!("{hot}.{table}"))),
        ),
    ]
}

/// Every difference between `expected` and what the server has (`None`: no such table).
pub fn compare(expected: &Expected, found: Option<&Found>) -> Vec<Difference> {
    let table = expected.qualified();
    let diff = |what: String, found: String, want: String, fix: String| Difference {
        data_type: expected.data_type,
        table: table.clone(),
        what,
        found,
        expected: want,
        fix,
    };
    let recreate_view = format!(
        "DROP TABLE {table}, then start the sink with create_schema (or run `schema --migrate`): it creates the view again"
    );
    let Some(found) = found else {
        let kind = if expected.view_of.is_some() {
            "view"
        } else {
            "table"
        };
        return vec![diff(
            kind.to_owned(),
            "missing".to_owned(),
            "present".to_owned(),
            "set sink.clickhouse.create_schema: true, or run `marketprism-collector schema --migrate`"
                .to_owned(),
        )];
    };
    let mut out = Vec::new();
    match &expected.view_of {
        Some((target, source)) => {
            let query = &found.create_table_query;
            if found.engine != "MaterializedView" {
                out.push(diff(
                    "engine".into(),
                    found.engine.clone(),
                    "MaterializedView".into(),
                    recreate_view.clone(),
                ));
            } else if !query.contains(&format!("TO {target}"))
                || !query.contains(&format!("FROM {source}"))
            {
                out.push(diff(
                    "view".into(),
                    query.clone(),
                    format!("TO {target} … FROM {source}"),
                    recreate_view.clone(),
                ));
            }
        }
        None => {
            if found.engine != "ReplacingMergeTree"
                || !found
                    .engine_full
                    .starts_with("ReplacingMergeTree(recv_ts_ms)")
            {
                out.push(diff(
                    "engine".into(),
                    found.engine_full.clone(),
                    "ReplacingMergeTree(recv_ts_ms)".into(),
                    table_rebuild(&table),
                ));
            }
            if found.sorting_key != expected.sorting_key {
                out.push(diff(
                    "sort key".into(),
                    format!("({})", found.sorting_key),
                    format!("({})", expected.sorting_key),
                    table_rebuild(&table),
                ));
            }
        }
    }
    for (name, want) in &expected.columns {
        let have = found
            .columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t);
        let fix = match (&expected.view_of, have) {
            (Some(_), _) => recreate_view.clone(),
            (None, None) => format!("ALTER TABLE {table} ADD COLUMN {name} {want}"),
            (None, Some(_)) => format!("ALTER TABLE {table} MODIFY COLUMN {name} {want}"),
        };
        match have {
            None => out.push(diff(
                format!("column {name}"),
                "missing".into(),
                (*want).into(),
                fix,
            )),
            Some(t) if t != want => out.push(diff(
                format!("column {name}"),
                t.clone(),
                (*want).into(),
                fix,
            )),
            Some(_) => {}
        }
    }
    out
}

/// The statements `schema --migrate` runs for `differences`, in order, and the differences it cannot
/// fix (engine, sort key: a table rebuild, by hand). Columns are added or retyped in place
/// (`ALTER TABLE`), views of another shape dropped, then every missing table and view created.
pub fn migration<'a>(
    differences: &'a [Difference],
    dialect: Dialect,
    config: &ClickHouseConfig,
) -> (Vec<String>, Vec<&'a Difference>) {
    let mut alters = Vec::new();
    let mut drops = Vec::new();
    let mut manual = Vec::new();
    let mut create = false;
    for d in differences {
        if d.fix.starts_with("ALTER TABLE ") {
            alters.push(d.fix.clone());
        } else if d.fix.starts_with("DROP TABLE ") {
            let drop = format!("DROP TABLE {}", d.table);
            if !drops.contains(&drop) {
                drops.push(drop);
            }
            create = true;
        } else if d.found == "missing" && (d.what == "table" || d.what == "view") {
            create = true;
        } else {
            manual.push(d);
        }
    }
    let mut statements = alters;
    statements.extend(drops);
    if create {
        statements.extend(super::schema::ddl(dialect, config));
    }
    (statements, manual)
}

fn table_rebuild(table: &str) -> String {
    format!(
        "an engine or sort key cannot be altered: RENAME TABLE {table} TO {table}_old, let the sink create {table}, then INSERT INTO {table} SELECT … FROM {table}_old (README: schema migrations)"
    )
}

/// The table or view `database.name` as the server describes it; `None` when it does not exist.
pub(crate) async fn introspect(
    client: &Client,
    database: &str,
    name: &str,
) -> Result<Option<Found>> {
    let tables: Vec<(String, String, String, String)> = client
        .query(
            "SELECT engine, engine_full, sorting_key, create_table_query FROM system.tables \
             WHERE database = ? AND name = ?",
        )
        .bind(database)
        .bind(name)
        .fetch_all()
        .await?;
    let Some((engine, engine_full, sorting_key, create_table_query)) = tables.into_iter().next()
    else {
        return Ok(None);
    };
    let columns: Vec<(String, String)> = client
        .query("SELECT name, type FROM system.columns WHERE database = ? AND table = ?")
        .bind(database)
        .bind(name)
        .fetch_all()
        .await?;
    Ok(Some(Found {
        engine,
        engine_full,
        sorting_key,
        create_table_query,
        columns,
    }))
}

/// Every difference of `data_type`'s hot table, cold table and view on the server.
pub(crate) async fn check_type(
    client: &Client,
    dialect: Dialect,
    config: &ClickHouseConfig,
    data_type: DataType,
) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for want in expected(dialect, config, data_type) {
        let found = introspect(client, &want.database, &want.name).await?;
        out.extend(compare(&want, found.as_ref()));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "schema_check_tests.rs"]
mod tests;
