//! What the publisher could not keep: events dropped while NATS was unreachable (or their stream
//! refused publishes) and the buffer was full, remembered per instrument and data type, so each loss
//! becomes a `gap` event (cause `overflow`) once there is room again. Pure: no I/O, no clock.

use marketprism_model::{DataType, Event, Exchange, Gap, GapCause, MarketType, Payload, Symbol};
use std::collections::BTreeMap;

type Key = (DataType, Exchange, MarketType, Symbol);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lost {
    start_ms: i64,
    end_ms: i64,
    count: u64,
}

#[derive(Debug)]
pub(crate) struct OverflowTracker {
    lost: BTreeMap<Key, Lost>,
    dropped: u64,
    /// Who dropped and why, for the gaps' detail.
    why: &'static str,
}

impl Default for OverflowTracker {
    fn default() -> Self {
        OverflowTracker::new(
            "publisher dropped {n} events: NATS unreachable or stream refusing (full), and buffer full",
        )
    }
}

impl OverflowTracker {
    /// `why` is the gaps' detail; `{n}` in it becomes the number of events dropped.
    pub fn new(why: &'static str) -> OverflowTracker {
        OverflowTracker {
            lost: BTreeMap::new(),
            dropped: 0,
            why,
        }
    }

    /// Remember a dropped event. A dropped gap widens the gap recorded for the data type it is about.
    pub fn record(&mut self, event: &Event) {
        let (data_type, start_ms, end_ms) = match &event.payload {
            Payload::Gap(g) => (g.data_type, g.start_ms, g.end_ms),
            _ => (event.data_type(), event.ts_ms, event.ts_ms),
        };
        let key = (
            data_type,
            event.exchange,
            event.market_type,
            event.symbol.clone(),
        );
        let lost = self.lost.entry(key).or_insert(Lost {
            start_ms,
            end_ms,
            count: 0,
        });
        lost.start_ms = lost.start_ms.min(start_ms);
        lost.end_ms = lost.end_ms.max(end_ms);
        lost.count += 1;
        self.dropped += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.lost.is_empty()
    }

    /// Dropped events not yet turned into gaps.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// One gap event per (data type, instrument) that lost events; the tracker is emptied.
    pub fn take_gaps(&mut self, now_ms: i64) -> Vec<Event> {
        self.dropped = 0;
        let why = self.why;
        std::mem::take(&mut self.lost)
            .into_iter()
            .map(|((data_type, exchange, market_type, symbol), lost)| Event {
                exchange,
                market_type,
                symbol,
                ts_ms: lost.end_ms,
                recv_ts_ms: now_ms,
                payload: Payload::Gap(Gap {
                    data_type,
                    start_ms: lost.start_ms,
                    end_ms: lost.end_ms,
                    cause: GapCause::Overflow,
                    detail: why.replace("{n}", &lost.count.to_string()),
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::{Decimal, Side, Trade};

    fn trade(symbol: &str, ts_ms: i64) -> Event {
        Event {
            exchange: Exchange::OkxSpot,
            market_type: MarketType::Spot,
            symbol: Symbol::new(symbol).unwrap(),
            ts_ms,
            recv_ts_ms: ts_ms + 1,
            payload: Payload::Trade(Trade {
                trade_id: ts_ms.to_string(),
                price: Decimal::ONE,
                quantity: Decimal::ONE,
                raw_quantity: Decimal::ONE,
                quantity_unit: marketprism_model::QuantityUnit::Base,
                side: Side::Buy,
            }),
        }
    }

    #[test]
    fn drops_become_one_gap_per_instrument_and_type_covering_every_dropped_event() {
        let mut t = OverflowTracker::default();
        for ts in [1_000, 3_000, 2_000] {
            t.record(&trade("BTC-USDT", ts));
        }
        t.record(&trade("ETH-USDT", 5_000));
        // A dropped gap about trades widens the trades gap instead of vanishing.
        let mut gap = trade("BTC-USDT", 9_000);
        gap.payload = Payload::Gap(Gap {
            data_type: DataType::Trades,
            start_ms: 500,
            end_ms: 600,
            cause: GapCause::Disconnect,
            detail: String::new(),
        });
        t.record(&gap);
        assert_eq!(t.dropped(), 5);

        let gaps = t.take_gaps(10_000);
        assert!(t.is_empty() && t.dropped() == 0);
        assert_eq!(gaps.len(), 2);
        let Payload::Gap(btc) = &gaps[0].payload else {
            panic!("not a gap")
        };
        assert_eq!(gaps[0].symbol.as_str(), "BTC-USDT");
        assert_eq!(gaps[0].subject(), "gap.okx_spot.spot.BTC-USDT");
        assert_eq!(
            (btc.data_type, btc.start_ms, btc.end_ms, btc.cause),
            (DataType::Trades, 500, 3_000, GapCause::Overflow)
        );
        assert!(btc.detail.contains("dropped 4 events"), "{}", btc.detail);
        assert_eq!(gaps[1].symbol.as_str(), "ETH-USDT");
    }
}
