//! Internal events of what the collector observes about its venues: exchange-to-receive latency and
//! the last event's receive time per stream ([`EventDelivered`], through a [`StreamMeter`]), and the
//! clock offset against each venue's server time ([`ClockSampled`], [`ClockProbeFailed`]).

use super::InternalEvent;
use crate::parse::truncate;
use crate::plan::Stream;
use marketprism_model::{DataType, Event, Exchange, Symbol};
use metrics::{Counter, Gauge, Histogram};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

/// Histogram buckets of `marketprism_exchange_latency_seconds`, seconds: 1 ms to 10 s, dense around the
/// 100–150 ms of the p99 alert (the chart's `latencyP99Seconds`, 120 ms). Installed by the collector's
/// recorder for that metric only (other `_seconds` histograms keep their buckets).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.12, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// The metric handles of one configured stream, registered once (an event costs no label lookup).
struct StreamHandles {
    latency: Histogram,
    negative: Counter,
    last_event: Gauge,
    /// Latest receive time set on `last_event`, ms: the gauge never goes back for a late event.
    last_recv_ms: AtomicI64,
}

/// Latency and last-event metrics of the configured streams of one connection or poller. Only the
/// streams it was built with are ever labelled: label cardinality is the configured streams.
pub struct StreamMeter {
    exchange: Exchange,
    streams: HashMap<DataType, HashMap<Symbol, StreamHandles>>,
}

impl StreamMeter {
    /// Handles for `streams` of `exchange` (gaps and signal types have none: they are not received).
    pub fn new(exchange: Exchange, streams: &[Stream]) -> StreamMeter {
        let mut by_type: HashMap<DataType, HashMap<Symbol, StreamHandles>> = HashMap::new();
        for s in streams {
            let (e, dt) = (exchange.as_str(), s.data_type.as_str());
            let handles = StreamHandles {
                latency: metrics::histogram!(
                    "marketprism_exchange_latency_seconds",
                    "exchange" => e,
                    "data_type" => dt
                ),
                negative: metrics::counter!(
                    "marketprism_exchange_negative_latency_total",
                    "exchange" => e,
                    "data_type" => dt
                ),
                last_event: metrics::gauge!(
                    "marketprism_exchange_last_event_timestamp_seconds",
                    "exchange" => e,
                    "market_type" => s.market_type.as_str(),
                    "data_type" => dt,
                    "symbol" => s.symbol.as_str().to_owned()
                ),
                last_recv_ms: AtomicI64::new(i64::MIN),
            };
            by_type
                .entry(s.data_type)
                .or_default()
                .insert(s.symbol.clone(), handles);
        }
        StreamMeter {
            exchange,
            streams: by_type,
        }
    }

    /// An event leaves the venue side. `latency`: record `recv_ts_ms − ts_ms` (pushed data; polled
    /// history rows are minutes old by design and only move the last-event time). Events of streams
    /// the meter was not built with (gaps, signal rows, unconfigured symbols) are ignored.
    pub fn observe(&self, e: &Event, latency: bool) {
        let Some(handles) = self
            .streams
            .get(&e.data_type())
            .and_then(|m| m.get(&e.symbol))
        else {
            return;
        };
        EventDelivered {
            exchange: self.exchange,
            data_type: e.data_type(),
            handles,
            ts_ms: e.ts_ms,
            recv_ts_ms: e.recv_ts_ms,
            latency,
        }
        .emit();
    }
}

/// An event of a configured stream was handed to the pipeline: its exchange-to-receive latency
/// (`marketprism_exchange_latency_seconds{exchange,data_type}`, seconds, clamped at 0; a negative one,
/// i.e. a venue clock ahead of ours, is also counted in `marketprism_exchange_negative_latency_total`)
/// and the stream's last receive time (`marketprism_exchange_last_event_timestamp_seconds`, Unix
/// seconds: `time() - gauge` is the age of its last event).
struct EventDelivered<'a> {
    exchange: Exchange,
    data_type: DataType,
    handles: &'a StreamHandles,
    /// Exchange time of the fact, ms.
    ts_ms: i64,
    /// Our receive time, ms.
    recv_ts_ms: i64,
    latency: bool,
}

impl InternalEvent for EventDelivered<'_> {
    fn emit(self) {
        let h = self.handles;
        if self.latency {
            let ms = self.recv_ts_ms - self.ts_ms;
            if ms < 0 {
                tracing::trace!(exchange = %self.exchange, data_type = %self.data_type, latency_ms = ms, "venue time ahead of the receive time");
                h.negative.increment(1);
            }
            h.latency.record(ms.max(0) as f64 / 1_000.0);
        }
        let before = h.last_recv_ms.fetch_max(self.recv_ts_ms, Ordering::Relaxed);
        if self.recv_ts_ms > before {
            h.last_event.set(self.recv_ts_ms as f64 / 1_000.0);
        }
    }
}

