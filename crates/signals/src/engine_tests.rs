use super::*;
use crate::events::EventKind;
use crate::zscore::{ScaleMode, ZConfig};

/// Window 10 (warm-up 5), classical z without smoothing, one OFI level, no silence reset.
fn small() -> SignalsConfig {
    SignalsConfig {
        ofi_weights: vec![1.0],
        z: ZConfig {
            window: 10,
            scale_mode: ScaleMode::Std,
            ema_alpha: 1.0,
            ..ZConfig::default()
        },
        max_silence_ms: None,
        ..SignalsConfig::default()
    }
}

fn book(e: &mut SignalEngine, ts: i64, bid_qty: f64) -> Output {
    e.on_book(ts, &[Level::new(100.0, bid_qty)], &[Level::new(101.0, 5.0)])
}

fn kinds(out: &Output) -> Vec<EventKind> {
    out.events.iter().map(|e| e.kind).collect()
}

#[test]
fn first_book_is_the_reference_then_ofi_rows_then_z_after_warm_up() {
    let mut e = SignalEngine::new(small()).unwrap();
    assert_eq!(book(&mut e, 0, 10.0), Output::default());
    // bid qty 10 → 11 → 13 → 16 → 20 → 25: OFI = Δqb = 1, 2, 3, 4, 5
    let outs: Vec<Output> = [11.0, 13.0, 16.0, 20.0, 25.0]
        .iter()
        .zip(1..)
        .map(|(q, t)| book(&mut e, t, *q))
        .collect();
    let ofi: Vec<f64> = outs.iter().map(|o| o.ofi.unwrap().ofi).collect();
    assert_eq!(ofi, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(
        outs.iter()
            .all(|o| o.ofi.unwrap().ofi_z.is_none() && o.events.is_empty())
    );
    // 6th OFI (+6): baseline [1..5] → z = (6 − 3)/√2
    let o = book(&mut e, 6, 31.0);
    let row = o.ofi.unwrap();
    assert!((row.ofi_z.unwrap() - 3.0 / 2f64.sqrt()).abs() < 1e-12);
    assert_eq!(kinds(&o), vec![EventKind::WarmupDone]);
    assert!(o.fusion.is_none(), "no CVD z yet");
}

#[test]
fn gap_resets_everything_emits_reset_and_restarts_warm_up() {
    let mut e = SignalEngine::new(small()).unwrap();
    for t in 0..8 {
        book(&mut e, t, 10.0 + (t * t) as f64);
        e.on_trade(t, 100.5, 1.0, Some(Side::Buy));
    }
    assert!(book(&mut e, 8, 3.0).ofi.unwrap().ofi_z.is_some());
    let o = e.on_gap(9, ResetReason::BookResync);
    assert_eq!(
        o.events,
        vec![SignalEvent::new(
            9,
            EventDetail::Reset {
                reason: ResetReason::BookResync
            }
        )]
    );
    assert_eq!(o.events[0].meta_json(), r#"{"reason":"book_resync"}"#);
    // the book after the resync is only the reference; CVD restarts at 0
    assert!(book(&mut e, 10, 50.0).ofi.is_none());
    assert_eq!(
        e.on_trade(10, 100.5, 2.0, Some(Side::Sell))
            .cvd
            .unwrap()
            .cvd,
        -2.0
    );
    // five OFI values without a z again, the sixth has one
    for t in 11..16 {
        assert!(
            book(&mut e, t, 50.0 + t as f64)
                .ofi
                .unwrap()
                .ofi_z
                .is_none()
        );
    }
    let o = book(&mut e, 16, 70.0);
    assert!(o.ofi.unwrap().ofi_z.is_some());
    assert!(kinds(&o).contains(&EventKind::WarmupDone));
}

#[test]
fn silence_longer_than_the_limit_resets_before_the_input() {
    let cfg = SignalsConfig {
        max_silence_ms: Some(2000),
        ..small()
    };
    let mut e = SignalEngine::new(cfg).unwrap();
    book(&mut e, 0, 10.0);
    assert!(
        book(&mut e, 2000, 11.0).ofi.is_some(),
        "exactly the limit is no gap"
    );
    let o = book(&mut e, 4001, 12.0);
    assert!(
        o.ofi.is_none(),
        "the book after the silence is the new reference"
    );
    assert_eq!(
        o.events[0].detail,
        EventDetail::Reset {
            reason: ResetReason::Silence(2001)
        }
    );
    assert_eq!(
        o.events[0].meta_json(),
        r#"{"reason":"silence","silence_ms":2001}"#
    );
}

#[test]
fn regime_switches_with_the_trade_rate_and_rows_carry_it() {
    // 60 s window, 1 tps: 60 trades in the window are needed.
    let mut e = SignalEngine::new(small()).unwrap();
    let mut changes = vec![];
    for i in 0..60 {
        let o = e.on_trade(i * 500, 100.0, 1.0, Some(Side::Buy));
        assert_eq!(
            o.cvd.unwrap().regime,
            if i < 59 {
                Regime::Quiet
            } else {
                Regime::Active
            }
        );
        changes.extend(
            o.events
                .into_iter()
                .filter(|e| e.kind == EventKind::RegimeChange),
        );
    }
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].meta_json(),
        r#"{"from":"quiet","to":"active","rate_tps":1}"#
    );
    // a book 60 s after the last trade: every trade has left the window → quiet again
    let o = book(&mut e, 29_500 + 60_000, 1.0);
    assert!(kinds(&o).contains(&EventKind::RegimeChange));
}

