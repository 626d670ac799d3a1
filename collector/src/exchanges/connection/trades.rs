//! Trade id bookkeeping of one connection, pure: a trade sent twice is dropped, and where the venue's
//! ids are contiguous (Binance trade `t` and aggregate `a` ids) a jump is recorded as a trades gap —
//! a lost or unparsable trade frame must not pass unnoticed.

use super::backoff::RecentIds;
use crate::model::{DataType, Event, Exchange, Gap, GapCause, Payload, Symbol};
use std::collections::HashMap;

/// Ids remembered per connection to recognise a repeated trade (covers out-of-order arrivals too).
const RECENT_TRADES: usize = 4_096;

#[derive(Debug, Clone, PartialEq)]
pub enum TradeVerdict {
    Keep,
    /// Keep it, after this gap event (ids were skipped before it).
    KeepAfterGap(Event),
    Duplicate,
}

pub struct TradeIds {
    contiguous: bool,
    recent: RecentIds,
    /// Highest numeric id and its exchange time, per symbol.
    last: HashMap<Symbol, (u64, i64)>,
}

impl TradeIds {
    pub fn new(exchange: Exchange) -> TradeIds {
        TradeIds {
            contiguous: matches!(
                exchange,
                Exchange::BinanceSpot | Exchange::BinanceDerivatives
            ),
            recent: RecentIds::new(RECENT_TRADES),
            last: HashMap::new(),
        }
    }

    /// True when a lost trade shows up as a jump in ids (so a skipped frame needs no gap of its own).
    pub fn detects_loss(&self) -> bool {
        self.contiguous
    }

    pub fn check(&mut self, e: &Event) -> TradeVerdict {
        let Payload::Trade(t) = &e.payload else {
            return TradeVerdict::Keep;
        };
        if !self.recent.insert(format!("{}:{}", e.symbol, t.trade_id)) {
            return TradeVerdict::Duplicate;
        }
        let Ok(id) = t.trade_id.parse::<u64>() else {
            return TradeVerdict::Keep;
        };
        let previous = self.last.get(&e.symbol).copied();
        match previous {
            Some((last, _)) if id <= last => TradeVerdict::Keep, // late, after a reordering
            Some((last, last_ts)) if self.contiguous && id > last + 1 => {
                self.last.insert(e.symbol.clone(), (id, e.ts_ms));
                TradeVerdict::KeepAfterGap(Event {
                    exchange: e.exchange,
                    market_type: e.market_type,
                    symbol: e.symbol.clone(),
                    ts_ms: last_ts,
                    recv_ts_ms: e.recv_ts_ms,
                    payload: Payload::Gap(Gap {
                        data_type: DataType::Trades,
                        start_ms: last_ts,
                        end_ms: e.ts_ms.max(last_ts),
                        cause: GapCause::SequenceGap,
                        detail: format!("trade ids jump {last} -> {id}"),
                    }),
                })
            }
            _ => {
                self.last.insert(e.symbol.clone(), (id, e.ts_ms));
                TradeVerdict::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MarketType, Side, Trade};

    fn trade(id: &str, ts: i64) -> Event {
        Event {
            exchange: Exchange::BinanceSpot,
            market_type: MarketType::Spot,
            symbol: Symbol::new("BTC-USDT").unwrap(),
            ts_ms: ts,
            recv_ts_ms: ts,
            payload: Payload::Trade(Trade {
                trade_id: id.into(),
                price: 1.into(),
                quantity: 1.into(),
                raw_quantity: 1.into(),
                quantity_unit: crate::model::QuantityUnit::Base,
                side: Side::Buy,
            }),
        }
    }

    #[test]
    fn duplicates_dropped_jumps_recorded_late_trades_kept() {
        let mut t = TradeIds::new(Exchange::BinanceSpot);
        assert_eq!(t.check(&trade("10", 1)), TradeVerdict::Keep);
        assert_eq!(t.check(&trade("11", 2)), TradeVerdict::Keep);
        assert_eq!(t.check(&trade("11", 2)), TradeVerdict::Duplicate);
        let TradeVerdict::KeepAfterGap(g) = t.check(&trade("14", 5)) else {
            panic!("jump not recorded")
        };
        let Payload::Gap(g) = g.payload else { panic!() };
        assert_eq!(
            (g.data_type, g.cause, g.start_ms, g.end_ms),
            (DataType::Trades, GapCause::SequenceGap, 2, 5)
        );
        assert_eq!(
            t.check(&trade("12", 3)),
            TradeVerdict::Keep,
            "late, not lost"
        );
        assert_eq!(t.check(&trade("12", 3)), TradeVerdict::Duplicate);
        assert_eq!(t.check(&trade("15", 6)), TradeVerdict::Keep);
    }

    #[test]
    fn aggregated_ids_are_only_deduplicated() {
        let mut t = TradeIds::new(Exchange::OkxSpot);
        assert_eq!(t.check(&trade("100", 1)), TradeVerdict::Keep);
        assert_eq!(t.check(&trade("103", 2)), TradeVerdict::Keep);
        assert_eq!(t.check(&trade("103", 2)), TradeVerdict::Duplicate);
    }
}
