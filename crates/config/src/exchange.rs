//! `exchanges[]`: which venue, symbols and data types to collect, and how to connect and keep books.

use crate::error::ConfigError;
use crate::signals::SignalsSection;
use marketprism_model::{DataType, Exchange, Symbol};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    pub exchange: Exchange,
    pub symbols: Vec<Symbol>,
    pub data_types: Vec<DataType>,
    /// Endpoint overrides; the venue's 2026 production endpoints otherwise.
    #[serde(default, skip_serializing_if = "EndpointsConfig::is_unset")]
    pub endpoints: EndpointsConfig,
    #[serde(default)]
    pub orderbook: OrderBookConfig,
    /// Seconds between REST polls for slow data (open interest, long/short ratios).
    #[serde(default = "default_poll_interval_s")]
    pub poll_interval_s: u64,
    /// Seconds without data after which a stream with a steady cadence (books, funding) is handled as
    /// silent: that stream alone is checked or resynced (README "A fault stays in its stream"); the
    /// connection is reconnected only when none of its watched streams delivers.
    #[serde(default = "default_stale_after_s")]
    pub stale_after_s: u64,
    /// Seconds after which a connection is replaced, make-before-break, ahead of the venue's 24 h cut.
    #[serde(default = "default_rotate_after_s")]
    pub rotate_after_s: u64,
    /// Seconds to wait for the venue's ack of every subscription before reconnecting.
    #[serde(default = "default_subscribe_timeout_s")]
    pub subscribe_timeout_s: u64,
    /// Period of the long/short ratio polls, as the venue names it (`5m`; OKX also `1H`, ...).
    #[serde(default = "default_lsr_period")]
    pub lsr_period: String,
    /// Seconds between reloads of the venue's instrument list (loaded at start, then on this timer).
    #[serde(default = "default_instruments_refresh_s")]
    pub instruments_refresh_s: u64,
    /// Order-flow signals computed from this entry's books and trades, for the listed symbols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<SignalsSection>,
}

impl ExchangeConfig {
    /// `symbols` and `data_types` of `exchange`, every other setting at its default.
    pub fn new(exchange: Exchange, symbols: Vec<Symbol>, data_types: Vec<DataType>) -> Self {
        ExchangeConfig {
            exchange,
            symbols,
            data_types,
            endpoints: EndpointsConfig::default(),
            orderbook: OrderBookConfig::default(),
            poll_interval_s: default_poll_interval_s(),
            stale_after_s: default_stale_after_s(),
            rotate_after_s: default_rotate_after_s(),
            subscribe_timeout_s: default_subscribe_timeout_s(),
            lsr_period: default_lsr_period(),
            instruments_refresh_s: default_instruments_refresh_s(),
            signals: None,
        }
    }
}

fn default_poll_interval_s() -> u64 {
    60
}
fn default_stale_after_s() -> u64 {
    30
}
fn default_rotate_after_s() -> u64 {
    // MarketPrism's figure: 24 h minus 5 min of margin for the overlap.
    86_100
}
fn default_subscribe_timeout_s() -> u64 {
    10
}
fn default_instruments_refresh_s() -> u64 {
    3_600
}
fn default_lsr_period() -> String {
    "5m".into()
}

