//! `ClickHouseWriter`: RowBinary inserts into the hot database; the cold one is fed by materialized views.
//!
//! Validation is off (`with_validation(false)`): 18.16 knows no `RowBinaryWithNamesAndTypes`. The row
//! types and the DDL come from one column list ([`super::columns`]), and integration tests insert into a
//! real server, which is what keeps them in step.

use super::rows::{Rows, TableRow, with_rows};
use super::schema::{Dialect, ddl};
use super::schema_check::check_type;
use crate::error::{Error, Result};
use crate::internal_events::InternalEvent;
use crate::internal_events::store::{
    ClickHouseInsertFailed, ClickHouseRowsInserted, ClickHouseSchemaEnsured,
    ClickHouseSchemaMismatch,
};
use clickhouse::Client;
use marketprism_config::ClickHouseConfig;
use marketprism_config::tls::ClientTls;
use marketprism_model::{DataType, Event};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bounds one INSERT's wait for the server, so a hung server cannot stall the sink forever.
const INSERT_END_TIMEOUT: Duration = Duration::from_secs(60);

/// One `INSERT INTO <table>(…) FORMAT RowBinary` of `rows` through `client` (whose database is the hot one).
/// Public so tests can capture the exact bytes the writer sends.
pub async fn insert_rowbinary(client: &Client, rows: &Rows) -> Result<()> {
    with_rows!(rows, v => insert_typed(client, v).await)
}

async fn insert_typed<R: TableRow>(client: &Client, rows: &[R]) -> Result<()> {
    let mut insert = client
        .insert::<R>(R::DATA_TYPE.as_str())
        .await?
        .with_timeouts(None, Some(INSERT_END_TIMEOUT));
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await?;
    Ok(())
}

#[derive(Clone)]
pub struct ClickHouseWriter {
    client: Client,
    hot: Client,
    config: ClickHouseConfig,
    version: String,
    dialect: Dialect,
    /// Per data type: its tables and view matched the DDL at the last check. Cleared by a failed
    /// insert, so a reconnect (or a change made meanwhile) is checked again before the next one.
    verified: Arc<Mutex<[bool; DataType::ALL.len()]>>,
}

impl std::fmt::Debug for ClickHouseWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds credentials: never print it.
        f.debug_struct("ClickHouseWriter")
            .field("url", &self.config.url)
            .field("version", &self.version)
            .field("dialect", &self.dialect)
            .finish()
    }
}

/// A hyper connector for `http://` and `https://` URLs with `tls`'s trust (the ClickHouse client's transport).
fn https_connector(
    tls: &ClientTls,
) -> hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls.rustls()).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// A client for `config`'s server (credentials included), validation off (see the module doc).
/// `http://` and `https://` URLs both work; `https://` trusts `tls.ca_file` besides the public roots.
pub fn clickhouse_client(config: &ClickHouseConfig) -> Client {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        // ClickHouse closes idle keep-alive connections after 3 s: stop reusing them before that.
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build(https_connector(&config.tls));
    let mut client = Client::with_http_client(http)
        .with_url(&config.url)
        .with_validation(false);
    if let Some(user) = &config.user {
        client = client.with_user(user);
    }
    if let Some(password) = &config.password {
        client = client.with_password(password);
    }
    client
}

/// Settings of every insert: `async_insert` with `wait_for_async_insert` when configured and the
/// server is 23.8+ (older servers lack or mis-handle them), so an ack never precedes the write.
pub(crate) fn insert_options(
    config: &ClickHouseConfig,
    dialect: Dialect,
) -> Vec<(&'static str, &'static str)> {
    if config.async_insert && dialect == Dialect::Modern {
        vec![("async_insert", "1"), ("wait_for_async_insert", "1")]
    } else {
        Vec::new()
    }
}

impl ClickHouseWriter {
    /// Reads `SELECT version()` to pick the dialect, and creates the schema when `create_schema`.
    pub async fn connect(config: &ClickHouseConfig) -> Result<ClickHouseWriter> {
        let client = clickhouse_client(config);
        let version: String = client.query("SELECT version()").fetch_one().await?;
        let dialect = Dialect::from_version(&version);
        let mut hot = client.clone().with_database(&config.hot_database);
        for (name, value) in insert_options(config, dialect) {
            hot = hot.with_setting(name, value);
        }
        let writer = ClickHouseWriter {
            hot,
            client,
            config: config.clone(),
            version,
            dialect,
            verified: Arc::default(),
        };
        if config.create_schema {
            writer.create_schema().await?;
        }
        Ok(writer)
    }

