//! The per-stream account of a run: for every configured stream (venue × data type × symbol), how many
//! events arrived, which gaps were recorded and why, and whether it ever delivered.
//!
//! Pure bookkeeping fed by the fan-out with every event; it decides readiness ("a configured stream has
//! never delivered") and the run's verdict (non-zero exit when a stream never delivered, was refused,
//! is not offered by its venue, or a task crashed). Nothing here does I/O.

use marketprism_config::ExchangeConfig;
use marketprism_model::{DataType, Event, Exchange, GapCause, Payload, Symbol};
use marketprism_telemetry::{Health, ReadinessGuard};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One stream: the unit the summary, readiness and gaps speak of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct StreamKey {
    pub exchange: Exchange,
    pub data_type: DataType,
    pub symbol: Symbol,
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.exchange, self.data_type, self.symbol)
    }
}

/// Where a stream stands at the end of a run (or now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    /// At least one event arrived.
    Delivered,
    /// Event-driven (liquidations): none happened, and nothing says the stream failed.
    Quiet,
    /// Configured, expected, and no event ever arrived.
    NeverDelivered,
    /// The venue refused the subscription or does not list the instrument.
    Refused,
    /// The venue does not offer this data type at all.
    NotOffered,
}

impl StreamStatus {
    /// Whether this status fails the run.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            StreamStatus::NeverDelivered | StreamStatus::Refused | StreamStatus::NotOffered
        )
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamAccount {
    pub events: u64,
    /// Gap rows recorded for this stream, by cause.
    pub gaps: BTreeMap<&'static str, u64>,
    /// The detail of the last gap (close code, error text): what to look at first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_gap: Option<String>,
    #[serde(skip)]
    configured: bool,
    #[serde(skip)]
    offered: bool,
}

/// One line of the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    #[serde(flatten)]
    pub key: StreamKey,
    pub status: StreamStatus,
    #[serde(flatten)]
    pub account: StreamAccount,
}

/// Streams that may legitimately stay silent: the venue pushes only when something happens.
fn event_driven(data_type: DataType) -> bool {
    data_type == DataType::Liquidations
}

/// Every configured stream and what arrived for it.
#[derive(Debug, Default)]
pub struct StreamLedger {
    streams: HashMap<StreamKey, StreamAccount>,
    /// Expected streams with no event yet: readiness waits for this to reach zero.
    waiting: usize,
}

impl StreamLedger {
    /// The streams of `configs`; `offered(config)` lists the data types each venue cannot deliver
    /// (normally `marketprism_venues::plan::unsupported`).
    pub fn new(
        configs: &[ExchangeConfig],
        unsupported: impl Fn(&ExchangeConfig) -> Vec<DataType>,
    ) -> StreamLedger {
        let mut ledger = StreamLedger::default();
        for config in configs {
            let missing = unsupported(config);
            for &data_type in &config.data_types {
                for symbol in &config.symbols {
                    let key = StreamKey {
                        exchange: config.exchange,
                        data_type,
                        symbol: symbol.clone(),
                    };
                    let offered = !missing.contains(&data_type);
                    if offered && !event_driven(data_type) {
                        ledger.waiting += 1;
                    }
                    ledger.streams.insert(
                        key,
                        StreamAccount {
                            configured: true,
                            offered,
                            ..StreamAccount::default()
                        },
                    );
                }
            }
        }
        ledger
    }

    /// Count one event. Returns true when it is the first event of an expected stream (the caller may
    /// re-check readiness then). Events of streams nobody configured (synthetic feeds) are counted too.
    pub fn record(&mut self, event: &Event) -> bool {
        let (data_type, gap) = match &event.payload {
            Payload::Gap(g) => (g.data_type, Some(g)),
            _ => (event.data_type(), None),
        };
        let key = StreamKey {
            exchange: event.exchange,
            data_type,
            symbol: event.symbol.clone(),
        };
        let account = self.streams.entry(key).or_insert_with(|| StreamAccount {
            offered: true,
            ..StreamAccount::default()
        });
        match gap {
            Some(g) => {
                *account.gaps.entry(g.cause.as_str()).or_default() += 1;
                account.last_gap = Some(format!("{}: {}", g.cause.as_str(), g.detail));
                false
            }
            None => {
                account.events += 1;
                let first = account.events == 1
                    && account.configured
                    && account.offered
                    && !event_driven(data_type);
                if first {
                    self.waiting -= 1;
                }
                first
            }
        }
    }

