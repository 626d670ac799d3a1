//! Deterministic synthetic events for tests, benchmarks and `run` without exchanges.
//!
//! Event `i` of seed `s` is a pure function of `(s, i)`: data types round-robin over the 8 market types,
//! gaps and the 4 signal types, `ts_ms = base_ts_ms(s) + i * STEP_MS` (so `ts_ms` is unique and [`synthetic_index`] inverts it),
//! and every natural key is unique. Decimals look like a venue's: 2-8 fractional digits, including
//! the smallest step `0.00000001`, and some large values.

use crate::*;

/// Milliseconds between consecutive events' `ts_ms`.
pub(crate) const STEP_MS: i64 = 10;
/// 2026-01-01T00:00:00Z.
const EPOCH_2026_MS: i64 = 1_767_225_600_000;

const SYMBOLS: [&str; 3] = ["BTC-USDT", "ETH-USDT", "SOL-USDT"];
const INDEX_NAMES: [&str; 2] = ["btc_usd", "eth_usd"];
const PERIODS: [&str; 3] = ["5m", "15m", "1H"];
const CAUSES: [GapCause; 7] = [
    GapCause::Disconnect,
    GapCause::SequenceGap,
    GapCause::Stale,
    GapCause::Integrity,
    GapCause::ServerShutdown,
    GapCause::Overflow,
    GapCause::Fenced,
];

/// `ts_ms` of event 0 for `seed`: midnight UTC of a day in 2026 chosen by the seed.
pub(crate) fn base_ts_ms(seed: u64) -> i64 {
    EPOCH_2026_MS + (seed % 300) as i64 * 86_400_000
}

/// The `count` first events of `seed`.
pub fn synthetic_events(seed: u64, count: usize) -> Vec<Event> {
    (0..count as u64)
        .map(|i| synthetic_event(seed, i))
        .collect()
}

/// Index `i` such that `synthetic_event(seed, i) == *event`, from its `ts_ms`.
pub fn synthetic_index(seed: u64, event: &Event) -> Option<u64> {
    let offset = event.ts_ms.checked_sub(base_ts_ms(seed))?;
    (offset >= 0 && offset % STEP_MS == 0).then_some((offset / STEP_MS) as u64)
}

