//! `simulator:`: the built-in exchange simulator and the venue behaviours it imitates.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub seed: u64,
    /// Events per second per symbol and stream.
    pub rate_per_s: u32,
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve `wss://` and `https://` with a CA generated at start (the CA's PEM is on the handle, and
    /// `simulate --tls --ca-out FILE` writes it for `tls.ca_file`); plain `ws://`/`http://` otherwise.
    pub tls: bool,
    /// Milliseconds between slow updates (mark price/funding, open interest, liquidations, DVOL).
    pub slow_interval_ms: u64,
    /// Levels per side of each simulated book.
    pub book_levels: usize,
    /// How the OKX `books` channel behaves (2026 transition).
    pub okx_book_mode: OkxBookMode,
    /// Binance spot: ping frame every 20 s, cut after 60 s without a pong.
    pub binance_spot_ping_interval_ms: u64,
    pub binance_spot_pong_timeout_ms: u64,
    /// Binance USD-M: ping frame every 3 min, cut after 10 min without a pong.
    pub binance_usdm_ping_interval_ms: u64,
    pub binance_usdm_pong_timeout_ms: u64,
    /// Binance inbound message limits per connection and second (spot 5, USD-M 10); 0 disables.
    pub binance_spot_max_inbound_per_s: u32,
    pub binance_usdm_max_inbound_per_s: u32,
    /// Binance REST weight budget per minute (spot 6000, USD-M 2400); beyond it 429.
    pub binance_spot_weight_per_min: u32,
    pub binance_usdm_weight_per_min: u32,
    /// OKX: close with 4004 after this long without a client frame.
    pub okx_idle_timeout_ms: u64,
    /// Gate: close after this long with neither a client frame nor pushed data (Gate documents no
    /// idle cut; the simulator assumes one, so the client's `spot.ping`/`futures.ping` can be tested).
    pub gate_idle_timeout_ms: u64,
    /// MEXC: spot closes after this long with neither data nor a client frame, contracts after this
    /// long without a client frame (both 1 min on the venue).
    pub mexc_idle_timeout_ms: u64,
    /// Deribit: how long one "second" of `public/set_heartbeat` lasts (shorten for tests; the ≥ 10 rule still applies).
    pub deribit_heartbeat_second_ms: u64,
    /// Every connection is closed after this long (24 h on the real venues).
    pub connection_lifetime_ms: u64,
    /// Binance: delay between the `serverShutdown` event and the close.
    pub server_shutdown_grace_ms: u64,
    /// Milliseconds the venues' server-time endpoints are ahead of the real clock (negative: behind):
    /// Binance `/api/v3/time` and `/fapi/v1/time`, OKX `/api/v5/public/time`, Deribit `public/get_time`
    /// (REST and WebSocket). Market data keeps real time. Lets a test prove the collector measures
    /// the clock offset. At most one day either way.
    pub clock_skew_ms: i64,
}

/// OKX `books` channel behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OkxBookMode {
    /// WS snapshot first, real crc32 checksum in every message.
    Legacy,
    /// WS snapshot still sent (to be ignored), checksum always 0, REST snapshot carries `seqId` (from 2026-06-23).
    ZeroChecksum,
    /// No WS snapshot, checksum 0: the book must come from REST `/api/v5/market/books` (from August 2026).
    RestSnapshot,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            seed: 42,
            rate_per_s: 50,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            slow_interval_ms: 1_000,
            book_levels: 100,
            okx_book_mode: OkxBookMode::Legacy,
            binance_spot_ping_interval_ms: 20_000,
            binance_spot_pong_timeout_ms: 60_000,
            binance_usdm_ping_interval_ms: 180_000,
            binance_usdm_pong_timeout_ms: 600_000,
            binance_spot_max_inbound_per_s: 5,
            binance_usdm_max_inbound_per_s: 10,
            binance_spot_weight_per_min: 6_000,
            binance_usdm_weight_per_min: 2_400,
            okx_idle_timeout_ms: 30_000,
            gate_idle_timeout_ms: 60_000,
            mexc_idle_timeout_ms: 60_000,
            deribit_heartbeat_second_ms: 1_000,
            connection_lifetime_ms: 24 * 3_600_000,
            server_shutdown_grace_ms: 1_000,
            clock_skew_ms: 0,
        }
    }
}