/// One clock probe of a venue answered: `offset_s` = server time − the midpoint of send and receive
/// (seconds; positive: the venue's clock is ahead of ours), `rtt_s` the request's round trip (seconds).
pub(crate) struct ClockSampled {
    pub exchange: Exchange,
    pub offset_s: f64,
    pub rtt_s: f64,
}

impl InternalEvent for ClockSampled {
    fn emit(self) {
        tracing::debug!(exchange = %self.exchange, offset_s = self.offset_s, rtt_s = self.rtt_s, "venue clock sampled");
        let e = self.exchange.as_str();
        metrics::gauge!("marketprism_exchange_clock_offset_seconds", "exchange" => e)
            .set(self.offset_s);
        metrics::gauge!("marketprism_exchange_clock_rtt_seconds", "exchange" => e).set(self.rtt_s);
    }
}

/// A clock probe failed (`reason`: `io`, `status`, `parse`): counted and logged; the next probe is
/// one interval later and collection is never affected.
pub(crate) struct ClockProbeFailed<'a> {
    pub exchange: Exchange,
    pub reason: &'static str,
    pub detail: &'a str,
}

impl InternalEvent for ClockProbeFailed<'_> {
    fn emit(self) {
        tracing::warn!(
            exchange = %self.exchange,
            reason = self.reason,
            detail = truncate(self.detail, 200),
            "venue clock probe failed"
        );
        metrics::counter!(
            "marketprism_exchange_clock_probe_failures_total",
            "exchange" => self.exchange.as_str(),
            "reason" => self.reason
        )
        .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::{Decimal, MarketType, Payload, QuantityUnit, Side, Trade};
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    fn trade(symbol: &str, ts_ms: i64, recv_ts_ms: i64) -> Event {
        Event {
            exchange: Exchange::BinanceSpot,
            market_type: MarketType::Spot,
            symbol: Symbol::new(symbol).unwrap(),
            ts_ms,
            recv_ts_ms,
            payload: Payload::Trade(Trade {
                trade_id: ts_ms.to_string(),
                price: Decimal::ONE,
                quantity: Decimal::ONE,
                raw_quantity: Decimal::ONE,
                quantity_unit: QuantityUnit::Base,
                side: Side::Buy,
            }),
        }
    }

    /// The rendered value of the one series of `name` whose line contains every needle.
    fn value(text: &str, name: &str, needles: &[&str]) -> Option<f64> {
        text.lines()
            .filter(|l| l.starts_with(name) && needles.iter().all(|n| l.contains(n)))
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn latency_is_clamped_counted_and_bucketed_and_only_configured_streams_are_labelled() {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("marketprism_exchange_latency_seconds".into()),
                LATENCY_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let stream = Stream {
                data_type: DataType::Trades,
                symbol: Symbol::new("BTC-USDT").unwrap(),
                market_type: MarketType::Spot,
                max_silence: None,
            };
            let meter = StreamMeter::new(Exchange::BinanceSpot, &[stream]);
            let t = 1_700_000_000_000;
            meter.observe(&trade("BTC-USDT", t, t + 40), true); // 40 ms
            meter.observe(&trade("BTC-USDT", t + 900, t + 500), true); // venue 400 ms ahead: 0, counted
            meter.observe(&trade("BTC-USDT", t - 5_000, t + 100), true); // late, 5.1 s: last time stays
            meter.observe(&trade("BTC-USDT", t, t + 90_000), false); // polled history: no latency
            meter.observe(&trade("ETH-USDT", t, t + 1), true); // not configured: ignored
        });
        let text = handle.render();
        let lat = "marketprism_exchange_latency_seconds";
        let labels = ["exchange=\"binance_spot\"", "data_type=\"trades\""];
        assert_eq!(
            value(&text, &format!("{lat}_count"), &labels),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            value(&text, &format!("{lat}_bucket"), &["le=\"0.001\""]),
            Some(1.0),
            "the clamped one is in the first bucket: {text}"
        );
        assert_eq!(
            value(&text, &format!("{lat}_bucket"), &["le=\"0.05\""]),
            Some(2.0)
        );
        assert_eq!(
            value(&text, &format!("{lat}_bucket"), &["le=\"10\""]),
            Some(3.0)
        );
        assert!((value(&text, &format!("{lat}_sum"), &labels).unwrap() - 5.14).abs() < 1e-9);
        assert_eq!(
            value(
                &text,
                "marketprism_exchange_negative_latency_total",
                &labels
            ),
            Some(1.0)
        );
        let last = "marketprism_exchange_last_event_timestamp_seconds";
        assert_eq!(
            value(
                &text,
                last,
                &["symbol=\"BTC-USDT\"", "market_type=\"spot\""]
            ),
            Some(1_700_000_090.0),
            "{text}"
        );
        assert!(
            !text.contains("ETH-USDT"),
            "no series of an unconfigured stream: {text}"
        );
    }
}