/// splitmix64: a well-mixed pseudo-random u64 from `(seed, i, salt)`.
fn mix(seed: u64, i: u64, salt: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(salt.wrapping_mul(0x94D0_49BB_1331_11EB));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn decimal(mantissa: u64, scale: u32) -> Decimal {
    Decimal::new(mantissa as i64, scale)
}

/// A price around 42 000 with 2 decimals, or a rare large one.
fn price(seed: u64, i: u64, salt: u64) -> Decimal {
    let r = mix(seed, i, salt);
    if r.is_multiple_of(50) {
        Decimal::from_i128_with_scale(12_345_678_901_234_567_890_123, 9) // 20 integer digits max is 1e20
    } else {
        decimal(4_000_000 + r % 400_000, 2)
    }
}

/// A size with 8 decimals, sometimes the smallest step `0.00000001`.
fn size(seed: u64, i: u64, salt: u64) -> Decimal {
    let r = mix(seed, i, salt);
    if r.is_multiple_of(7) {
        decimal(1, 8)
    } else {
        decimal(1 + r % 500_000_000, 8)
    }
}

fn pick<T: Copy>(items: &[T], r: u64) -> T {
    items[(r % items.len() as u64) as usize]
}

/// Event `i` of `seed`.
pub fn synthetic_event(seed: u64, i: u64) -> Event {
    let data_type = DataType::ALL[(i % DataType::ALL.len() as u64) as usize];
    let ts_ms = base_ts_ms(seed) + i as i64 * STEP_MS;
    let r = mix(seed, i, 0);
    let (exchange, market_type) = match data_type {
        DataType::VolatilityIndices => (Exchange::DeribitDerivatives, MarketType::Options),
        DataType::Orderbooks
        | DataType::Trades
        | DataType::Gaps
        | DataType::SignalOfi
        | DataType::SignalCvd
        | DataType::SignalFusion
        | DataType::SignalEvents => pick(
            &[
                (Exchange::BinanceSpot, MarketType::Spot),
                (Exchange::OkxSpot, MarketType::Spot),
                (Exchange::BinanceDerivatives, MarketType::Perpetual),
                (Exchange::OkxDerivatives, MarketType::Perpetual),
            ],
            r,
        ),
        _ => pick(
            &[
                (Exchange::BinanceDerivatives, MarketType::Perpetual),
                (Exchange::OkxDerivatives, MarketType::Perpetual),
            ],
            r,
        ),
    };
    let symbol = Symbol::new(pick(&SYMBOLS, r >> 8)).expect("static symbols are valid");
    let payload = payload(seed, i, data_type, ts_ms);
    Event {
        exchange,
        market_type,
        symbol,
        ts_ms,
        recv_ts_ms: ts_ms + 1 + (r % 40) as i64,
        payload,
    }
}

fn payload(seed: u64, i: u64, data_type: DataType, ts_ms: i64) -> Payload {
    let r = mix(seed, i, 1);
    let side = if r.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    let ratio = |salt| decimal(5_000 + mix(seed, i, salt) % 10_000, 4);
    match data_type {
        DataType::Orderbooks => {
            let mid = 4_000_000 + (r % 400_000) as i64;
            let levels = |sign: i64, salt: u64| {
                (0..5)
                    .map(|k| {
                        Level(
                            Decimal::new(mid + sign * (k + 1), 2),
                            size(seed, i, salt + k as u64),
                        )
                    })
                    .collect()
            };
            Payload::Orderbook(OrderBookSnapshot {
                last_update_id: 1_000_000 + i as i64,
                bids: levels(-1, 10),
                asks: levels(1, 20),
            })
        }
        DataType::Trades => {
            let q = units(size(seed, i, 3), r);
            Payload::Trade(Trade {
                trade_id: format!("{seed}-{i}"),
                price: price(seed, i, 2),
                quantity: q.base,
                raw_quantity: q.raw,
                quantity_unit: q.unit,
                side,
            })
        }
        DataType::FundingRates => Payload::FundingRate(FundingRate {
            funding_rate: (!r.is_multiple_of(7))
                .then(|| Decimal::new((r % 2_000) as i64 - 1_000, 8)),
            next_funding_rate: (!r.is_multiple_of(2))
                .then(|| Decimal::new((r % 1_000) as i64 - 500, 8)),
            funding_time_ms: ts_ms - ts_ms.rem_euclid(28_800_000) + 28_800_000,
            next_funding_time_ms: (!r.is_multiple_of(3))
                .then_some(ts_ms - ts_ms.rem_euclid(28_800_000) + 57_600_000),
            mark_price: Some(price(seed, i, 4)),
            index_price: (!r.is_multiple_of(4)).then(|| price(seed, i, 5)),
        }),
        DataType::OpenInterests => {
            let q = units(decimal(r % 10_000_000_000, 3), r);
            Payload::OpenInterest(OpenInterest {
                open_interest: q.base,
                raw_open_interest: q.raw,
                open_interest_unit: q.unit,
                open_interest_value: (!r.is_multiple_of(3))
                    .then(|| decimal(mix(seed, i, 6) % 1_000_000_000_000, 2)),
            })
        }
        DataType::Liquidations => {
            let q = units(size(seed, i, 8), r);
            Payload::Liquidation(Liquidation {
                side,
                price: price(seed, i, 7),
                quantity: q.base,
                raw_quantity: q.raw,
                quantity_unit: q.unit,
            })
        }
        DataType::LsrTopPositions | DataType::LsrAllAccounts => {
            let lsr = LongShortRatio {
                period: pick(&PERIODS, r).to_owned(),
                long_short_ratio: ratio(9),
                long_ratio: (!r.is_multiple_of(5)).then(|| ratio(10)),
                short_ratio: (!r.is_multiple_of(5)).then(|| ratio(11)),
            };
            if data_type == DataType::LsrTopPositions {
                Payload::LsrTopPosition(lsr)
            } else {
                Payload::LsrAllAccount(lsr)
            }
        }
        DataType::VolatilityIndices => Payload::VolatilityIndex(VolatilityIndex {
            index_name: pick(&INDEX_NAMES, r).to_owned(),
            volatility: decimal(3_000 + r % 7_000, 2),
        }),
        DataType::Gaps => Payload::Gap(Gap {
            data_type: pick(&DataType::MARKET, r),
            start_ms: ts_ms - 1_000,
            end_ms: ts_ms,
            cause: pick(&CAUSES, r >> 4),
            detail: format!("synthetic gap {i}"),
        }),
        DataType::SignalOfi
        | DataType::SignalCvd
        | DataType::SignalFusion
        | DataType::SignalEvents => signal_payload(seed, i, data_type),
    }
}

/// A signal row: z values absent in about one row of five (warm-up), flags and labels varied.
fn signal_payload(seed: u64, i: u64, data_type: DataType) -> Payload {
    let r = mix(seed, i, 12);
    let f = |salt: u64| (mix(seed, i, salt) % 2_000_001) as f64 / 1_000.0 - 1_000.0;
    let warm = !r.is_multiple_of(5);
    let z = |salt: u64| warm.then(|| f(salt) / 125.0);
    let regime = pick(&["active", "quiet"], r >> 3).to_owned();
    match data_type {
        DataType::SignalOfi => Payload::SignalOfi(OfiSignal {
            update_id: 2_000_000 + i as i64,
            ofi: f(13),
            ofi_z: z(14),
            scale: warm.then(|| f(15).abs() + 0.5),
            std_zero: r.is_multiple_of(11),
            regime,
        }),
        DataType::SignalCvd => Payload::SignalCvd(CvdSignal {
            trade_id: format!("{seed}-{i}"),
            cvd: f(16),
            delta: f(17) / 100.0,
            z_raw: z(18),
            z_cvd: z(19),
            scale: warm.then(|| f(20).abs() + 0.5),
            sigma_floor: warm.then(|| f(21).abs()),
            floor_used: r.is_multiple_of(3),
            std_zero: r.is_multiple_of(11),
            regime,
        }),
        DataType::SignalFusion => Payload::SignalFusion(FusionSignal {
            source: format!("trade:{seed}-{i}"),
            score: f(22) / 300.0,
            score_z: z(23),
            level: warm.then(|| {
                pick(
                    &["strong_sell", "sell", "neutral", "buy", "strong_buy"],
                    r >> 5,
                )
                .to_owned()
            }),
            regime,
        }),
        _ => Payload::SignalEvent(SignalEvent {
            source: format!("book:{}", 2_000_000 + i),
            seq: (r % 3) as i64,
            event_type: "warmup_done".to_owned(),
            meta_json: r#"{"stream":"ofi"}"#.to_owned(),
        }),
    }
}

/// Every other size counts contracts of 0.01 base (OKX BTC-USDT-SWAP style), the rest base units.
fn units(raw: Decimal, r: u64) -> crate::Quantity {
    if r.is_multiple_of(2) {
        crate::Quantity {
            base: raw * Decimal::new(1, 2),
            raw,
            unit: crate::QuantityUnit::Contracts,
        }
    } else {
        crate::Quantity::base(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn deterministic_and_round_robin_over_all_types() {
        let a = synthetic_events(7, 90);
        assert_eq!(a, synthetic_events(7, 90));
        assert_ne!(a, synthetic_events(8, 90));
        for (i, e) in a.iter().enumerate() {
            assert_eq!(e.data_type(), DataType::ALL[i % DataType::ALL.len()]);
            assert_eq!(*e, synthetic_event(7, i as u64));
            assert_eq!(synthetic_index(7, e), Some(i as u64));
            assert!(e.recv_ts_ms > e.ts_ms);
        }
    }

    #[test]
    fn natural_keys_are_unique() {
        let events = synthetic_events(1, 9_000);
        let ids: BTreeSet<String> = events.iter().map(Event::msg_id).collect();
        assert_eq!(ids.len(), events.len());
    }

    #[test]
    fn decimals_include_the_smallest_step_and_large_values() {
        let events = synthetic_events(3, 2_000);
        let json = serde_json::to_string(&events).unwrap();
        assert!(json.contains("\"0.00000001\""));
        assert!(json.contains("\"12345678901234.567890123\""));
    }
}