#[test]
fn fusion_rows_levels_and_events() {
    let mut e = SignalEngine::new(small()).unwrap();
    // warm both streams: OFI alternates ±1, CVD buys and sells alternate
    book(&mut e, 0, 10.0);
    for t in 1..=6 {
        book(&mut e, t, if t % 2 == 0 { 10.0 } else { 11.0 });
        e.on_trade(
            t,
            100.0,
            1.0,
            Some(if t % 2 == 0 { Side::Sell } else { Side::Buy }),
        );
    }
    let mut fusion = 0;
    let mut levels = vec![];
    for t in 7..40 {
        let o = book(&mut e, t, if t % 2 == 0 { 10.0 } else { 11.0 });
        let o2 = e.on_trade(
            t,
            100.0,
            1.0,
            Some(if t % 2 == 0 { Side::Sell } else { Side::Buy }),
        );
        for out in [&o, &o2] {
            if let Some(f) = out.fusion {
                fusion += 1;
                let (oz, cz) = (
                    o.ofi.unwrap().ofi_z.unwrap(),
                    o2.cvd.unwrap().z_cvd.unwrap(),
                );
                if std::ptr::eq(out, &o2) {
                    assert!((f.score - (0.6 * oz + 0.4 * cz)).abs() < 1e-12);
                }
            }
            levels.extend(
                out.events
                    .iter()
                    .filter(|e| e.kind == EventKind::SignalLevel)
                    .copied(),
            );
        }
    }
    assert!(fusion >= 60, "{fusion}");
    // a strong buy burst: big bid additions and big buys
    let mut got = vec![];
    for t in 40..44 {
        got.extend(book(&mut e, t, 10.0 + 100.0 * (t - 39) as f64).events);
        got.extend(e.on_trade(t, 100.0, 50.0, Some(Side::Buy)).events);
    }
    let kinds: Vec<EventKind> = got.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::SignalLevel), "{got:?}");
    assert!(kinds.contains(&EventKind::ExtremeZ), "{got:?}");
    let strong = got.iter().any(|e| {
        matches!(
            e.detail,
            EventDetail::SignalLevel {
                to: SignalLevel::StrongBuy,
                ..
            }
        )
    });
    assert!(strong, "{got:?}");
}

#[test]
fn divergence_event_end_to_end() {
    let cfg = SignalsConfig {
        divergence_lookback_ms: 1000,
        ..small()
    };
    let mut e = SignalEngine::new(cfg).unwrap();
    // price rises 100 → 101 (+100 bps) while the CVD alternates, then heavy selling at 101
    let mut got = vec![];
    for t in 0..10 {
        let side = if t % 2 == 0 { Side::Buy } else { Side::Sell };
        got.extend(
            e.on_trade(t * 200, 100.0 + t as f64 / 9.0, 1.0, Some(side))
                .events,
        );
    }
    got.extend(e.on_trade(2000, 101.0, 30.0, Some(Side::Sell)).events);
    let div = got
        .iter()
        .find(|e| e.kind == EventKind::Divergence)
        .expect("divergence");
    assert!(
        div.meta_json()
            .starts_with(r#"{"stream":"cvd","direction":"bearish","z":-"#),
        "{}",
        div.meta_json()
    );
}

#[test]
fn invalid_config_is_refused() {
    let err = SignalEngine::new(SignalsConfig {
        ofi_weights: vec![-1.0],
        ..SignalsConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.field, "ofi_weights");
}
