//! OKX connection and poll plans: books/trades/funding-rate/liquidation-orders on `/ws/v5/public`
//! (fewer than 30 channels per connection, as OKX advises); open interest and rubik ratios over REST.
//! `instId`s, market types and instTypes come from the venue's instrument list: `liquidation-orders` is
//! subscribed once per instType the listed symbols have (SWAP, FUTURES), open interest polled with the
//! instrument's own instType.

use super::parse::RatioKind;
use crate::book::SyncRule;
use crate::keepalive::KeepAlivePolicy;
use crate::plan::{
    BookPlan, PollKind, PollPlan, Request, Stream, Venue, WsPlan, base_urls, listed_instruments,
    plan_defaults, poll_plans_from,
};
use marketprism_config::{ExchangeConfig, OkxSnapshotSource};
use marketprism_model::instruments::Instruments;
use marketprism_model::{DataType, Exchange, MarketType};
use std::time::Duration;

const CHANNELS_PER_CONNECTION: usize = 25;
/// OKX sends a keep-alive book message after ~60 s without change.
const BOOK_SILENCE: Duration = Duration::from_secs(75);

pub fn ws_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<WsPlan> {
    let exchange = config.exchange;
    let derivatives = exchange == Exchange::OkxDerivatives;
    let listed = listed_instruments(config, instruments);
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
                // One subscription per instType (the channel takes no instId), in listing order.
                let mut types: Vec<&str> = Vec::new();
                for i in &listed {
                    if !types.contains(&i.venue_type.as_str()) {
                        types.push(&i.venue_type);
                    }
                }
                for t in types {
                    let streams = listed
                        .iter()
                        .filter(|i| i.venue_type == t)
                        .map(|i| Stream {
                            data_type,
                            symbol: i.symbol.clone(),
                            market_type: i.market_type,
                            max_silence: None,
                        })
                        .collect();
                    args.push((
                        format!(r#"{{"channel":"liquidation-orders","instType":"{t}"}}"#),
                        format!("liquidation-orders:{t}"),
                        streams,
                    ));
                }
                continue;
            }
            _ => continue,
        };
        for i in &listed {
            let inst = &i.venue_symbol;
            // Funding is a perpetual's: dated futures have none.
            if data_type == DataType::FundingRates && i.market_type != MarketType::Perpetual {
                continue;
            }
            let max_silence = (data_type == DataType::Orderbooks)
                .then_some(BOOK_SILENCE.max(Duration::from_secs(config.stale_after_s)));
            let stream = Stream {
                data_type,
                symbol: i.symbol.clone(),
                market_type: i.market_type,
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
                    streams: Vec::new(),
                }],
                request_spacing: Duration::ZERO,
                keepalive: KeepAlivePolicy::ClientTextPing {
                    idle: Duration::from_secs(20),
                    deadline: Duration::from_secs(8),
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

pub fn poll_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<PollPlan> {
    poll_plans_from(
        config,
        instruments,
        |data_type, instrument, rest, period| {
            let inst = &instrument.venue_symbol;
            let inst_type = &instrument.venue_type;
            let symbol = &instrument.symbol;
            let rubik = |endpoint: &str| {
                format!(
                    "{rest}/api/v5/rubik/stat/contracts/{endpoint}?instId={inst}&period={period}"
                )
            };
            Some(match data_type {
                DataType::OpenInterests => (
                    PollKind::OkxOpenInterest,
                    format!(
                        "{rest}/api/v5/public/open-interest?instType={inst_type}&instId={inst}"
                    ),
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
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_config::Config;

    fn listed(exchange: Exchange) -> Instruments {
        crate::test_support::simulator_instruments(exchange)
    }

    #[test]
    fn swap_channels_acks_and_rest_polls() {
        let yaml = "exchanges:\n  - exchange: okx_derivatives\n    symbols: [BTC-USDT]\n    data_types: [orderbooks, trades, funding_rates, liquidations, lsr_top_positions, lsr_all_accounts, open_interests]\n";
        let c = Config::from_yaml(yaml).unwrap().exchanges.remove(0);
        let plans = ws_plans(&c, &listed(c.exchange));
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
        let polls = poll_plans(&c, &listed(c.exchange));
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
        let table =
            marketprism_model::instruments::InstrumentTable::new(c.symbols.iter().map(|s| {
                marketprism_model::instruments::Instrument {
                    venue_symbol: s.to_string(),
                    symbol: s.clone(),
                    market_type: MarketType::Spot,
                    size: marketprism_model::instruments::SizeRule::Base,
                    tick_size: None,
                    lot_size: None,
                    venue_type: "SPOT".into(),
                }
            }));
        let plans = ws_plans(&c, &Instruments::new(c.exchange, table));
        assert_eq!(
            plans.iter().map(|p| p.streams.len()).collect::<Vec<_>>(),
            [25, 5]
        );
    }

    #[test]
    fn dated_futures_are_futures_with_their_own_liquidations_and_open_interest() {
        let yaml = "exchanges:\n  - exchange: okx_derivatives\n    symbols: [BTC-USD-220527, BTC-USD, NOPE-USD]\n    data_types: [trades, funding_rates, liquidations, open_interests]\n";
        let c = Config::from_yaml(yaml).unwrap().exchanges.remove(0);
        let plans = ws_plans(&c, &listed(c.exchange));
        assert_eq!(
            plans[0].requests[0].acks,
            [
                "trades:BTC-USD-220527",
                "trades:BTC-USD-SWAP",
                "funding-rate:BTC-USD-SWAP",
                "liquidation-orders:FUTURES",
                "liquidation-orders:SWAP"
            ],
            "no funding for a dated future; liquidations requested for both instTypes; NOPE-USD nowhere"
        );
        let fut = &plans[0].streams[0];
        assert_eq!(
            (fut.symbol.as_str(), fut.market_type),
            ("BTC-USD-220527", MarketType::Futures)
        );
        let polls = poll_plans(&c, &listed(c.exchange));
        assert_eq!(
            polls[0].url,
            "https://www.okx.com/api/v5/public/open-interest?instType=FUTURES&instId=BTC-USD-220527"
        );
        assert_eq!(polls[0].market_type, MarketType::Futures);
        assert_eq!(polls.len(), 2);
    }
}
