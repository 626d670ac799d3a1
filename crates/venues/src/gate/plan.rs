//! Gate connection plans: one subscribe request per (channel, instrument), each with its own integer
//! `id` (the venue echoes it in the ack or the error, so a refusal names exactly its streams), at most
//! [`REQUESTS_PER_CONNECTION`] per connection. Spot on `/ws/v4/`, USDT perpetuals on `/v4/ws/usdt`.
//!
//! | data type | spot channel, payload | futures channel, payload |
//! |---|---|---|
//! | orderbooks | `spot.order_book_update`, `[pair, "100ms"]` | `futures.order_book_update`, `[contract, "100ms", "100"]` |
//! | trades | `spot.trades`, `[pair]` | `futures.trades`, `[contract]` |
//! | funding rates, open interest | – | `futures.tickers`, `[contract]` (one request feeds both) |
//! | liquidations | – | `futures.public_liquidates`, `[contract]` |
//!
//! Books are rebuilt from the REST snapshot (`with_id=true`) under [`SyncRule::Gate`]. Keep-alive:
//! `spot.ping` / `futures.ping` after 10 s without inbound (the docs' demo pings every 10 s).

use crate::book::SyncRule;
use crate::keepalive::KeepAlivePolicy;
use crate::plan::{
    BookPlan, Request, Stream, Venue, WsPlan, base_urls, listed_instruments, plan_defaults,
};
use marketprism_config::ExchangeConfig;
use marketprism_model::instruments::Instruments;
use marketprism_model::{DataType, Exchange};
use std::time::Duration;

/// Subscribe requests per connection (Gate publishes no per-connection limit; kept modest).
pub(crate) const REQUESTS_PER_CONNECTION: usize = 50;
/// Idle time before an application ping, and how long its pong may take.
pub(crate) const PING_IDLE: Duration = Duration::from_secs(10);
pub(crate) const PING_DEADLINE: Duration = Duration::from_secs(10);

/// The WebSocket path of a product line.
pub(crate) fn ws_path(exchange: Exchange) -> &'static str {
    match exchange {
        Exchange::GateSpot => "/ws/v4/",
        _ => "/v4/ws/usdt",
    }
}

/// The channel prefix (`spot` or `futures`).
pub(crate) fn prefix(exchange: Exchange) -> &'static str {
    match exchange {
        Exchange::GateSpot => "spot",
        _ => "futures",
    }
}

/// `frame` (a request of ours, `{"time":<s>,…`) with its time set to `now_s`; other text unchanged.
pub fn stamp_time(frame: &str, now_s: i64) -> String {
    const KEY: &str = r#"{"time":"#;
    let Some(rest) = frame.strip_prefix(KEY) else {
        return frame.to_owned();
    };
    match rest.find(',') {
        Some(end) if rest[..end].bytes().all(|b| b.is_ascii_digit()) => {
            format!("{KEY}{now_s}{}", &rest[end..])
        }
        _ => frame.to_owned(),
    }
}

/// The application ping of a product line (`time` in seconds).
pub(crate) fn ping_frame(exchange: Exchange, now_s: i64) -> String {
    format!(
        r#"{{"time":{now_s},"channel":"{}.ping"}}"#,
        prefix(exchange)
    )
}