impl SimulatorConfig {
    /// Checks serde cannot express; errors name the field under `simulator.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("simulator.{f}"),
                reason: reason.to_owned(),
            })
        };
        if self.rate_per_s == 0 || self.rate_per_s > 1_000_000 {
            return invalid("rate_per_s", "must be between 1 and 1000000");
        }
        if self.book_levels < 5 || self.book_levels > 5_000 {
            return invalid("book_levels", "must be between 5 and 5000");
        }
        let positive = [
            ("slow_interval_ms", self.slow_interval_ms),
            ("okx_idle_timeout_ms", self.okx_idle_timeout_ms),
            ("gate_idle_timeout_ms", self.gate_idle_timeout_ms),
            ("mexc_idle_timeout_ms", self.mexc_idle_timeout_ms),
            (
                "deribit_heartbeat_second_ms",
                self.deribit_heartbeat_second_ms,
            ),
            ("connection_lifetime_ms", self.connection_lifetime_ms),
            (
                "binance_spot_ping_interval_ms",
                self.binance_spot_ping_interval_ms,
            ),
            (
                "binance_usdm_ping_interval_ms",
                self.binance_usdm_ping_interval_ms,
            ),
        ];
        for (f, v) in positive {
            if v == 0 {
                return invalid(f, "must be at least 1");
            }
        }
        if self.clock_skew_ms.abs() > 86_400_000 {
            return invalid(
                "clock_skew_ms",
                "must be within one day (86400000 ms) either way",
            );
        }
        if self.binance_spot_pong_timeout_ms <= self.binance_spot_ping_interval_ms {
            return invalid(
                "binance_spot_pong_timeout_ms",
                "must exceed binance_spot_ping_interval_ms",
            );
        }
        if self.binance_usdm_pong_timeout_ms <= self.binance_usdm_ping_interval_ms {
            return invalid(
                "binance_usdm_pong_timeout_ms",
                "must exceed binance_usdm_ping_interval_ms",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn simulator_section_defaults_and_validation() {
        let c = Config::from_yaml("simulator:\n  seed: 7\n").unwrap();
        c.validate().unwrap();
        let sim = c.simulator.unwrap();
        assert_eq!((sim.seed, sim.okx_book_mode), (7, OkxBookMode::Legacy));
        assert_eq!(sim.binance_spot_ping_interval_ms, 20_000);
        let bad = Config::from_yaml(
            "simulator:\n  binance_spot_ping_interval_ms: 500\n  binance_spot_pong_timeout_ms: 100\n",
        )
        .unwrap();
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("simulator.binance_spot_pong_timeout_ms"),
            "{err}"
        );
        let err = Config::from_yaml("simulator:\n  rate_per_s: 0\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("simulator.rate_per_s"), "{err}");
        let err = Config::from_yaml("simulator:\n  okx_book_mode: nope\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("legacy"), "lists the modes: {err}");
    }

    #[test]
    fn clock_skew_is_optional_signed_and_within_a_day() {
        let sim = |yaml: &str| Config::from_yaml(yaml).unwrap();
        assert_eq!(sim("simulator: {}\n").simulator.unwrap().clock_skew_ms, 0);
        let behind = sim("simulator:\n  clock_skew_ms: -2500\n");
        behind.validate().unwrap();
        assert_eq!(behind.simulator.unwrap().clock_skew_ms, -2_500);
        let err = sim("simulator:\n  clock_skew_ms: 86400001\n")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("simulator.clock_skew_ms"), "{err}");
    }
}
