//! Binance connection and poll plans. USD-M uses the 2026 routed URLs: depth on `/public`,
//! aggTrade/markPrice/forceOrder on `/market` (a `/market` stream on `/public` is acked but silent).

use super::parse::RatioKind;
use crate::book::SyncRule;
use crate::keepalive::KeepAlivePolicy;
use crate::plan::{
    BookPlan, PollKind, PollPlan, Request, Stream, Venue, WsPlan, base_urls, listed_instruments,
    plan_defaults, poll_plans_from,
};
use marketprism_config::ExchangeConfig;
use marketprism_model::instruments::Instruments;
use marketprism_model::{DataType, Exchange};
use std::time::Duration;

/// Streams per SUBSCRIBE request (a request is one inbound control message).
const STREAMS_PER_REQUEST: usize = 50;

/// `(path, stream suffix)` for a data type on this product line; `None` when not on the WebSocket.
fn route(exchange: Exchange, data_type: DataType) -> Option<(&'static str, &'static str)> {
    match (exchange, data_type) {
        (Exchange::BinanceSpot, DataType::Trades) => Some(("/ws", "@trade")),
        (Exchange::BinanceSpot, DataType::Orderbooks) => Some(("/ws", "@depth@100ms")),
        (Exchange::BinanceDerivatives, DataType::Orderbooks) => {
            Some(("/public/ws", "@depth@100ms"))
        }
        (Exchange::BinanceDerivatives, DataType::Trades) => Some(("/market/ws", "@aggTrade")),
        (Exchange::BinanceDerivatives, DataType::FundingRates) => {
            Some(("/market/ws", "@markPrice"))
        }
        (Exchange::BinanceDerivatives, DataType::Liquidations) => {
            Some(("/market/ws", "@forceOrder"))
        }
        _ => None,
    }
}

