//! OKX connection and poll plans: books/trades/funding-rate/liquidation-orders on `/ws/v5/public`
//! (fewer than 30 channels per connection, as OKX advises); open interest and rubik ratios over REST.

use super::parse::RatioKind;
use super::symbols::to_venue;
use crate::book::SyncRule;
use crate::config::{ExchangeConfig, OkxSnapshotSource};
use crate::exchanges::keepalive::KeepAlivePolicy;
use crate::exchanges::plan::{
    BookPlan, PollKind, PollPlan, Request, Stream, Venue, WsPlan, base_urls, plan_defaults,
    poll_plans_from,
};
use crate::model::{DataType, Exchange, MarketType};
use std::time::Duration;

const CHANNELS_PER_CONNECTION: usize = 25;
/// OKX sends a keep-alive book message after ~60 s without change.
const BOOK_SILENCE: Duration = Duration::from_secs(75);

pub fn ws_plans(config: &ExchangeConfig) -> Vec<WsPlan> {
    let exchange = config.exchange;
    let derivatives = exchange == Exchange::OkxDerivatives;
    let market_type = if derivatives {
        MarketType::Perpetual
    } else {
        MarketType::Spot
    };
    let (ws, rest) = base_urls(config);
    let (subscribe_timeout, rotate_after) = plan_defaults(config);
    // (arg json, ack id, stream)
    let mut args: Vec<(String, String, Vec<Stream>)> = Vec::new();
    for &data_type in &config.data_types {
        let channel = match data_type {
            DataType::Orderbooks => "books",
            DataType::Trades => "trades",
            DataType::FundingRates if derivatives => "funding-rate",
            DataType::Liquidations if derivatives => {
                let streams = config
                    .symbols
                    .iter()
                    .map(|s| Stream {
                        data_type,
                        symbol: s.clone(),
                        market_type,
                        max_silence: None,
                    })
                    .collect();
                args.push((
                    r#"{"channel":"liquidation-orders","instType":"SWAP"}"#.into(),
                    "liquidation-orders:SWAP".into(),
                    streams,
                ));
                continue;
            }
            _ => continue,
        };
        for symbol in &config.symbols {
            let inst = to_venue(exchange, symbol);
            let max_silence = (data_type == DataType::Orderbooks)
                .then_some(BOOK_SILENCE.max(Duration::from_secs(config.stale_after_s)));
            let stream = Stream {
                data_type,
                symbol: symbol.clone(),
                market_type,
                max_silence,
            };
            args.push((
                format!(r#"{{"channel":"{channel}","instId":"{inst}"}}"#),
                format!("{channel}:{inst}"),
                vec![stream],
            ));
        }
    }
    let rule = match config.orderbook.okx_snapshot {
        OkxSnapshotSource::Rest => SyncRule::OkxRestSnapshot,
        OkxSnapshotSource::Ws => SyncRule::OkxWsSnapshot,
    };
    args.chunks(CHANNELS_PER_CONNECTION)
        .enumerate()
        .map(|(i, chunk)| {
            let streams: Vec<Stream> = chunk
                .iter()
                .flat_map(|(_, _, s)| s.iter().cloned())
                .collect();
            let book_symbols: Vec<_> = streams
                .iter()
                .filter(|s| s.data_type == DataType::Orderbooks)
                .map(|s| s.symbol.clone())
                .collect();
            let arg_list = chunk
                .iter()
                .map(|(a, _, _)| a.as_str())
                .collect::<Vec<_>>()
                .join(",");
            WsPlan {
                venue: Venue::Okx(exchange),
                name: format!("{exchange}/public/{i}"),
                url: format!("{ws}/ws/v5/public"),
                rest_url: rest.clone(),
                requests: vec![Request {
                    frame: format!(r#"{{"id":"{i}","op":"subscribe","args":[{arg_list}]}}"#),
                    acks: chunk.iter().map(|(_, ack, _)| ack.clone()).collect(),
                }],
                request_spacing: Duration::ZERO,
                keepalive: KeepAlivePolicy::ClientTextPing {
                    idle: Duration::from_secs(20),
                    deadline: Duration::from_secs(8),
                },
                book: (!book_symbols.is_empty()).then(|| BookPlan {
                    rule,
                    symbols: book_symbols,
                    config: config.orderbook.clone(),
                }),
                streams,
                subscribe_timeout,
                rotate_after,
            }
        })
        .collect()
}

pub fn poll_plans(config: &ExchangeConfig) -> Vec<PollPlan> {
    poll_plans_from(config, |data_type, symbol, rest, period| {
        let inst = to_venue(config.exchange, symbol);
        let rubik = |endpoint: &str| {
            format!("{rest}/api/v5/rubik/stat/contracts/{endpoint}?instId={inst}&period={period}")
        };
        Some(match data_type {
            DataType::OpenInterests => (
                PollKind::OkxOpenInterest,
                format!("{rest}/api/v5/public/open-interest?instType=SWAP&instId={inst}"),
                1,
            ),
            DataType::LsrTopPositions => (
                PollKind::OkxRatio(RatioKind::TopPositions, symbol.clone()),
                rubik("long-short-position-ratio-contract-top-trader"),
                8,
            ),
            DataType::LsrAllAccounts => (
                PollKind::OkxRatio(RatioKind::AllAccounts, symbol.clone()),
                rubik("long-short-account-ratio-contract"),
                8,
            ),
            _ => return None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn swap_channels_acks_and_rest_polls() {
        let yaml = "exchanges:\n  - exchange: okx_derivatives\n    symbols: [BTC-USDT]\n    data_types: [orderbooks, trades, funding_rates, liquidations, lsr_top_positions, lsr_all_accounts, open_interests]\n";
        let c = Config::from_yaml(yaml).unwrap().exchanges.remove(0);
        let plans = ws_plans(&c);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].url, "wss://ws.okx.com:8443/ws/v5/public");
        assert_eq!(
            plans[0].requests[0].acks,
            [
                "books:BTC-USDT-SWAP",
                "trades:BTC-USDT-SWAP",
                "funding-rate:BTC-USDT-SWAP",
                "liquidation-orders:SWAP"
            ]
        );
        assert!(plans[0].requests[0].frame.starts_with(
            r#"{"id":"0","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT-SWAP"}"#
        ));
        assert_eq!(
            plans[0].book.as_ref().unwrap().rule,
            SyncRule::OkxRestSnapshot
        );
        let polls = poll_plans(&c);
        let urls: Vec<_> = polls.iter().map(|p| p.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://www.okx.com/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader?instId=BTC-USDT-SWAP&period=5m",
                "https://www.okx.com/api/v5/rubik/stat/contracts/long-short-account-ratio-contract?instId=BTC-USDT-SWAP&period=5m",
                "https://www.okx.com/api/v5/public/open-interest?instType=SWAP&instId=BTC-USDT-SWAP",
            ]
        );
    }

    #[test]
    fn many_channels_split_over_connections() {
        let symbols: Vec<String> = (0..30).map(|i| format!("C{i}-USDT")).collect();
        let yaml = format!(
            "exchanges:\n  - exchange: okx_spot\n    symbols: [{}]\n    data_types: [trades]\n",
            symbols.join(",")
        );
        let c = Config::from_yaml(&yaml).unwrap().exchanges.remove(0);
        let plans = ws_plans(&c);
        assert_eq!(
            plans.iter().map(|p| p.streams.len()).collect::<Vec<_>>(),
            [25, 5]
        );
    }
}
