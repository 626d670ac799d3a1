use super::*;

#[test]
fn extreme_is_edge_triggered() {
    let mut t = ExtremeTrigger::default();
    let fired: Vec<bool> = [1.0, 3.0, 4.0, 2.9, -3.5, -3.2]
        .iter()
        .map(|z| t.check(*z, 3.0))
        .collect();
    assert_eq!(fired, vec![false, true, false, false, true, false]);
}

#[test]
fn price_move_over_exactly_the_lookback() {
    let mut d = DivergenceDetector::new(60_000, 5.0, 1.5);
    d.on_trade(0, 100.0);
    d.on_trade(30_000, 100.5);
    assert_eq!(
        d.price_move_bps(59_999),
        None,
        "no trade at or before now − 60 s"
    );
    // anchor = trade at 0 (≤ 60 000 − 60 000): (100.5 − 100)/100 · 1e4 = 50 bps
    assert!((d.price_move_bps(60_000).unwrap() - 50.0).abs() < 1e-9);
    d.on_trade(70_000, 100.0);
    // now 95 000, cutoff 35 000: anchor = trade at 30 000 (100.5); last 100 → −49.75 bps
    let m = d.price_move_bps(95_000).unwrap();
    assert!((m - (100.0 - 100.5) / 100.5 * 1e4).abs() < 1e-12);
}

#[test]
fn divergence_directions_and_rearm() {
    let mut d = DivergenceDetector::new(1000, 5.0, 1.5);
    d.on_trade(0, 100.0);
    d.on_trade(900, 100.1); // +10 bps over the lookback at t = 1000
    // price up, flow selling (z −2) → bearish, once
    assert_eq!(
        d.check(Stream::Ofi, -2.0, 1000).map(|x| x.0),
        Some(Divergence::Bearish)
    );
    assert_eq!(
        d.check(Stream::Ofi, -2.5, 1000),
        None,
        "still diverging: no repeat"
    );
    // the CVD has its own state
    assert_eq!(
        d.check(Stream::Cvd, -1.6, 1000).map(|x| x.0),
        Some(Divergence::Bearish)
    );
    // z agrees with the price: cleared, then fires again
    assert_eq!(d.check(Stream::Ofi, 0.5, 1000), None);
    assert!(d.check(Stream::Ofi, -1.5, 1000).is_some());
    // price down 10 bps, flow buying → bullish
    d.on_trade(1500, 99.9);
    // t = 2000: anchor = 100.1 (t 900), last 99.9 → −19.98 bps
    let (dir, mv) = d.check(Stream::Ofi, 2.0, 2000).unwrap();
    assert_eq!(dir, Divergence::Bullish);
    assert!((mv - (99.9 - 100.1) / 100.1 * 1e4).abs() < 1e-9);
    // a move under 5 bps is no divergence
    let mut d = DivergenceDetector::new(1000, 5.0, 1.5);
    d.on_trade(0, 100.0);
    d.on_trade(500, 100.04); // 4 bps
    assert_eq!(d.check(Stream::Ofi, -5.0, 1000), None);
}

#[test]
fn meta_json_is_fixed_text() {
    let e = SignalEvent::new(
        5,
        EventDetail::Reset {
            reason: ResetReason::Silence(2500),
        },
    );
    assert_eq!(
        (e.kind.as_str(), e.meta_json().as_str()),
        ("reset", r#"{"reason":"silence","silence_ms":2500}"#)
    );
    let e = SignalEvent::new(
        5,
        EventDetail::SignalLevel {
            from: SignalLevel::Neutral,
            to: SignalLevel::Buy,
            score_z: 1.5,
        },
    );
    assert_eq!(
        e.meta_json(),
        r#"{"from":"neutral","to":"buy","score_z":1.5}"#
    );
    let e = SignalEvent::new(
        5,
        EventDetail::Divergence {
            stream: Stream::Cvd,
            direction: Divergence::Bearish,
            z: -2.0,
            price_move_bps: 10.0,
        },
    );
    assert_eq!(e.kind, EventKind::Divergence);
    assert_eq!(
        e.meta_json(),
        r#"{"stream":"cvd","direction":"bearish","z":-2,"price_move_bps":10}"#
    );
}