pub fn ws_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<WsPlan> {
    let exchange = config.exchange;
    let (ws, rest) = base_urls(config);
    let (subscribe_timeout, rotate_after) = plan_defaults(config);
    let listed = listed_instruments(config, instruments);
    // Stream names are the listed symbol in lower case (`bnbusd@trade`).
    let stream_of = |symbol: &marketprism_model::Symbol| {
        listed
            .iter()
            .find(|i| &i.symbol == symbol)
            .map(|i| i.venue_symbol.to_ascii_lowercase())
    };
    let stale = Duration::from_secs(config.stale_after_s);
    let silence = if exchange == Exchange::BinanceSpot {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(600)
    };
    let mut plans: Vec<WsPlan> = Vec::new();
    for &data_type in &config.data_types {
        let Some((path, _)) = route(exchange, data_type) else {
            continue;
        };
        let url = format!("{ws}{path}");
        let idx = match plans.iter().position(|p| p.url == url) {
            Some(i) => i,
            None => {
                plans.push(WsPlan {
                    venue: Venue::Binance(exchange),
                    name: format!("{exchange}{}", path.trim_end_matches("/ws")),
                    url,
                    rest_url: rest.clone(),
                    requests: Vec::new(),
                    request_spacing: Duration::from_millis(250),
                    keepalive: KeepAlivePolicy::ServerPing { silence },
                    streams: Vec::new(),
                    book: None,
                    subscribe_timeout,
                    rotate_after,
                    instruments: instruments.clone(),
                });
                plans.len() - 1
            }
        };
        let plan = &mut plans[idx];
        for inst in &listed {
            let max_silence =
                matches!(data_type, DataType::Orderbooks | DataType::FundingRates).then_some(stale);
            plan.streams.push(Stream {
                data_type,
                symbol: inst.symbol.clone(),
                market_type: inst.market_type,
                max_silence,
            });
        }
        if data_type == DataType::Orderbooks {
            let rule = if exchange == Exchange::BinanceSpot {
                SyncRule::BinanceSpot
            } else {
                SyncRule::BinanceFutures
            };
            plan.book = Some(BookPlan {
                rule,
                symbols: listed.iter().map(|i| i.symbol.clone()).collect(),
                config: config.orderbook.clone(),
            });
        }
    }
    for plan in &mut plans {
        let names: Vec<String> = plan
            .streams
            .iter()
            .filter_map(|s| {
                let (_, suffix) = route(exchange, s.data_type)?;
                Some(format!("{}{suffix}", stream_of(&s.symbol)?))
            })
            .collect();
        for (i, chunk) in names.chunks(STREAMS_PER_REQUEST).enumerate() {
            let id = i + 1;
            let params = chunk
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(",");
            plan.requests.push(Request {
                frame: format!(r#"{{"method":"SUBSCRIBE","params":[{params}],"id":{id}}}"#),
                acks: vec![id.to_string()],
                streams: Vec::new(),
            });
        }
    }
    plans.retain(|p| !p.streams.is_empty());
    plans
}

pub fn poll_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<PollPlan> {
    poll_plans_from(config, instruments, |data_type, inst, rest, period| {
        let s = &inst.venue_symbol;
        let futures_data = |endpoint: &str| {
            format!("{rest}/futures/data/{endpoint}?symbol={s}&period={period}&limit=30")
        };
        Some(match data_type {
            DataType::OpenInterests => (
                PollKind::BinanceOpenInterest,
                format!("{rest}/fapi/v1/openInterest?symbol={s}"),
                1,
            ),
            DataType::LsrTopPositions => (
                PollKind::BinanceRatio(RatioKind::TopPositions),
                futures_data("topLongShortPositionRatio"),
                1,
            ),
            DataType::LsrAllAccounts => (
                PollKind::BinanceRatio(RatioKind::AllAccounts),
                futures_data("globalLongShortAccountRatio"),
                1,
            ),
            _ => return None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_config::Config;

    fn listed(exchange: Exchange) -> Instruments {
        crate::test_support::simulator_instruments(exchange)
    }

    fn config(yaml_tail: &str) -> ExchangeConfig {
        let yaml = format!(
            "exchanges:\n  - exchange: binance_derivatives\n    symbols: [BTC-USDT, ETH-USDT]\n{yaml_tail}"
        );
        Config::from_yaml(&yaml).unwrap().exchanges.remove(0)
    }

    #[test]
    fn usdm_routes_depth_to_public_and_the_rest_to_market() {
        let c = config(
            "    data_types: [orderbooks, trades, funding_rates, liquidations, open_interests]\n",
        );
        let plans = ws_plans(&c, &listed(c.exchange));
        let urls: Vec<_> = plans.iter().map(|p| p.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "wss://fstream.binance.com/public/ws",
                "wss://fstream.binance.com/market/ws"
            ]
        );
        assert_eq!(
            plans[0].requests[0].frame,
            r#"{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","ethusdt@depth@100ms"],"id":1}"#
        );
        assert!(
            plans[1].requests[0].frame.contains("btcusdt@aggTrade")
                && plans[1].requests[0].frame.contains("ethusdt@forceOrder")
        );
        assert!(plans[1].requests[0].frame.contains("btcusdt@markPrice"));
        assert_eq!(
            plans[0].book.as_ref().unwrap().rule,
            SyncRule::BinanceFutures
        );
        assert!(plans[1].book.is_none());
        let polls = poll_plans(&c, &listed(c.exchange));
        assert_eq!(polls.len(), 2);
        assert_eq!(
            polls[0].url,
            "https://fapi.binance.com/fapi/v1/openInterest?symbol=BTCUSDT"
        );
    }

    #[test]
    fn endpoint_override_keeps_the_venue_paths() {
        let c = config(
            "    data_types: [orderbooks, lsr_top_positions]\n    endpoints: {ws_url: \"ws://127.0.0.1:9000/\", rest_url: \"http://127.0.0.1:9001\"}\n",
        );
        let plans = ws_plans(&c, &listed(c.exchange));
        assert_eq!(plans[0].url, "ws://127.0.0.1:9000/public/ws");
        let polls = poll_plans(&c, &listed(c.exchange));
        assert_eq!(
            polls[0].url,
            "http://127.0.0.1:9001/futures/data/topLongShortPositionRatio?symbol=BTCUSDT&period=5m&limit=30"
        );
    }

    #[test]
    fn spot_uses_raw_trades_and_one_connection() {
        let yaml = "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades, orderbooks, funding_rates]\n";
        let c = Config::from_yaml(yaml).unwrap().exchanges.remove(0);
        let plans = ws_plans(&c, &listed(c.exchange));
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].url, "wss://stream.binance.com:9443/ws");
        assert!(plans[0].requests[0].frame.contains("btcusdt@trade\""));
        assert_eq!(crate::plan::unsupported(&c), vec![DataType::FundingRates]);
    }
}