    /// Expected streams that have not delivered yet, sorted (for a not-ready reason).
    pub fn waiting_for(&self) -> Vec<&StreamKey> {
        let mut keys: Vec<&StreamKey> = self
            .streams
            .iter()
            .filter(|(k, a)| {
                a.configured && a.offered && a.events == 0 && !event_driven(k.data_type)
            })
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        keys
    }

    /// True once every expected stream delivered at least one event.
    pub fn all_delivered(&self) -> bool {
        self.waiting == 0
    }

    fn status(key: &StreamKey, a: &StreamAccount) -> StreamStatus {
        let refused = a.gaps.contains_key(GapCause::Refused.as_str());
        if !a.offered {
            StreamStatus::NotOffered
        } else if a.events > 0 {
            StreamStatus::Delivered
        } else if refused {
            StreamStatus::Refused
        } else if event_driven(key.data_type) && a.gaps.is_empty() {
            StreamStatus::Quiet
        } else {
            StreamStatus::NeverDelivered
        }
    }

    /// Every stream, sorted, with its status.
    pub fn report(&self) -> Vec<StreamReport> {
        let mut out: Vec<StreamReport> = self
            .streams
            .iter()
            .map(|(k, a)| StreamReport {
                key: k.clone(),
                status: Self::status(k, a),
                account: a.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// What fails the run, one sentence each: streams that never delivered, refused or not offered
    /// streams, and crashed tasks. Empty means the run did what was configured.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.report() {
            let why = r
                .account
                .last_gap
                .as_deref()
                .map(|g| format!(" (last gap: {g})"))
                .unwrap_or_default();
            // Streams nobody configured (a synthetic feed's) only count when a task crashed.
            let status = if r.account.configured {
                r.status
            } else {
                StreamStatus::Delivered
            };
            match status {
                StreamStatus::NeverDelivered => {
                    out.push(format!("{}: never delivered{why}", r.key));
                }
                StreamStatus::Refused => out.push(format!("{}: refused{why}", r.key)),
                StreamStatus::NotOffered => out.push(format!(
                    "{}: {} does not offer {}",
                    r.key, r.key.exchange, r.key.data_type
                )),
                StreamStatus::Delivered | StreamStatus::Quiet => {}
            }
            if let Some(n) = r.account.gaps.get(GapCause::Crashed.as_str()) {
                out.push(format!("{}: {n} task crash(es){why}", r.key));
            }
        }
        out
    }
}

/// The ledger and the readiness component it drives: `streams` is not ready, naming the streams,
/// while a configured stream has never delivered.
#[derive(Debug)]
pub struct StreamTracker {
    pub ledger: StreamLedger,
    ready: ReadinessGuard,
}

impl StreamTracker {
    pub fn new(ledger: StreamLedger, health: &Health) -> StreamTracker {
        let tracker = StreamTracker {
            ready: health.register("streams"),
            ledger,
        };
        tracker.refresh();
        tracker
    }

    /// Count one event (before fencing: a stream delivers when the venue sends, whoever may publish).
    pub fn record(&mut self, event: &Event) {
        if self.ledger.record(event) {
            self.refresh();
        }
    }