/// Endpoint overrides (the simulator, a proxy, testnet). Each is a base URL without a path:
/// scheme, host and port (`ws://127.0.0.1:9000`, `https://fapi.binance.com`); the connector appends the
/// venue's own paths, exactly as on the real venue:
///
/// | exchange | ws_url default + appended paths | rest_url default + paths |
/// |---|---|---|
/// | binance_spot | `wss://stream.binance.com:9443` + `/ws` | `https://api.binance.com` + `/api/v3/depth` |
/// | binance_derivatives | `wss://fstream.binance.com` + `/public/ws` (depth) and `/market/ws` (aggTrade, markPrice, forceOrder) | `https://fapi.binance.com` + `/fapi/v1/depth`, `/fapi/v1/openInterest`, `/futures/data/…` |
/// | okx_spot, okx_derivatives | `wss://ws.okx.com:8443` + `/ws/v5/public` | `https://www.okx.com` + `/api/v5/market/books`, `/api/v5/public/open-interest`, `/api/v5/rubik/stat/contracts/…` |
/// | deribit_derivatives | `wss://www.deribit.com` + `/ws/api/v2` | (not used: everything is on the WebSocket) |
/// | gate_spot | `wss://api.gateio.ws` + `/ws/v4/` | `https://api.gateio.ws` + `/api/v4/spot/order_book`, `/api/v4/spot/currency_pairs`, `/api/v4/spot/time` |
/// | gate_derivatives | `wss://fx-ws.gateio.ws` + `/v4/ws/usdt` | `https://api.gateio.ws` + `/api/v4/futures/usdt/order_book`, `/api/v4/futures/usdt/contracts` |
/// | mexc_spot | `wss://wbs-api.mexc.com` + `/ws` | `https://api.mexc.com` + `/api/v3/depth`, `/api/v3/exchangeInfo`, `/api/v3/time` |
/// | mexc_derivatives | `wss://contract.mexc.com` + `/edge` | `https://contract.mexc.com` + `/api/v1/contract/depth/{symbol}`, `/api/v1/contract/detail`, `/api/v1/contract/ping` |
///
/// A trailing `/` on an override is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_url: Option<String>,
}