    /// Runs every DDL statement of the server's dialect (idempotent).
    pub async fn create_schema(&self) -> Result<()> {
        let statements = ddl(self.dialect, &self.config);
        for sql in &statements {
            self.client
                .query(sql)
                .execute()
                .await
                .map_err(|e| Error::Other(format!("creating schema: {e}; statement: {sql}")))?;
        }
        ClickHouseSchemaEnsured {
            version: &self.version,
            dialect: self.dialect.as_str(),
            statements: statements.len(),
        }
        .emit();
        Ok(())
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Runs one statement (migrations).
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.client
            .query(sql)
            .execute()
            .await
            .map_err(|e| Error::Schema(format!("{e}; statement: {sql}")))
    }

    pub async fn ping(&self) -> Result<()> {
        self.client.query("SELECT 1").execute().await?;
        Ok(())
    }

    /// One INSERT (RowBinary) of `events`, all of `data_type`, into the hot table.
    /// An event that cannot be stored exactly fails the whole call before anything is sent.
    pub async fn insert(&self, data_type: DataType, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = Rows::from_events(data_type, events)
            .map_err(|e| Error::Other(format!("{data_type}: {e}")))?;
        self.insert_rows(&rows).await
    }

    /// Every difference between the server's tables and views of `data_type` and the DDL.
    pub async fn check_schema(
        &self,
        data_type: DataType,
    ) -> Result<Vec<super::schema_check::Difference>> {
        check_type(&self.client, self.dialect, &self.config, data_type).await
    }

    fn set_verified(&self, data_type: DataType, ok: bool) {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())[data_type as usize] = ok;
    }

    fn is_verified(&self, data_type: DataType) -> bool {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())[data_type as usize]
    }

    /// One INSERT of already converted rows, after the table's schema check (see [`super::schema_check`]):
    /// a table of another shape gets no insert, and the error names table, column, types and the fix.
    pub async fn insert_rows(&self, rows: &Rows) -> Result<()> {
        let data_type = rows.data_type();
        if !self.is_verified(data_type) {
            let differences = self.check_schema(data_type).await?;
            if !differences.is_empty() {
                ClickHouseSchemaMismatch {
                    data_type,
                    differences: &differences,
                }
                .emit();
                let all: Vec<String> = differences.iter().map(ToString::to_string).collect();
                return Err(Error::Schema(all.join("; ")));
            }
            self.set_verified(data_type, true);
        }
        let result = insert_rowbinary(&self.hot, rows).await;
        if result.is_err() {
            self.set_verified(data_type, false);
        }
        match &result {
            Ok(()) => ClickHouseRowsInserted {
                data_type: rows.data_type(),
                rows: rows.len(),
            }
            .emit(),
            Err(e) => ClickHouseInsertFailed {
                data_type: rows.data_type(),
                rows: rows.len(),
                error: e,
            }
            .emit(),
        }
        result
    }

    /// `SELECT count() FROM db.table FINAL`: rows after deduplication (tests and checks).
    pub async fn count_final(&self, database: &str, data_type: DataType) -> Result<u64> {
        let sql = format!("SELECT count() FROM {database}.{data_type} FINAL");
        Ok(self.client.query(&sql).fetch_one::<u64>().await?)
    }

    /// Every row of a table after deduplication, ordered by its sort key (tests and checks).
    pub async fn fetch_final<R: TableRow>(&self, database: &str) -> Result<Vec<R>> {
        let names = super::columns::columns(R::DATA_TYPE)
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ");
        let key = super::columns::sort_key(R::DATA_TYPE).join(", ");
        let sql = format!(
            "SELECT {names} FROM {database}.{} FINAL ORDER BY {key}",
            R::DATA_TYPE
        );
        Ok(self.client.query(&sql).fetch_all::<R>().await?)
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }
}
