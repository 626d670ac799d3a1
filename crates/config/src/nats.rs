//! `outputs.nats` and `sink.nats`: the NATS server, its JetStream streams and the publisher's limits.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// Most publishes awaiting an ack: the NATS client buffers 65 536 messages per subscription, and
/// every ack of the window arrives on one.
pub(crate) const MAX_IN_FLIGHT: usize = 65_536;
/// Default `batch_linger_ms`: small beside the sink's batching (seconds), enough to batch a busy subject.
pub const DEFAULT_BATCH_LINGER_MS: u64 = 20;
/// A batch's events wait at most this long: beyond it the latency is no longer a publish's.
const MAX_BATCH_LINGER_MS: u64 = 1_000;
const MAX_BATCH_EVENTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// `nats://host:port`; overridden by `MARKETPRISM_NATS_URL`.
    pub url: String,
    /// Credentials come only from the environment: `MARKETPRISM_NATS_USER`/`_PASSWORD` or `_TOKEN`.
    #[serde(skip)]
    pub credentials: Option<NatsCredentials>,
    /// Trust for `tls://` servers (from `tls.ca_file`; see [`crate::TlsConfig`]).
    #[serde(skip)]
    pub tls: crate::tls::ClientTls,
    pub market_data_stream: StreamLimits,
    pub orderbook_stream: StreamLimits,
    /// Publishes awaiting their JetStream ack at once.
    pub max_in_flight: usize,
    /// Events buffered while NATS is unreachable; beyond it events are dropped and counted. A
    /// stream refusing publishes (at its limits) holds up to as many of its own events apart, so
    /// it never crowds out the other stream's; publishes awaiting acks hold at most as many events
    /// again: memory is bounded by four times this (~400 bytes each).
    pub buffer_capacity: usize,
    /// Prepended (with a `.`) to every subject and stream subject filter; empty in production.
    /// Lets several deployments or test runs share one NATS server without overlapping streams.
    pub subject_prefix: String,
    /// Milliseconds to wait for one publish ack before retrying it (same `Nats-Msg-Id`, so it is safe).
    pub ack_timeout_ms: u64,
    /// At shutdown, milliseconds to keep publishing the buffer before counting the rest as dropped.
    pub drain_timeout_ms: u64,
    /// Milliseconds a subject's events may wait to go out together as one batch message (a JSON
    /// array, see `marketprism_model::wire`); 0 sends every event as its own message. Under load
    /// this divides the messages NATS handles per event (publish, ack, delivery, consumer ack).
    pub batch_linger_ms: u64,
    /// Most events in one batch message (payloads also stay within half the server's `max_payload`).
    pub batch_max_events: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            credentials: None,
            tls: crate::tls::ClientTls::default(),
            market_data_stream: StreamLimits {
                name: "MARKET_DATA".into(),
                max_bytes: 2 * 1024 * 1024 * 1024,
                max_age_s: 48 * 3600,
                duplicate_window_s: 120,
            },
            orderbook_stream: StreamLimits {
                name: "ORDERBOOK_SNAP".into(),
                max_bytes: 5 * 1024 * 1024 * 1024,
                max_age_s: 24 * 3600,
                duplicate_window_s: 60,
            },
            max_in_flight: 4_096,
            buffer_capacity: 200_000,
            subject_prefix: String::new(),
            ack_timeout_ms: 5_000,
            drain_timeout_ms: 10_000,
            batch_linger_ms: DEFAULT_BATCH_LINGER_MS,
            batch_max_events: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsCredentials {
    UserPassword { user: String, password: String },
    Token(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamLimits {
    pub name: String,
    pub max_bytes: i64,
    pub max_age_s: u64,
    pub duplicate_window_s: u64,
}

impl NatsConfig {
    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("{at}.{f}"),
                reason: reason.to_owned(),
            })
        };
        if !self.url.starts_with("nats://") && !self.url.starts_with("tls://") {
            return invalid("url", "must start with nats:// or tls://");
        }
        // Acks beyond the client's subscription buffer would be dropped as a slow consumer.
        if self.max_in_flight == 0 || self.max_in_flight > MAX_IN_FLIGHT {
            return invalid(
                "max_in_flight",
                &format!("must be between 1 and {MAX_IN_FLIGHT}"),
            );
        }
        for (f, s) in [
            ("market_data_stream", &self.market_data_stream),
            ("orderbook_stream", &self.orderbook_stream),
        ] {
            if s.max_bytes <= 0 || s.max_age_s == 0 || s.duplicate_window_s == 0 {
                return invalid(
                    f,
                    "max_bytes, max_age_s and duplicate_window_s must be positive",
                );
            }
            if s.duplicate_window_s > s.max_age_s {
                return invalid(f, "duplicate_window_s must not exceed max_age_s");
            }
            if !is_nats_name(&s.name) {
                return invalid(f, "name: letters, digits, - and _ only");
            }
        }
        if self.market_data_stream.name == self.orderbook_stream.name {
            return invalid(
                "orderbook_stream",
                "name must differ from market_data_stream",
            );
        }
        let prefix_ok =
            self.subject_prefix.is_empty() || self.subject_prefix.split('.').all(is_nats_name);
        if !prefix_ok {
            return invalid(
                "subject_prefix",
                "dot-separated tokens of letters, digits, - and _ (no wildcards), or empty",
            );
        }
        if self.ack_timeout_ms == 0 {
            return invalid("ack_timeout_ms", "must be at least 1");
        }
        if self.batch_linger_ms > MAX_BATCH_LINGER_MS {
            return invalid(
                "batch_linger_ms",
                &format!("must be between 0 (no batching) and {MAX_BATCH_LINGER_MS}"),
            );
        }
        if self.batch_max_events == 0 || self.batch_max_events > MAX_BATCH_EVENTS {
            return invalid(
                "batch_max_events",
                &format!("must be between 1 and {MAX_BATCH_EVENTS}"),
            );
        }
        Ok(())
    }
}