/// `(channel, payload tail)` of a data type, or `None` when the product line does not offer it.
pub(crate) fn channel(
    exchange: Exchange,
    data_type: DataType,
) -> Option<(&'static str, &'static str)> {
    let spot = exchange == Exchange::GateSpot;
    Some(match data_type {
        DataType::Orderbooks if spot => ("spot.order_book_update", r#","100ms""#),
        DataType::Orderbooks => ("futures.order_book_update", r#","100ms","100""#),
        DataType::Trades if spot => ("spot.trades", ""),
        DataType::Trades => ("futures.trades", ""),
        DataType::FundingRates | DataType::OpenInterests if !spot => ("futures.tickers", ""),
        DataType::Liquidations if !spot => ("futures.public_liquidates", ""),
        _ => return None,
    })
}

pub fn ws_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<WsPlan> {
    let exchange = config.exchange;
    let listed = listed_instruments(config, instruments);
    let (ws, rest) = base_urls(config);
    let (subscribe_timeout, rotate_after) = plan_defaults(config);
    let now_s = marketprism_model::now_ms() / 1_000;
    // (channel, venue symbol, payload tail, streams)
    let mut subs: Vec<(&'static str, String, &'static str, Vec<Stream>)> = Vec::new();
    for &data_type in &config.data_types {
        let Some((ch, tail)) = channel(exchange, data_type) else {
            continue;
        };
        for i in &listed {
            let stream = Stream {
                data_type,
                symbol: i.symbol.clone(),
                market_type: i.market_type,
                max_silence: (data_type == DataType::Orderbooks)
                    .then(|| Duration::from_secs(config.stale_after_s)),
            };
            // Funding and open interest share one tickers subscription.
            if let Some(s) = subs.iter_mut().find(|s| s.0 == ch && s.1 == i.venue_symbol) {
                s.3.push(stream);
                continue;
            }
            subs.push((ch, i.venue_symbol.clone(), tail, vec![stream]));
        }
    }
    subs.chunks(REQUESTS_PER_CONNECTION)
        .enumerate()
        .map(|(n, chunk)| {
            let requests = chunk
                .iter()
                .enumerate()
                .map(|(k, (ch, sym, tail, streams))| {
                    let id = k + 1;
                    Request {
                        frame: format!(
                            r#"{{"time":{now_s},"id":{id},"channel":"{ch}","event":"subscribe","payload":["{sym}"{tail}]}}"#
                        ),
                        acks: vec![id.to_string()],
                        streams: streams.clone(),
                    }
                })
                .collect();
            let streams: Vec<Stream> = chunk.iter().flat_map(|s| s.3.iter().cloned()).collect();
            let book_symbols: Vec<_> = streams
                .iter()
                .filter(|s| s.data_type == DataType::Orderbooks)
                .map(|s| s.symbol.clone())
                .collect();
            WsPlan {
                venue: Venue::Gate(exchange),
                name: format!("{exchange}/{}/{n}", prefix(exchange)),
                url: format!("{ws}{}", ws_path(exchange)),
                rest_url: rest.clone(),
                requests,
                request_spacing: Duration::ZERO,
                keepalive: KeepAlivePolicy::ClientTextPing {
                    idle: PING_IDLE,
                    deadline: PING_DEADLINE,
                },
                book: BookPlan::of(SyncRule::Gate, book_symbols, config),
                streams,
                subscribe_timeout,
                rotate_after,
                instruments: instruments.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reconnect hours after planning sends the current time, not the plan's.
    #[test]
    fn requests_are_restamped_when_sent() {
        let planned = r#"{"time":1700000000,"id":3,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT"]}"#;
        assert_eq!(
            stamp_time(planned, 1_800_000_000),
            r#"{"time":1800000000,"id":3,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT"]}"#
        );
        assert_eq!(stamp_time("ping", 1), "ping");
        let v = crate::plan::Venue::Gate(Exchange::GateSpot).stamp_request(planned);
        let t: serde_json::Value = serde_json::from_str(&v).unwrap();
        assert!((t["time"].as_i64().unwrap() - marketprism_model::now_ms() / 1_000).abs() <= 2);
    }
    use marketprism_config::Config;

    fn config(yaml: &str) -> ExchangeConfig {
        Config::from_yaml(yaml).unwrap().exchanges.remove(0)
    }

    #[test]
    fn derivatives_requests_one_per_channel_and_contract() {
        let c = config(
            "exchanges:\n  - exchange: gate_derivatives\n    symbols: [BTC-USDT, NOPE-USDT]\n    data_types: [orderbooks, trades, funding_rates, open_interests, liquidations, lsr_top_positions]\n",
        );
        let listed = crate::test_support::simulator_instruments(c.exchange);
        let plans = ws_plans(&c, &listed);
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(p.url, "wss://fx-ws.gateio.ws/v4/ws/usdt");
        let frames: Vec<&str> = p.requests.iter().map(|r| r.frame.as_str()).collect();
        assert_eq!(
            frames.len(),
            4,
            "book, trades, tickers (funding + OI), liquidations: {frames:?}"
        );
        assert!(frames[0].ends_with(r#""id":1,"channel":"futures.order_book_update","event":"subscribe","payload":["BTC_USDT","100ms","100"]}"#), "{}", frames[0]);
        assert!(frames[2].contains(r#""channel":"futures.tickers""#));
        assert_eq!(p.requests[3].acks, ["4"]);
        assert_eq!(
            p.streams.len(),
            5,
            "NOPE-USDT is not listed, LSR not offered"
        );
        assert_eq!(p.book.as_ref().unwrap().rule, SyncRule::Gate);
        let tickers = crate::connection::attribute::refused_request(p, Some("3")).unwrap();
        let types: Vec<_> = tickers.streams.iter().map(|s| s.data_type).collect();
        assert_eq!(types, [DataType::FundingRates, DataType::OpenInterests]);
        assert!(crate::connection::attribute::refused_request(p, Some("99")).is_none());
    }

    #[test]
    fn spot_offers_books_and_trades_only_and_splits_connections() {
        let c = config(
            "exchanges:\n  - exchange: gate_spot\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: [orderbooks, trades, funding_rates]\n",
        );
        let listed = crate::test_support::simulator_instruments(c.exchange);
        let plans = ws_plans(&c, &listed);
        assert_eq!(plans[0].url, "wss://api.gateio.ws/ws/v4/");
        assert_eq!(plans[0].requests.len(), 4);
        assert!(
            plans[0].requests[0]
                .frame
                .contains(r#""payload":["BTC_USDT","100ms"]"#)
        );
        assert_eq!(
            ping_frame(Exchange::GateSpot, 5),
            r#"{"time":5,"channel":"spot.ping"}"#
        );
        assert_eq!(channel(Exchange::GateSpot, DataType::Liquidations), None);
    }
}
