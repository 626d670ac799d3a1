//! A dataset whose data-quality figures are known by construction, for the report's tests:
//! ten whole minutes from `T0` (minute-aligned, UTC):
//! - `binance_derivatives/perpetual/trades/BTC-USDT`: 20 trades in each minute but minute 4; one
//!   trade in 20 at 300 ms latency, the others at 10 ms; 3 trades stored twice (a redelivery);
//!   gaps: `disconnect` 60 s from minute 4 (its row written twice), `sequence_gap` 2 s in minute 7;
//! - `okx_derivatives/perpetual/orderbooks/ETH-USDT`: one snapshot every 10 s, 5 ms latency, no gap.

use marketprism_model::{
    Decimal, Event, Exchange, Gap, GapCause, Level, MarketType, OrderBookSnapshot, Payload,
    QuantityUnit, Side, Symbol, Trade,
};

/// 2026-11-30 00:00:00 UTC.
pub const T0: i64 = 1_795_996_800_000;
pub const MINUTE: i64 = 60_000;
/// The dataset's whole range: `[T0, T0 + 10 min)`.
pub const FROM: i64 = T0;
pub const TO: i64 = T0 + 10 * MINUTE;

pub const TRADES_ROWS: u64 = 9 * 20 + 3;
pub const TRADES_DUPLICATES: u64 = 3;
pub const TRADES_EMPTY_MINUTES: u64 = 1;
pub const TRADES_P50_MS: i64 = 10;
pub const TRADES_P99_MS: i64 = 300;
pub const TRADES_GAPS: usize = 2;
pub const TRADES_GAP_MS: i64 = 62_000;
pub const BOOKS_ROWS: u64 = 60;

fn trade(i: i64, ts_ms: i64, latency_ms: i64) -> Event {
    Event {
        exchange: Exchange::BinanceDerivatives,
        market_type: MarketType::Perpetual,
        symbol: Symbol::new("BTC-USDT").unwrap(),
        ts_ms,
        recv_ts_ms: ts_ms + latency_ms,
        payload: Payload::Trade(Trade {
            trade_id: (1_000_000 + i).to_string(),
            price: Decimal::new(9_500_010 + i, 2),
            quantity: Decimal::new(15, 3),
            raw_quantity: Decimal::new(15, 3),
            quantity_unit: QuantityUnit::Base,
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
        }),
    }
}

fn gap(start_ms: i64, end_ms: i64, cause: GapCause) -> Event {
    Event {
        exchange: Exchange::BinanceDerivatives,
        market_type: MarketType::Perpetual,
        symbol: Symbol::new("BTC-USDT").unwrap(),
        ts_ms: end_ms,
        recv_ts_ms: end_ms,
        payload: Payload::Gap(Gap {
            data_type: marketprism_model::DataType::Trades,
            start_ms,
            end_ms,
            cause,
            detail: "report test".into(),
        }),
    }
}

/// Every event of the dataset, in time order but for the three redelivered trades at the end.
pub fn events() -> Vec<Event> {
    let mut out = Vec::new();
    let mut i = 0;
    for minute in 0..10 {
        if minute == 4 {
            continue;
        }
        for k in 0..20 {
            let ts = T0 + minute * MINUTE + k * 2_900 + 7;
            out.push(trade(i, ts, if k == 19 { 300 } else { 10 }));
            i += 1;
        }
    }
    for n in 0..60 {
        let ts = T0 + n * 10_000 + 3;
        out.push(Event {
            exchange: Exchange::OkxDerivatives,
            market_type: MarketType::Perpetual,
            symbol: Symbol::new("ETH-USDT").unwrap(),
            ts_ms: ts,
            recv_ts_ms: ts + 5,
            payload: Payload::Orderbook(OrderBookSnapshot {
                last_update_id: 500 + n,
                bids: vec![Level(Decimal::new(350_000, 2), Decimal::new(12, 1))],
                asks: vec![Level(Decimal::new(350_010, 2), Decimal::new(8, 1))],
            }),
        });
    }
    let disconnect = gap(T0 + 4 * MINUTE, T0 + 5 * MINUTE, GapCause::Disconnect);
    out.push(disconnect.clone());
    out.push(disconnect);
    out.push(gap(
        T0 + 7 * MINUTE + 100,
        T0 + 7 * MINUTE + 2_100,
        GapCause::SequenceGap,
    ));
    // Redeliveries: the same trades again, as a redelivery stores them (a duplicate by natural key).
    let again: Vec<Event> = out
        .iter()
        .filter(|e| matches!(&e.payload, Payload::Trade(t) if t.trade_id.ends_with("00") || t.trade_id == "1000001"))
        .take(3)
        .cloned()
        .collect();
    assert_eq!(again.len(), 3);
    out.extend(again);
    out
}
