//! MEXC connection plans. Everything is on the WebSocket; nothing is polled.
//!
//! Spot (`{ws}/ws`): one `SUBSCRIPTION` frame per channel, each acked by a reply whose `msg` is the
//! channel; at most 30 subscriptions per connection (the venue's limit). Channels:
//! `spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT` (books), `spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT`
//! (trades). Books sync from REST `/api/v3/depth` ([`SyncRule::MexcSpot`]).
//!
//! Contracts (`{ws}/edge`): `sub.depth` (with `"compress":false`: unmerged increments, each version
//! exactly one more than the last), `sub.deal`, `sub.funding.rate`, `sub.ticker` (open interest) per
//! symbol. The venue's ack `rs.sub.<method>` names no symbol, so a plan expects one ack per method.
//! Books sync from REST `/api/v1/contract/depth/{symbol}` ([`SyncRule::MexcFutures`]).
//!
//! Keep-alive: the client pings (`{"method":"PING"}` spot, `{"method":"ping"}` contracts) every
//! [`PING_EVERY`], whatever else arrives: the contract server disconnects after one minute without a
//! ping (docs: "It is recommended to send a ping for 10-20 seconds"), the spot server after one minute
//! without data.

use crate::book::SyncRule;
use crate::keepalive::KeepAlivePolicy;
use crate::plan::{
    BookPlan, Request, Stream, Venue, WsPlan, base_urls, listed_instruments, plan_defaults,
};
use marketprism_config::ExchangeConfig;
use marketprism_model::instruments::Instruments;
use marketprism_model::{DataType, Exchange};
use std::time::Duration;

/// Subscriptions per connection (MEXC spot: "One ws connection supports a maximum of 30 subscriptions").
const SUBSCRIPTIONS_PER_CONNECTION: usize = 30;
/// Client ping interval (docs: 10-20 s on contracts; spot disconnects after 1 min without data).
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A ping unanswered (nothing at all received) this long after it was sent: the connection is dead.
pub const PONG_DEADLINE: Duration = Duration::from_secs(10);

/// The spot channel of a data type for `venue_symbol`; `None` for a type spot does not offer.
pub fn spot_channel(data_type: DataType, venue_symbol: &str) -> Option<String> {
    let name = match data_type {
        DataType::Orderbooks => "depth",
        DataType::Trades => "deals",
        _ => return None,
    };
    Some(format!(
        "spot@public.aggre.{name}.v3.api.pb@100ms@{venue_symbol}"
    ))
}

/// The contract subscribe method of a data type; `None` for a type not offered.
pub fn contract_method(data_type: DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Orderbooks => "sub.depth",
        DataType::Trades => "sub.deal",
        DataType::FundingRates => "sub.funding.rate",
        DataType::OpenInterests => "sub.ticker",
        _ => return None,
    })
}

