//! The same input sequence gives bit-identical rows: a long seeded pseudo-random market (books,
//! trades with known and unknown sides, gaps) replayed through two engines, every row compared
//! by the bit patterns of its f64 fields.

use marketprism_signals::synthetic::SyntheticMarket;
use marketprism_signals::{
    CvdRow, EventKind, FusionRow, OfiRow, Output, SignalEngine, SignalsConfig,
};

/// Every field of every row as integers (f64 → `to_bits`, `None` → a marker, enums → names).
fn fingerprint(out: &Output) -> Vec<String> {
    let b = |x: f64| format!("{:016x}", x.to_bits());
    let ob = |x: Option<f64>| x.map_or("none".to_string(), b);
    let mut v = vec![];
    if let Some(OfiRow {
        ts_ms,
        ofi,
        ofi_z,
        scale,
        std_zero,
        regime,
    }) = out.ofi
    {
        v.push(format!(
            "ofi {ts_ms} {} {} {} {std_zero} {}",
            b(ofi),
            ob(ofi_z),
            ob(scale),
            regime.as_str()
        ));
    }
    if let Some(CvdRow {
        ts_ms,
        cvd,
        delta,
        z_raw,
        z_cvd,
        scale,
        sigma_floor,
        floor_used,
        std_zero,
        regime,
    }) = out.cvd
    {
        v.push(format!(
            "cvd {ts_ms} {} {} {} {} {} {} {floor_used} {std_zero} {}",
            b(cvd),
            b(delta),
            ob(z_raw),
            ob(z_cvd),
            ob(scale),
            ob(sigma_floor),
            regime.as_str()
        ));
    }
    if let Some(FusionRow {
        ts_ms,
        score,
        score_z,
        level,
        regime,
    }) = out.fusion
    {
        let level = level.map_or("none", |l| l.as_str());
        v.push(format!(
            "fusion {ts_ms} {} {} {level} {}",
            b(score),
            ob(score_z),
            regime.as_str()
        ));
    }
    for e in &out.events {
        v.push(format!(
            "event {} {} {}",
            e.ts_ms,
            e.kind.as_str(),
            e.meta_json()
        ));
    }
    v
}

#[test]
fn replay_twice_gives_bit_identical_rows() {
    let inputs = SyntheticMarket::new(0x5EED_2026, Some(20_000)).take(120_000);
    let run = |inputs: &[_]| {
        let mut e = SignalEngine::new(SignalsConfig::default()).unwrap();
        inputs
            .iter()
            .flat_map(|i| fingerprint(&e.apply(i)))
            .collect::<Vec<String>>()
    };
    let (a, b) = (run(&inputs), run(&inputs));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "row {i} differs");
    }
    // The run exercised what it should: z values, fusion rows, resets and signal events.
    let count = |p: &str| a.iter().filter(|r| r.starts_with(p)).count();
    assert!(
        count("ofi") > 50_000 && count("cvd") > 20_000,
        "{} {}",
        count("ofi"),
        count("cvd")
    );
    assert!(
        a.iter()
            .any(|r| r.starts_with("fusion") && !r.contains("none"))
    );
    for kind in [
        EventKind::Reset,
        EventKind::WarmupDone,
        EventKind::SignalLevel,
        EventKind::ExtremeZ,
    ] {
        let n = a
            .iter()
            .filter(|r| r.starts_with("event") && r.split(' ').nth(2) == Some(kind.as_str()))
            .count();
        assert!(n > 0, "no {} event", kind.as_str());
        println!("{}: {n}", kind.as_str());
    }
}

#[test]
fn outputs_compare_equal_field_by_field() {
    // The derived PartialEq agrees, and no NaN / unbounded z ever reaches a row.
    let inputs = SyntheticMarket::new(7, Some(5_000)).take(30_000);
    let mut e1 = SignalEngine::new(SignalsConfig::default()).unwrap();
    let mut e2 = SignalEngine::new(SignalsConfig::default()).unwrap();
    for i in &inputs {
        let (a, b) = (e1.apply(i), e2.apply(i));
        assert_eq!(a, b);
        if let Some(r) = a.ofi {
            assert!(
                r.ofi.is_finite() && r.ofi_z.is_none_or(|z| z.abs() <= 8.0),
                "{r:?}"
            );
        }
        if let Some(r) = a.cvd {
            assert!(
                r.cvd.is_finite() && r.z_cvd.is_none_or(|z| z.abs() <= 8.0),
                "{r:?}"
            );
            assert!(r.scale.is_none_or(|s| s.is_finite() && s >= 0.0), "{r:?}");
        }
        if let Some(r) = a.fusion {
            assert!(
                r.score.is_finite() && r.score_z.is_none_or(|z| z.abs() <= 8.0),
                "{r:?}"
            );
        }
    }
}