impl EndpointsConfig {
    /// No override: the venue's production endpoints (left out of a rendered file).
    pub fn is_unset(&self) -> bool {
        self.ws_url.is_none() && self.rest_url.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrderBookConfig {
    /// Levels per side kept in the local book.
    pub depth: usize,
    /// Levels per side published in each snapshot.
    pub snapshot_levels: usize,
    /// Milliseconds between published snapshots (one is also published after every resync).
    pub snapshot_interval_ms: u64,
    /// Tick by tick: publish the top `snapshot_levels` after every update applied to every book of
    /// this venue (one `orderbooks` row per venue update, keyed by its update id), instead of every
    /// `snapshot_interval_ms`. At the venues' 100 ms book channels that is at most 10 rows/s per symbol.
    pub every_update: bool,
    /// Tick by tick for these symbols only (each must be in `symbols`); the others keep the interval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub every_update_symbols: Vec<Symbol>,
    /// Verify OKX crc32 checksums when the venue sends a non-zero one (`checksum == 0` means absent).
    /// Unset (the default): verify whenever `depth` holds the 25 levels per side the checksum covers.
    /// `true` with a smaller `depth` is rejected (every checksum would fail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_checksum: Option<bool>,
    /// Seconds a book may take to sync (after start or a resync) before it is reported: a gap row,
    /// a metric and not-ready for that stream, with the reason (the fetches go on).
    pub sync_timeout_s: u64,
    /// Where OKX books start from: `rest` (`/api/v5/market/books` with `seqId`, the 2026 procedure)
    /// or `ws` (the legacy first push of the `books` channel).
    pub okx_snapshot: OkxSnapshotSource,
    /// Levels asked for in a Binance REST snapshot (`limit`; its request weight grows with it).
    pub rest_snapshot_limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OkxSnapshotSource {
    Rest,
    Ws,
}

impl Default for OrderBookConfig {
    fn default() -> Self {
        OrderBookConfig {
            depth: 400,
            snapshot_levels: 20,
            snapshot_interval_ms: 1_000,
            every_update: false,
            every_update_symbols: Vec::new(),
            verify_checksum: None,
            sync_timeout_s: 30,
            okx_snapshot: OkxSnapshotSource::Rest,
            rest_snapshot_limit: 1_000,
        }
    }
}

/// Levels per side the OKX crc32 checksum covers (exchange-protocols.md §3.3).
pub(crate) const OKX_CHECKSUM_LEVELS: usize = 25;

impl OrderBookConfig {
    /// Whether `symbol`'s book is published after every update ([`Self::every_update`]).
    pub fn is_every_update(&self, symbol: &Symbol) -> bool {
        self.every_update || self.every_update_symbols.contains(symbol)
    }

    /// Whether OKX checksums are verified: as configured, else when the local book is deep enough.
    pub fn checksum_verified(&self) -> bool {
        self.verify_checksum
            .unwrap_or(self.depth >= OKX_CHECKSUM_LEVELS)
    }
}

impl ExchangeConfig {
    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("{at}.{f}"),
                reason: reason.to_owned(),
            })
        };
        if self.symbols.is_empty() {
            return invalid("symbols", "list at least one symbol, e.g. [BTC-USDT]");
        }
        if self.data_types.is_empty() {
            return invalid("data_types", "list at least one data type, e.g. [trades]");
        }
        if self.data_types.contains(&DataType::Gaps) {
            return invalid("data_types", "gaps are always recorded; do not list them");
        }
        if let Some(d) = self.data_types.iter().find(|d| d.is_signal()) {
            return invalid(
                "data_types",
                &format!(
                    "{d} is computed, not collected: enable it with `signals: {{symbols: [...]}}`"
                ),
            );
        }
        if let Some(s) = &self.signals {
            s.validate(at, &self.symbols, &self.data_types)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.symbols {
            if !seen.insert(s) {
                return invalid("symbols", &format!("{s} is listed twice"));
            }
        }
        let ob = &self.orderbook;
        if ob.depth == 0 || ob.depth > 5_000 {
            return invalid("orderbook.depth", "must be between 1 and 5000");
        }
        if ob.snapshot_levels == 0 || ob.snapshot_levels > ob.depth {
            return invalid(
                "orderbook.snapshot_levels",
                "must be between 1 and orderbook.depth",
            );
        }
        let okx = matches!(self.exchange, Exchange::OkxSpot | Exchange::OkxDerivatives);
        if okx && ob.verify_checksum == Some(true) && ob.depth < OKX_CHECKSUM_LEVELS {
            return invalid(
                "orderbook.depth",
                &format!(
                    "must be at least {OKX_CHECKSUM_LEVELS} with orderbook.verify_checksum: true (the OKX checksum covers {OKX_CHECKSUM_LEVELS} levels per side); raise depth or set verify_checksum: false"
                ),
            );
        }
        if ob.sync_timeout_s == 0 {
            return invalid("orderbook.sync_timeout_s", "must be at least 1");
        }
        if (ob.every_update || !ob.every_update_symbols.is_empty())
            && !self.data_types.contains(&DataType::Orderbooks)
        {
            return invalid(
                "orderbook.every_update",
                "tick-by-tick books need `orderbooks` in data_types",
            );
        }
        if let Some(s) = ob
            .every_update_symbols
            .iter()
            .find(|s| !self.symbols.contains(s))
        {
            return invalid(
                "orderbook.every_update_symbols",
                &format!("{s} is not in symbols; list only symbols this exchange collects"),
            );
        }
        if ob.snapshot_interval_ms < 10 {
            return invalid("orderbook.snapshot_interval_ms", "must be at least 10");
        }
        if self.poll_interval_s == 0 {
            return invalid("poll_interval_s", "must be at least 1");
        }
        if self.stale_after_s == 0 {
            return invalid("stale_after_s", "must be at least 1");
        }
        if self.instruments_refresh_s < 60 {
            return invalid("instruments_refresh_s", "must be at least 60");
        }
        if self.rotate_after_s < 60 {
            return invalid("rotate_after_s", "must be at least 60");
        }
        if self.subscribe_timeout_s == 0 {
            return invalid("subscribe_timeout_s", "must be at least 1");
        }
        if ![5, 10, 20, 50, 100, 500, 1000, 5000].contains(&ob.rest_snapshot_limit) {
            return invalid(
                "orderbook.rest_snapshot_limit",
                "must be one of 5, 10, 20, 50, 100, 500, 1000, 5000",
            );
        }
        for (f, url, schemes) in [
            (
                "endpoints.ws_url",
                &self.endpoints.ws_url,
                ["ws://", "wss://"],
            ),
            (
                "endpoints.rest_url",
                &self.endpoints.rest_url,
                ["http://", "https://"],
            ),
        ] {
            if let Some(url) = url
                && !schemes.iter().any(|s| url.starts_with(s))
            {
                return invalid(
                    f,
                    &format!("must start with {} or {}", schemes[0], schemes[1]),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::test_support::MINIMAL;

    #[test]
    fn exchange_connection_fields_default_and_validate() {
        let c = Config::from_yaml(MINIMAL).unwrap();
        let ex = &c.exchanges[0];
        assert_eq!(
            (
                ex.rotate_after_s,
                ex.subscribe_timeout_s,
                ex.lsr_period.as_str()
            ),
            (86_100, 10, "5m")
        );
        assert_eq!(ex.orderbook.okx_snapshot, OkxSnapshotSource::Rest);
        let check = |extra: &str| {
            Config::from_yaml(&format!("{MINIMAL}{extra}"))
                .unwrap()
                .validate()
                .map_err(|e| e.to_string())
        };
        check("    endpoints: {ws_url: \"ws://127.0.0.1:9000\", rest_url: \"http://127.0.0.1:9000\"}\n").unwrap();
        let err = check("    endpoints: {ws_url: \"http://127.0.0.1:9000\"}\n").unwrap_err();
        assert!(err.contains("exchanges[0].endpoints.ws_url"), "{err}");
        let err = check("    rotate_after_s: 5\n").unwrap_err();
        assert!(err.contains("exchanges[0].rotate_after_s"), "{err}");
        let err = check("    orderbook: {rest_snapshot_limit: 7}\n").unwrap_err();
        assert!(err.contains("orderbook.rest_snapshot_limit"), "{err}");
        let c =
            Config::from_yaml(&format!("{MINIMAL}    orderbook: {{okx_snapshot: ws}}\n")).unwrap();
        assert_eq!(c.exchanges[0].orderbook.sync_timeout_s, 30);
        assert!(
            c.exchanges[0].orderbook.checksum_verified(),
            "default: verify at depth 400"
        );
        assert_eq!(c.exchanges[0].orderbook.okx_snapshot, OkxSnapshotSource::Ws);
    }

    #[test]
    fn contradictory_okx_checksum_settings_are_rejected() {
        let okx = |ob: &str| {
            Config::from_yaml(&format!(
                "exchanges:\n  - exchange: okx_derivatives\n    symbols: [BTC-USDT]\n    data_types: [orderbooks]\n    orderbook: {ob}\n"
            ))
            .unwrap()
            .validate()
            .map_err(|e| e.to_string())
        };
        let err = okx("{depth: 10, snapshot_levels: 10, verify_checksum: true}").unwrap_err();
        assert!(
            err.contains("exchanges[0].orderbook.depth") && err.contains("25 levels"),
            "{err}"
        );
        okx("{depth: 10, snapshot_levels: 10, verify_checksum: false}").unwrap();
        let c = Config::from_yaml("exchanges:\n  - exchange: okx_spot\n    symbols: [BTC-USDT]\n    data_types: [orderbooks]\n    orderbook: {depth: 10, snapshot_levels: 10}\n").unwrap();
        c.validate().unwrap();
        assert!(
            !c.exchanges[0].orderbook.checksum_verified(),
            "unset: not verified below 25 levels (sequence ids alone prove continuity)"
        );
        let err = okx("{sync_timeout_s: 0}").unwrap_err();
        assert!(err.contains("orderbook.sync_timeout_s"), "{err}");
    }

    #[test]
    fn every_update_is_per_venue_or_per_listed_symbol() {
        let cfg = |ob: &str| {
            Config::from_yaml(&format!(
                "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: [orderbooks]\n    orderbook: {ob}\n"
            ))
            .unwrap()
        };
        let btc = Symbol::new("BTC-USDT").unwrap();
        let eth = Symbol::new("ETH-USDT").unwrap();
        let c = cfg("{every_update_symbols: [ETH-USDT]}");
        c.validate().unwrap();
        let ob = &c.exchanges[0].orderbook;
        assert!(ob.is_every_update(&eth) && !ob.is_every_update(&btc));
        let c = cfg("{every_update: true}");
        assert!(c.exchanges[0].orderbook.is_every_update(&btc));
        let err = cfg("{every_update_symbols: [SOL-USDT]}")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exchanges[0].orderbook.every_update_symbols") && err.contains("SOL-USDT"),
            "{err}"
        );
        let err = Config::from_yaml("exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]\n    orderbook: {every_update: true}\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("need `orderbooks`"), "{err}");
        assert!(
            Config::from_yaml("exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [orderbooks]\n    orderbook: {every_updates: true}\n").is_err(),
            "a misspelt option is refused, not ignored"
        );
    }
}