pub fn ws_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<WsPlan> {
    let exchange = config.exchange;
    let spot = exchange == Exchange::MexcSpot;
    let listed = listed_instruments(config, instruments);
    let (ws, rest) = base_urls(config);
    let (subscribe_timeout, rotate_after) = plan_defaults(config);
    let stale = Duration::from_secs(config.stale_after_s);
    // (request frame, ack id, stream)
    let mut subs: Vec<(String, String, Stream)> = Vec::new();
    for &data_type in &config.data_types {
        for i in &listed {
            let venue = &i.venue_symbol;
            let (frame, ack) = if spot {
                let Some(ch) = spot_channel(data_type, venue) else {
                    continue;
                };
                (
                    format!(r#"{{"method":"SUBSCRIPTION","params":["{ch}"]}}"#),
                    ch,
                )
            } else {
                let Some(method) = contract_method(data_type) else {
                    continue;
                };
                let extra = if data_type == DataType::Orderbooks {
                    r#","compress":false"#
                } else {
                    ""
                };
                (
                    format!(r#"{{"method":"{method}","param":{{"symbol":"{venue}"{extra}}}}}"#),
                    format!("rs.{method}"),
                )
            };
            // The ticker is pushed every second; books whenever the market moves (a quiet book is
            // verified by a snapshot, see `connection::streams`); trades and funding may rest.
            let max_silence = matches!(data_type, DataType::Orderbooks | DataType::OpenInterests)
                .then_some(stale);
            let stream = Stream {
                data_type,
                symbol: i.symbol.clone(),
                market_type: i.market_type,
                max_silence,
            };
            subs.push((frame, ack, stream));
        }
    }
    let (path, venue_name) = if spot {
        ("/ws", "ws")
    } else {
        ("/edge", "edge")
    };
    let rule = if spot {
        SyncRule::MexcSpot
    } else {
        SyncRule::MexcFutures
    };
    subs.chunks(SUBSCRIPTIONS_PER_CONNECTION)
        .enumerate()
        .map(|(n, chunk)| {
            let streams: Vec<Stream> = chunk.iter().map(|(_, _, s)| s.clone()).collect();
            let book_symbols: Vec<_> = streams
                .iter()
                .filter(|s| s.data_type == DataType::Orderbooks)
                .map(|s| s.symbol.clone())
                .collect();
            WsPlan {
                venue: Venue::Mexc(exchange),
                name: format!("{exchange}/{venue_name}/{n}"),
                url: format!("{ws}{path}"),
                rest_url: rest.clone(),
                requests: chunk
                    .iter()
                    .map(|(frame, ack, stream)| Request {
                        frame: frame.clone(),
                        acks: vec![ack.clone()],
                        streams: vec![stream.clone()],
                    })
                    .collect(),
                request_spacing: Duration::from_millis(20),
                keepalive: KeepAlivePolicy::PeriodicPing {
                    every: PING_EVERY,
                    deadline: PONG_DEADLINE,
                },
                book: BookPlan::of(rule, book_symbols, config),
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
    use marketprism_config::Config;

    fn plans(yaml: &str) -> Vec<WsPlan> {
        let c = Config::from_yaml(yaml).unwrap().exchanges.remove(0);
        ws_plans(&c, &crate::test_support::simulator_instruments(c.exchange))
    }

    #[test]
    fn spot_subscribes_one_channel_per_frame_acked_by_its_name() {
        let p = plans(
            "exchanges:\n  - exchange: mexc_spot\n    symbols: [BTC-USDT, NOPE-USDT]\n    data_types: [orderbooks, trades, funding_rates]\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].url, "wss://wbs-api.mexc.com/ws");
        let acks: Vec<_> = p[0].requests.iter().map(|r| r.acks[0].as_str()).collect();
        assert_eq!(
            acks,
            [
                "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
                "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
            ],
            "no funding on spot; NOPE-USDT is not listed"
        );
        assert_eq!(
            p[0].requests[0].frame,
            r#"{"method":"SUBSCRIPTION","params":["spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"]}"#
        );
        assert_eq!(p[0].book.as_ref().unwrap().rule, SyncRule::MexcSpot);
        let btc = marketprism_model::Symbol::new("BTC-USDT").unwrap();
        assert_eq!(
            p[0].snapshot_request("https://api.mexc.com", &btc, 9000),
            Some((
                "https://api.mexc.com/api/v3/depth?symbol=BTCUSDT&limit=5000".into(),
                1
            ))
        );
        assert_eq!(
            p[0].keepalive,
            KeepAlivePolicy::PeriodicPing {
                every: PING_EVERY,
                deadline: PONG_DEADLINE
            }
        );
        assert!(
            PING_EVERY < Duration::from_secs(60),
            "within the venue's one minute"
        );
    }

    #[test]
    fn binary_frames_are_mexc_spot_data_and_malformed_elsewhere() {
        let table = crate::test_support::simulator_instruments(Exchange::OkxSpot).load();
        for venue in [
            Venue::Okx(Exchange::OkxSpot),
            Venue::Binance(Exchange::BinanceSpot),
            Venue::Deribit,
            Venue::Mexc(Exchange::MexcDerivatives),
        ] {
            let e = venue.parse_binary(&table, &[0x0a, 0x00], 0).unwrap_err();
            assert_eq!(
                e.reason,
                crate::ParseErrorReason::InvalidBinary,
                "{venue:?}"
            );
        }
        // An empty push decodes (every field is optional) but carries no body.
        let e = Venue::Mexc(Exchange::MexcSpot)
            .parse_binary(&table, &[0x0a, 0x00], 0)
            .unwrap_err();
        assert_eq!(e.reason, crate::ParseErrorReason::UnknownMessage);
        assert_eq!(
            Venue::Mexc(Exchange::MexcSpot).ping_frame(),
            r#"{"method":"PING"}"#
        );
        assert_eq!(
            Venue::Mexc(Exchange::MexcDerivatives).ping_frame(),
            r#"{"method":"ping"}"#
        );
        assert_eq!(Venue::Okx(Exchange::OkxSpot).ping_frame(), "ping");
    }

    #[test]
    fn contracts_subscribe_per_method_and_split_at_thirty() {
        let p = plans(
            "exchanges:\n  - exchange: mexc_derivatives\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: [orderbooks, trades, funding_rates, open_interests, liquidations]\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].url, "wss://contract.mexc.com/edge");
        assert_eq!(
            p[0].requests[0].frame,
            r#"{"method":"sub.depth","param":{"symbol":"BTC_USDT","compress":false}}"#
        );
        let acks: std::collections::BTreeSet<_> =
            p[0].requests.iter().map(|r| r.acks[0].as_str()).collect();
        assert_eq!(
            acks.into_iter().collect::<Vec<_>>(),
            [
                "rs.sub.deal",
                "rs.sub.depth",
                "rs.sub.funding.rate",
                "rs.sub.ticker"
            ]
        );
        assert_eq!(
            p[0].streams.len(),
            8,
            "no liquidations: MEXC publishes none"
        );
        assert_eq!(p[0].book.as_ref().unwrap().rule, SyncRule::MexcFutures);
        let btc = marketprism_model::Symbol::new("BTC-USDT").unwrap();
        assert_eq!(
            p[0].snapshot_request("https://contract.mexc.com", &btc, 5000),
            Some((
                "https://contract.mexc.com/api/v1/contract/depth/BTC_USDT?limit=1000".into(),
                1
            ))
        );
        let many: Vec<String> = (0..20).map(|i| format!("C{i}-USDT")).collect();
        let c = Config::from_yaml(&format!(
            "exchanges:\n  - exchange: mexc_spot\n    symbols: [{}]\n    data_types: [orderbooks, trades]\n",
            many.join(",")
        ))
        .unwrap()
        .exchanges
        .remove(0);
        let table =
            marketprism_model::instruments::InstrumentTable::new(c.symbols.iter().map(|s| {
                marketprism_model::instruments::Instrument {
                    venue_symbol: s.as_str().replace('-', ""),
                    symbol: s.clone(),
                    market_type: marketprism_model::MarketType::Spot,
                    size: marketprism_model::instruments::SizeRule::Base,
                    tick_size: None,
                    lot_size: None,
                    venue_type: "SPOT".into(),
                }
            }));
        let split = ws_plans(&c, &Instruments::new(c.exchange, table));
        assert_eq!(
            split.iter().map(|p| p.requests.len()).collect::<Vec<_>>(),
            [30, 10]
        );
    }
}
