//! What landed: rows in the run's ClickHouse tables, messages and events in its JetStream streams; and cleanup.
//!
//! Every answer is checked to come from the right server: the ClickHouse client decodes RowBinary
//! without validation, so any HTTP server answering 200 (a wrong port) would otherwise give numbers.

use crate::error::{Error, Result};
use marketprism_config::{ClickHouseConfig, NatsConfig};
use marketprism_model::DataType;
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use std::time::Duration;

const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `version` looks like a ClickHouse `version()` (`18.16.1`, `24.3.2.23`).
pub fn is_clickhouse_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Fail unless the server answers `SELECT version()` like ClickHouse. Returns the version.
pub async fn check_clickhouse(config: &ClickHouseConfig) -> Result<String> {
    let url = &config.url;
    let query = clickhouse_client(config)
        .query("SELECT version()")
        .fetch_one::<String>();
    let version = tokio::time::timeout(CHECK_TIMEOUT, query)
        .await
        .map_err(|_| Error::Other(format!("ClickHouse at {url} did not answer in 30 s")))?
        .map_err(|e| Error::Other(format!("ClickHouse at {url} does not answer: {e}")))?;
    if !is_clickhouse_version(&version) {
        return Err(Error::Other(format!(
            "the server at {url} is not ClickHouse (SELECT version() gave {:?})",
            version.chars().take(40).collect::<String>()
        )));
    }
    Ok(version)
}

/// Row counts of the run's hot database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    /// `count() FINAL` summed over every table.
    pub with_final: u64,
    /// `count()` summed over every table.
    pub raw: u64,
}

/// Count the rows of `{run}_hot`; fails (saying what) when the server, database or a query is wrong.
pub async fn count_rows(config: &ClickHouseConfig, run_name: &str) -> Result<RowCounts> {
    check_clickhouse(config).await?;
    let client = clickhouse_client(config);
    let clickhouse_url = &config.url;
    let db = format!("{run_name}_hot");
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::Other(format!(
            "cannot count rows in ClickHouse at {clickhouse_url}: {what}: {e}"
        ))
    };
    let found = client
        .query("SELECT name FROM system.databases WHERE name = ?")
        .bind(&db)
        .fetch_all::<String>()
        .await
        .map_err(|e| fail("listing databases", &e))?;
    if found != [db.clone()] {
        return Err(Error::Other(format!(
            "database {db} is missing in ClickHouse at {clickhouse_url}: the sink did not write there"
        )));
    }
    let mut counts = RowCounts {
        with_final: 0,
        raw: 0,
    };
    for d in DataType::ALL {
        for (sql, total) in [
            (
                format!("SELECT count() FROM {db}.{d} FINAL"),
                &mut counts.with_final,
            ),
            (format!("SELECT count() FROM {db}.{d}"), &mut counts.raw),
        ] {
            *total += client
                .query(&sql)
                .fetch_one::<u64>()
                .await
                .map_err(|e| fail(&sql, &e))?;
        }
    }
    Ok(counts)
}

/// Connect to NATS now (no retry): the bench fails at once on a wrong URL instead of waiting.
pub async fn connect_nats(url: &str) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name("marketprism-bench")
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| Error::Nats(format!("cannot connect to NATS at {url}: {e}")))
}

/// What the run's two data streams hold: `(messages, events)`. A message holds one event or a
/// publish batch, whose count is its `Marketprism-Events` header; every message is read once
/// (an ordered consumer), so this takes a moment for millions of events.
pub async fn stored_counts(client: &async_nats::Client, nats: &NatsConfig) -> Result<(u64, u64)> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    use futures::StreamExt;
    let js = async_nats::jetstream::new(client.clone());
    let (mut messages, mut events) = (0, 0);
    for name in [&nats.market_data_stream.name, &nats.orderbook_stream.name] {
        let fail =
            |e: &dyn std::fmt::Display| Error::Nats(format!("cannot read stream {name}: {e}"));
        let stream = js.get_stream(name).await.map_err(|e| fail(&e))?;
        let in_stream = stream.cached_info().state.messages;
        messages += in_stream;
        if in_stream == 0 {
            continue;
        }
        // Ordered: it re-creates itself on a missed message, so every message is read exactly once.
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| fail(&e))?;
        let mut read = consumer.messages().await.map_err(|e| fail(&e))?;
        let mut seen = 0;
        let mut errors = 0;
        while seen < in_stream {
            let m = match tokio::time::timeout(CHECK_TIMEOUT, read.next()).await {
                Ok(Some(Ok(m))) => m,
                // Transient (a heartbeat missed, a reset): the ordered consumer recovers by itself.
                Ok(Some(Err(e))) if errors < 100 => {
                    errors += 1;
                    tracing::debug!(error = %e, "reading the stream back");
                    continue;
                }
                _ => return Err(fail(&format!("read {seen} of {in_stream} messages"))),
            };
            seen += 1;
            events += m
                .headers
                .as_ref()
                .and_then(|h| h.get(marketprism_model::wire::EVENTS_HEADER))
                .and_then(|v| v.as_str().parse::<u64>().ok())
                .unwrap_or(1);
        }
    }
    Ok((messages, events))
}

/// Delete the run's `streams` and (when it used ClickHouse) databases; failures are only logged.
pub async fn cleanup(
    nats_url: &str,
    streams: &[&str],
    clickhouse: Option<(&ClickHouseConfig, &str)>,
) {
    if let Some((config, run_name)) = clickhouse {
        let client = clickhouse_client(config);
        for db in ["hot", "cold"] {
            let sql = format!("DROP DATABASE IF EXISTS {run_name}_{db}");
            if let Err(e) = client.query(&sql).execute().await {
                tracing::warn!(error = %e, "bench cleanup: {sql}");
            }
        }
    }
    match connect_nats(nats_url).await {
        Ok(c) => {
            let js = async_nats::jetstream::new(c);
            for s in streams {
                let _ = js.delete_stream(s).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "bench cleanup: streams not deleted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_clickhouse_versions() {
        assert!(is_clickhouse_version("18.16.1"));
        assert!(is_clickhouse_version("24.3.2.23"));
        assert!(!is_clickhouse_version("!DOCTYPE html>\n<html"));
        assert!(!is_clickhouse_version("18"));
        assert!(!is_clickhouse_version("1..2"));
        assert!(!is_clickhouse_version(""));
    }
}