    fn refresh(&self) {
        if self.ledger.all_delivered() {
            self.ready.ready();
            return;
        }
        let waiting = self.ledger.waiting_for();
        let shown: Vec<String> = waiting.iter().take(5).map(ToString::to_string).collect();
        let more = waiting.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        };
        self.ready
            .not_ready(&format!("never delivered: {}{tail}", shown.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_config::Config;
    use marketprism_model::{Gap, MarketType, QuantityUnit, Side, Trade};
    use rust_decimal::Decimal;

    fn configs() -> Vec<ExchangeConfig> {
        Config::from_yaml(
            "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: [trades, funding_rates]\n  - exchange: binance_derivatives\n    symbols: [BTC-USDT]\n    data_types: [liquidations]\n",
        )
        .unwrap()
        .exchanges
    }

    fn not_funding_on_spot(c: &ExchangeConfig) -> Vec<DataType> {
        if c.exchange == Exchange::BinanceSpot {
            vec![DataType::FundingRates]
        } else {
            vec![]
        }
    }

    fn trade(symbol: &str) -> Event {
        Event {
            exchange: Exchange::BinanceSpot,
            market_type: MarketType::Spot,
            symbol: Symbol::new(symbol).unwrap(),
            ts_ms: 1,
            recv_ts_ms: 2,
            payload: Payload::Trade(Trade {
                trade_id: "1".into(),
                price: Decimal::ONE,
                quantity: Decimal::ONE,
                raw_quantity: Decimal::ONE,
                quantity_unit: QuantityUnit::Base,
                side: Side::Buy,
            }),
        }
    }

    fn gap(symbol: &str, data_type: DataType, cause: GapCause) -> Event {
        Event {
            payload: Payload::Gap(Gap {
                data_type,
                start_ms: 1,
                end_ms: 2,
                cause,
                detail: "why".into(),
            }),
            ..trade(symbol)
        }
    }

    #[test]
    fn readiness_waits_for_every_expected_stream_and_ignores_event_driven_ones() {
        let mut l = StreamLedger::new(&configs(), not_funding_on_spot);
        assert!(!l.all_delivered());
        assert_eq!(
            l.waiting_for().len(),
            2,
            "two trade streams; funding not offered, liquidations event-driven"
        );
        assert!(l.record(&trade("BTC-USDT")));
        assert!(
            !l.record(&trade("BTC-USDT")),
            "only the first event counts as first"
        );
        assert!(!l.all_delivered());
        assert!(
            !l.record(&gap("ETH-USDT", DataType::Trades, GapCause::Disconnect)),
            "a gap is not a delivery"
        );
        assert!(l.record(&trade("ETH-USDT")));
        assert!(l.all_delivered());
    }

    #[test]
    fn the_streams_component_is_not_ready_until_every_expected_stream_delivered() {
        let health = Health::new();
        let mut t = StreamTracker::new(StreamLedger::new(&configs(), not_funding_on_spot), &health);
        let reason = health.snapshot()["streams"].clone();
        assert!(!reason.ready);
        assert_eq!(
            reason.reason,
            "never delivered: binance_spot/trades/BTC-USDT, binance_spot/trades/ETH-USDT"
        );
        t.record(&trade("ETH-USDT"));
        assert_eq!(
            health.snapshot()["streams"].reason,
            "never delivered: binance_spot/trades/BTC-USDT"
        );
        t.record(&trade("BTC-USDT"));
        assert!(health.snapshot()["streams"].ready);
    }

    #[test]
    fn problems_name_each_stream_and_why() {
        let mut l = StreamLedger::new(&configs(), not_funding_on_spot);
        l.record(&trade("BTC-USDT"));
        l.record(&gap("ETH-USDT", DataType::Trades, GapCause::Refused));
        l.record(&gap("BTC-USDT", DataType::Trades, GapCause::Crashed));
        let problems = l.problems();
        assert!(
            problems
                .iter()
                .any(|p| p == "binance_spot/trades/ETH-USDT: refused (last gap: refused: why)"),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p
                .starts_with("binance_spot/funding_rates/BTC-USDT: binance_spot does not offer")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("binance_spot/trades/BTC-USDT: 1 task crash")),
            "{problems:?}"
        );
        assert!(
            !problems.iter().any(|p| p.contains("liquidations")),
            "a quiet event-driven stream is no problem: {problems:?}"
        );
        let report = l.report();
        let liq = report
            .iter()
            .find(|r| r.key.data_type == DataType::Liquidations)
            .unwrap();
        assert_eq!(liq.status, StreamStatus::Quiet);
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn gaps_of_streams_nobody_configured_are_no_problem() {
        let mut l = StreamLedger::new(&[], |_| vec![]);
        l.record(&gap("BTC-USDT", DataType::FundingRates, GapCause::Stale));
        assert!(l.problems().is_empty(), "{:?}", l.problems());
        l.record(&gap("BTC-USDT", DataType::FundingRates, GapCause::Crashed));
        assert_eq!(l.problems().len(), 1, "a crash always is");
    }

    #[test]
    fn an_event_driven_stream_with_only_gaps_never_delivered() {
        let mut l = StreamLedger::new(&configs(), not_funding_on_spot);
        let mut g = gap("BTC-USDT", DataType::Liquidations, GapCause::Disconnect);
        g.exchange = Exchange::BinanceDerivatives;
        l.record(&g);
        let liq = l
            .report()
            .into_iter()
            .find(|r| r.key.data_type == DataType::Liquidations)
            .unwrap();
        assert_eq!(liq.status, StreamStatus::NeverDelivered);
    }
}