/// Stream, consumer and subject-token names: no `.`, `*`, `>` or whitespace.
pub(super) fn is_nats_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::test_support::MINIMAL;
    use std::collections::BTreeMap;

    #[test]
    fn credentials_come_from_env_only() {
        let yaml = format!("{MINIMAL}outputs:\n  nats:\n    url: nats://10.0.0.1:4222\n");
        let mut c = Config::from_yaml(&yaml).unwrap();
        let env: BTreeMap<&str, &str> = [
            ("MARKETPRISM_NATS_USER", "u"),
            ("MARKETPRISM_NATS_PASSWORD", "p"),
            ("MARKETPRISM_NATS_URL", "nats://127.0.0.1:4333"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string()));
        let nats = c.outputs.nats.as_ref().unwrap();
        assert_eq!(nats.url, "nats://127.0.0.1:4333");
        assert!(
            matches!(&nats.credentials, Some(NatsCredentials::UserPassword { user, .. }) if user == "u")
        );
        assert!(
            !serde_yaml::to_string(&c).unwrap().contains("p\n"),
            "credentials never serialized"
        );
        let err = Config::from_yaml(&format!("{yaml}    password: x\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("password"), "{err}");
    }

    #[test]
    fn the_ack_window_fits_the_ack_subscription() {
        let yaml = format!("{MINIMAL}outputs:\n  nats:\n    url: nats://10.0.0.1:4222\n");
        for (window, ok) in [
            (1, true),
            (MAX_IN_FLIGHT, true),
            (0, false),
            (MAX_IN_FLIGHT + 1, false),
        ] {
            let c = Config::from_yaml(&format!("{yaml}    max_in_flight: {window}\n")).unwrap();
            match c.validate() {
                Ok(()) => assert!(ok, "{window} accepted"),
                Err(e) => {
                    assert!(!ok, "{window} refused: {e}");
                    assert!(e.to_string().contains("outputs.nats.max_in_flight"), "{e}");
                }
            }
        }
    }

    #[test]
    fn batching_is_bounded_and_zero_linger_turns_it_off() {
        let yaml = format!("{MINIMAL}outputs:\n  nats:\n    url: nats://10.0.0.1:4222\n");
        let c = Config::from_yaml(&yaml).unwrap();
        let nats = c.outputs.nats.as_ref().unwrap();
        assert_eq!(
            (nats.batch_linger_ms, nats.batch_max_events),
            (DEFAULT_BATCH_LINGER_MS, 256)
        );
        for (line, ok, field) in [
            ("batch_linger_ms: 0", true, ""),
            ("batch_linger_ms: 1000", true, ""),
            (
                "batch_linger_ms: 1001",
                false,
                "outputs.nats.batch_linger_ms",
            ),
            ("batch_max_events: 1", true, ""),
            (
                "batch_max_events: 0",
                false,
                "outputs.nats.batch_max_events",
            ),
            (
                "batch_max_events: 10001",
                false,
                "outputs.nats.batch_max_events",
            ),
        ] {
            let c = Config::from_yaml(&format!("{yaml}    {line}\n")).unwrap();
            match c.validate() {
                Ok(()) => assert!(ok, "{line} accepted"),
                Err(e) => {
                    assert!(!ok, "{line} refused: {e}");
                    assert!(e.to_string().contains(field), "{e}");
                }
            }
        }
    }
}
