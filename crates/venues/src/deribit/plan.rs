//! Deribit connection plan: one JSON-RPC connection on `/ws/api/v2`; `public/set_heartbeat` first,
//! then one `public/subscribe` for DVOL, trades and books.

use super::symbols::to_index_name;
use crate::book::SyncRule;
use crate::keepalive::KeepAlivePolicy;
use crate::plan::{BookPlan, Request, Stream, Venue, WsPlan, base_urls, plan_defaults};
use marketprism_config::ExchangeConfig;
use marketprism_model::instruments::Instruments;
use marketprism_model::{DataType, MarketType, Symbol};
use std::time::Duration;

pub(crate) const HEARTBEAT_INTERVAL_S: u64 = 30;

/// The book channel of a listed instrument (`BTC-PERPETUAL`).
pub(crate) fn book_channel(venue_symbol: &str) -> String {
    format!("book.{venue_symbol}.100ms")
}

/// The channel of a stream: DVOL by index name (`deribit_volatility_index.btc_usd`), trades and
/// books by the listed instrument (`venue_symbol`, e.g. `BTC-PERPETUAL`); `None` for other types.
pub fn channel(data_type: DataType, symbol: &Symbol, venue_symbol: Option<&str>) -> Option<String> {
    Some(match data_type {
        DataType::VolatilityIndices => {
            format!("deribit_volatility_index.{}", to_index_name(symbol))
        }
        DataType::Trades => format!("trades.{}.100ms", venue_symbol?),
        DataType::Orderbooks => book_channel(venue_symbol?),
        _ => return None,
    })
}

/// DVOL channels are per index (`btc_usd`), not per instrument; trades and books need a listed instrument.
pub fn ws_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<WsPlan> {
    let table = instruments.load();
    let (ws, rest) = base_urls(config);
    let (subscribe_timeout, rotate_after) = plan_defaults(config);
    let stale = Duration::from_secs(config.stale_after_s);
    let mut channels = Vec::new();
    let mut streams = Vec::new();
    for &data_type in &config.data_types {
        for symbol in &config.symbols {
            let inst = table.by_symbol(symbol);
            let (market_type, max_silence) = match (data_type, inst) {
                (DataType::VolatilityIndices, _) => (MarketType::Options, Some(stale)),
                (DataType::Trades, Some(i)) => (i.market_type, None),
                (DataType::Orderbooks, Some(i)) => (i.market_type, Some(stale)),
                _ => continue,
            };
            let venue_symbol = inst.map(|i| i.venue_symbol.as_str());
            let Some(channel) = channel(data_type, symbol, venue_symbol) else {
                continue;
            };
            channels.push(format!("\"{channel}\""));
            streams.push(Stream {
                data_type,
                symbol: symbol.clone(),
                market_type,
                max_silence,
            });
        }
    }
    if channels.is_empty() {
        return Vec::new();
    }
    let book_symbols: Vec<Symbol> = streams
        .iter()
        .filter(|s| s.data_type == DataType::Orderbooks)
        .map(|s| s.symbol.clone())
        .collect();
    vec![WsPlan {
        venue: Venue::Deribit,
        name: "deribit_derivatives/api".into(),
        url: format!("{ws}/ws/api/v2"),
        rest_url: rest,
        requests: vec![
            Request {
                frame: format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{{"interval":{HEARTBEAT_INTERVAL_S}}}}}"#
                ),
                acks: vec!["1".into()],
                streams: Vec::new(),
            },
            Request {
                frame: format!(
                    r#"{{"jsonrpc":"2.0","id":2,"method":"public/subscribe","params":{{"channels":[{}]}}}}"#,
                    channels.join(",")
                ),
                acks: vec!["2".into()],
                streams: Vec::new(),
            },
        ],
        request_spacing: Duration::ZERO,
        keepalive: KeepAlivePolicy::Heartbeat {
            interval: Duration::from_secs(HEARTBEAT_INTERVAL_S),
        },
        book: BookPlan::of(SyncRule::Deribit, book_symbols, config),
        streams,
        subscribe_timeout,
        rotate_after,
        instruments: instruments.clone(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_config::Config;

    #[test]
    fn heartbeat_then_subscribe() {
        let yaml = "exchanges:\n  - exchange: deribit_derivatives\n    symbols: [BTC-USD]\n    data_types: [volatility_indices, orderbooks]\n";
        let c = Config::from_yaml(yaml).unwrap().exchanges.remove(0);
        let p = &ws_plans(&c, &crate::test_support::simulator_instruments(c.exchange))[0];
        assert_eq!(p.url, "wss://www.deribit.com/ws/api/v2");
        assert!(p.requests[0].frame.contains("public/set_heartbeat"));
        assert!(
            p.requests[1].frame.contains(
                r#""channels":["deribit_volatility_index.btc_usd","book.BTC-PERPETUAL.100ms"]"#
            ),
            "{}",
            p.requests[1].frame
        );
        assert_eq!(p.streams[0].market_type, MarketType::Options);
        assert_eq!(p.book.as_ref().unwrap().symbols[0].as_str(), "BTC-USD");
    }
}
