use super::*;
use proptest::prelude::*;

/// Window 10 (warm-up max(5, 10/5) = 5), no smoothing, given scale mode.
fn small(scale_mode: ScaleMode) -> ZConfig {
    ZConfig {
        window: 10,
        scale_mode,
        ema_alpha: 1.0,
        ..ZConfig::default()
    }
}

fn feed(z: &mut RobustZ, xs: &[f64]) -> Vec<ZOutput> {
    xs.iter().map(|x| z.update(0, *x).unwrap()).collect()
}

#[test]
fn warm_up_is_max_5_or_a_fifth_of_the_window() {
    assert_eq!(
        ZConfig {
            window: 10,
            ..ZConfig::default()
        }
        .warmup(),
        5
    );
    assert_eq!(ZConfig::default().warmup(), 60);
    let mut z = RobustZ::new(&ZConfig::default(), ZMode::Level);
    let outs: Vec<_> = (0..61)
        .map(|i| z.update(i * 10, f64::from(i as i32 % 7)).unwrap())
        .collect();
    // 60 points fill the baseline without a z; the 61st is the first scored.
    assert!(
        outs[..60]
            .iter()
            .all(|o| o.z.is_none() && o.scale.is_none())
    );
    assert!(outs[60].z.is_some());
}

#[test]
fn baseline_is_the_previous_window_without_the_current_value() {
    let mut z = RobustZ::new(&small(ScaleMode::Std), ZMode::Level);
    let o = feed(&mut z, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // Baseline [1..5]: mean 3, population variance (4+1+0+1+4)/5 = 2 → z(6) = 3/√2 = 2.1213.
    // Were 6 included: mean 3.5, variance 17.5/6, z = 2.5/1.7078 = 1.4639.
    let want = 3.0 / 2f64.sqrt();
    assert!((o[5].z.unwrap() - want).abs() < 1e-12, "{:?}", o[5]);
    assert!((o[5].scale.unwrap() - 2f64.sqrt()).abs() < 1e-12);
}

#[test]
fn window_evicts_the_oldest() {
    let mut z = RobustZ::new(&small(ScaleMode::Std), ZMode::Level);
    // 100 then ten 1s, 2s alternating: once 100 has left the 10-point baseline, the scale is 0.5.
    let mut xs = vec![100.0];
    xs.extend((0..10).map(|i| if i % 2 == 0 { 1.0 } else { 2.0 }));
    feed(&mut z, &xs);
    let o = z.update(0, 2.0).unwrap();
    // Baseline 1,2,1,2,...: mean 1.5, σ 0.5 → z(2) = 1.
    assert_eq!(o.scale, Some(0.5));
    assert_eq!(o.z, Some(1.0));
}

#[test]
fn zero_scale_gives_zero_with_std_zero_flag() {
    for mode in [ScaleMode::Std, ScaleMode::Hybrid] {
        let mut z = RobustZ::new(&small(mode), ZMode::Level);
        let o = feed(&mut z, &[5.0, 5.0, 5.0, 5.0, 5.0, 7.0]);
        assert_eq!(o[5].z, Some(0.0), "{mode:?}");
        assert!(o[5].std_zero);
        assert!(!o[4].std_zero, "no flag during warm-up");
    }
}

#[test]
fn delta_mode_standardizes_the_increment() {
    let mut z = RobustZ::new(&small(ScaleMode::Std), ZMode::Delta);
    let o = feed(&mut z, &[10.0, 11.0, 13.0, 16.0, 20.0, 25.0]);
    // Increments from 0: 10, 1, 2, 3, 4 | 5. Baseline mean 4, squared deviations 36+9+4+1+0 = 50,
    // variance 10 → z(5) = (5 − 4)/√10 = 0.31623.
    assert_eq!(
        o.iter().map(|o| o.value).collect::<Vec<_>>(),
        vec![10.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    assert!((o[5].z.unwrap() - 1.0 / 10f64.sqrt()).abs() < 1e-12);
}

#[test]
fn mad_floor_wins_and_is_reported() {
    let mut z = RobustZ::new(&small(ScaleMode::Hybrid), ZMode::Level);
    // ±1 at the same ms: EWMA mean ≈ 0, σ_fast = σ_slow ≈ 1 → blend ≈ 1; window median 0,
    // MAD 1 → floor 1.8 > 1: the floor is the scale. z(0.9) = (0.9 − 0)/1.8 = 0.5.
    let o = feed(&mut z, &[1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 0.9]);
    let last = o[6];
    assert!(last.floor_used);
    assert_eq!(last.sigma_floor, Some(1.8));
    assert_eq!(last.scale, Some(1.8));
    assert!((last.z.unwrap() - 0.5).abs() < 1e-12);
}

#[test]
fn ewma_blend_wins_over_a_zero_mad() {
    let mut z = RobustZ::new(&small(ScaleMode::Hybrid), ZMode::Level);
    // Five 0s and a 10: MAD 0 (floor 0); equal weights at one ms → mean 10/6,
    // σ² = (5·(10/6)² + (50/6)²)/6 = 13.889, σ = 3.7268 both fast and slow.
    let o = feed(&mut z, &[0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0]);
    let last = o[6];
    assert!(!last.floor_used);
    assert_eq!(last.sigma_floor, Some(0.0));
    assert!(
        (last.scale.unwrap() - (125.0f64 / 9.0).sqrt()).abs() < 1e-9,
        "{last:?}"
    );
    // center = median of [0,0,0,0,0,10] = 0 → z = 0.
    assert_eq!(last.z, Some(0.0));
}

#[test]
fn hybrid_blends_fast_and_slow_with_time_decay() {
    let cfg = ZConfig {
        half_life_fast_s: 1.0,
        half_life_slow_s: 1000.0,
        mad_multiplier: 0.0,
        ..small(ScaleMode::Hybrid)
    };
    let mut z = RobustZ::new(&cfg, ZMode::Level);
    // Five ±2 values long ago, five ±0.1 values one hour later: the fast σ has forgotten the ±2
    // (weight 0.5^3600 = 0), the slow one still sees them (weight 0.5^3.6 ≈ 0.08).
    for (i, x) in [2.0, -2.0, 2.0, -2.0, 2.0].into_iter().enumerate() {
        z.update(i as i64, x).unwrap();
    }
    for (i, x) in [0.1, -0.1, 0.1, -0.1, 0.1].into_iter().enumerate() {
        z.update(3_600_000 + i as i64, x).unwrap();
    }
    let (fast, slow) = (z.fast.std(), z.slow.std());
    let o = z.update(3_600_010, 0.0).unwrap();
    assert!(fast < 0.11 && slow > 0.4, "fast {fast} slow {slow}");
    assert_eq!(o.scale, Some(0.2 * fast + 0.8 * slow));
}

#[test]
fn winsorized_at_plus_minus_8() {
    let mut z = RobustZ::new(&small(ScaleMode::Std), ZMode::Level);
    let o = feed(&mut z, &[1.0, 2.0, 3.0, 4.0, 5.0, 1000.0]);
    assert_eq!(o[5].z_raw, Some(8.0)); // (1000 − 3)/√2 = 705 → 8
    let o = z.update(0, -1e6).unwrap();
    assert_eq!(o.z_raw, Some(-8.0));
}

#[test]
fn ema_smooths_the_published_z_only() {
    let cfg = ZConfig {
        ema_alpha: 0.2,
        ..small(ScaleMode::Std)
    };
    let mut z = RobustZ::new(&cfg, ZMode::Level);
    let o = feed(&mut z, &[1.0, 2.0, 3.0, 4.0, 5.0, 1000.0, -1e6]);
    // First scored: z = z_raw = 8 (seed). Next: baseline [1..5, 1000] (mean 169.2, σ 371.5),
    // (−1e6 − 169.2)/371.5 ≈ −2692 → z_raw = −8, z = 0.2·(−8) + 0.8·8 = 4.8.
    assert_eq!(o[5].z, Some(8.0));
    assert_eq!(o[6].z_raw, Some(-8.0));
    assert!((o[6].z.unwrap() - 4.8).abs() < 1e-12);
}

#[test]
fn reset_restarts_warm_up_and_delta_origin() {
    let mut z = RobustZ::new(&small(ScaleMode::Std), ZMode::Delta);
    feed(&mut z, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert!(z.is_warm());
    z.reset();
    assert!(!z.is_warm());
    let o = z.update(0, 7.0).unwrap();
    assert_eq!((o.value, o.z), (7.0, None));
}

#[test]
fn non_finite_input_is_ignored() {
    let mut z = RobustZ::new(&small(ScaleMode::Std), ZMode::Level);
    assert!(z.update(0, f64::NAN).is_none());
    assert!(z.update(0, f64::INFINITY).is_none());
    assert!(z.window.is_empty());
}

proptest! {
    #[test]
    fn z_never_exceeds_the_winsor_limit(
        xs in prop::collection::vec(-1e6f64..1e6, 1..200),
        hybrid in any::<bool>(),
        delta in any::<bool>(),
    ) {
        let cfg = ZConfig {
            window: 20,
            scale_mode: if hybrid { ScaleMode::Hybrid } else { ScaleMode::Std },
            ..ZConfig::default()
        };
        let mut z = RobustZ::new(&cfg, if delta { ZMode::Delta } else { ZMode::Level });
        for (i, x) in xs.iter().enumerate() {
            let o = z.update(i as i64 * 37, *x).unwrap();
            if let (Some(raw), Some(pub_z)) = (o.z_raw, o.z) {
                prop_assert!(raw.abs() <= 8.0 && pub_z.abs() <= 8.0, "{:?}", o);
                prop_assert!(o.scale.unwrap() >= o.sigma_floor.unwrap() || !hybrid);
            }
        }
    }
}
