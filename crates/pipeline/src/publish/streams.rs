//! Stream layout and connection: which subjects go to which JetStream stream, with which limits.
//!
//! Orderbook snapshots are large and only worth a day, so they get a stream of their own
//! (ORDERBOOK_SNAP); every other data type, gaps included, goes to MARKET_DATA.

use crate::error::{Error, Result};
use crate::internal_events::{emit, publish::StreamEnsured};
use async_nats::jetstream::{self, stream};
use marketprism_config::{NatsConfig, NatsCredentials, StreamLimits};
use marketprism_model::DataType;
use std::time::Duration;

/// `{prefix}.{rest}`, or `rest` when the prefix is empty.
pub fn prefixed(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}.{rest}")
    }
}

/// The subject filters of a stream holding `data_types`: `{prefix.}{token}.>`.
pub(crate) fn subjects_for(prefix: &str, data_types: &[DataType]) -> Vec<String> {
    data_types
        .iter()
        .map(|d| prefixed(prefix, &format!("{}.>", d.subject_token())))
        .collect()
}

/// The data types of the MARKET_DATA stream: everything except orderbook snapshots.
pub(crate) fn market_data_types() -> Vec<DataType> {
    DataType::ALL
        .into_iter()
        .filter(|d| *d != DataType::Orderbooks)
        .collect()
}

/// `subject` without `{prefix}.` (the inverse of [`prefixed`]); `None` if it is not under the prefix.
pub(crate) fn unprefixed<'a>(prefix: &str, subject: &'a str) -> Option<&'a str> {
    match prefix {
        "" => Some(subject),
        p => subject.strip_prefix(p)?.strip_prefix('.'),
    }
}

/// The data type a (prefixed) subject carries, from its first token after the prefix.
pub(crate) fn data_type_of_subject(prefix: &str, subject: &str) -> Option<DataType> {
    let rest = unprefixed(prefix, subject)?;
    DataType::from_subject_token(rest.split('.').next()?)
}

/// Dead letters are kept under `{prefix.}deadletter.{original subject without prefix}`:
/// outside both data streams' subjects, so they never loop back into the sink.
pub(crate) fn dead_letter_subject(prefix: &str, subject: &str) -> String {
    let rest = unprefixed(prefix, subject).unwrap_or(subject);
    prefixed(prefix, &format!("deadletter.{rest}"))
}

pub(crate) fn stream_config(limits: &StreamLimits, subjects: Vec<String>) -> stream::Config {
    stream::Config {
        name: limits.name.clone(),
        subjects,
        max_bytes: limits.max_bytes,
        max_age: Duration::from_secs(limits.max_age_s),
        duplicate_window: Duration::from_secs(limits.duplicate_window_s),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        // When full, refuse new data: the publisher holds, is not ready and records overflow gaps.
        // `Old` would silently delete messages the sink may not have consumed yet.
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

/// MARKET_DATA and ORDERBOOK_SNAP configurations, from the config's limits.
pub(crate) fn data_stream_configs(config: &NatsConfig) -> [stream::Config; 2] {
    let p = &config.subject_prefix;
    [
        stream_config(
            &config.market_data_stream,
            subjects_for(p, &market_data_types()),
        ),
        stream_config(
            &config.orderbook_stream,
            subjects_for(p, &[DataType::Orderbooks]),
        ),
    ]
}

/// Create the two data streams, or update them to the configured limits. Safe to call at every start.
pub async fn ensure_streams(js: &jetstream::Context, config: &NatsConfig) -> Result<()> {
    for cfg in data_stream_configs(config) {
        ensure_stream(js, cfg).await?;
    }
    Ok(())
}

pub(crate) async fn ensure_stream(js: &jetstream::Context, cfg: stream::Config) -> Result<()> {
    js.create_or_update_stream(cfg.clone())
        .await
        .map_err(|e| Error::Nats(format!("cannot create or update stream {}: {e}", cfg.name)))?;
    emit(StreamEnsured {
        name: &cfg.name,
        subjects: &cfg.subjects,
    });
    Ok(())
}

/// Connect in the background: returns at once even when NATS is down, and keeps reconnecting
/// (quickly: 100 ms doubling to 2 s) for ever. Credentials come from the config (filled from env only).
pub async fn connect(config: &NatsConfig, name: &str) -> Result<async_nats::Client> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(reconnect_delay)
        // Used when the URL is `tls://` or the server requires TLS; trusts `tls.ca_file` too.
        .tls_client_config((*config.tls.rustls()).clone())
        .require_tls(config.url.starts_with("tls://"));
    opts = match &config.credentials {
        Some(NatsCredentials::UserPassword { user, password }) => {
            opts.user_and_password(user.clone(), password.clone())
        }
        Some(NatsCredentials::Token(token)) => opts.token(token.clone()),
        None => opts,
    };
    opts.connect(config.url.as_str())
        .await
        .map_err(|e| Error::Nats(format!("cannot connect to {}: {e}", config.url)))
}

/// Reconnect back-off: 100 ms doubling up to 2 s, so a restarted server is found within 2 s.
pub(crate) fn reconnect_delay(attempts: usize) -> Duration {
    let exp = u32::try_from(attempts.min(5)).unwrap_or(5);
    Duration::from_millis((100u64 << exp).min(2_000))
}

pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orderbooks_alone_in_their_stream_everything_else_in_market_data() {
        let [md, ob] = data_stream_configs(&NatsConfig::default());
        assert_eq!(md.name, "MARKET_DATA");
        assert_eq!(
            md.subjects.len(),
            12,
            "7 market types, gaps, 4 signal types"
        );
        assert!(md.subjects.contains(&"trade.>".to_owned()));
        for s in [
            "signal_ofi.>",
            "signal_cvd.>",
            "signal_fusion.>",
            "signal_event.>",
        ] {
            assert!(md.subjects.contains(&s.to_owned()), "{s}");
        }
        assert!(md.subjects.contains(&"gap.>".to_owned()));
        assert!(!md.subjects.iter().any(|s| s.starts_with("orderbook")));
        assert_eq!(ob.subjects, vec!["orderbook.>".to_owned()]);
        assert_eq!(md.duplicate_window, Duration::from_secs(120));
        assert_eq!(ob.max_age, Duration::from_secs(24 * 3600));
        assert_eq!(ob.max_bytes, 5 * 1024 * 1024 * 1024);
        assert_eq!(
            md.discard,
            stream::DiscardPolicy::New,
            "a full stream refuses, never deletes"
        );
        assert_eq!(ob.discard, stream::DiscardPolicy::New);
    }

    #[test]
    fn subjects_and_dead_letters_respect_the_prefix() {
        assert_eq!(subjects_for("t1", &[DataType::Trades]), vec!["t1.trade.>"]);
        let subject = "t1.trade.okx_spot.spot.BTC-USDT";
        assert_eq!(data_type_of_subject("t1", subject), Some(DataType::Trades));
        assert_eq!(data_type_of_subject("", subject), None);
        assert_eq!(data_type_of_subject("t2", subject), None);
        assert_eq!(
            dead_letter_subject("t1", subject),
            "t1.deadletter.trade.okx_spot.spot.BTC-USDT"
        );
        assert_eq!(
            dead_letter_subject("", "gap.x.spot.A-B"),
            "deadletter.gap.x.spot.A-B"
        );
    }

    #[test]
    fn reconnect_delay_is_bounded() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(100));
        assert_eq!(reconnect_delay(1), Duration::from_millis(200));
        assert_eq!(reconnect_delay(1_000), Duration::from_secs(2));
    }
}
