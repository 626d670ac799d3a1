use super::*;
use crate::crd::{GroupMember, ShardGroup};
use crate::fixtures::{exchange, spec, symbols};

fn owner_of(plan: &[Shard]) -> BTreeMap<Unit, String> {
    plan.iter()
        .flat_map(|s| s.units.iter().map(|u| (u.clone(), s.name.clone())))
        .collect()
}

fn assert_covers_once(spec: &CollectorSetSpec, plan: &[Shard]) {
    let planned: Vec<&Unit> = plan.iter().flat_map(|s| &s.units).collect();
    let unique: BTreeSet<&Unit> = planned.iter().copied().collect();
    assert_eq!(planned.len(), unique.len(), "a unit is planned twice");
    let declared: usize = spec.exchanges.iter().map(|e| e.symbols.len()).sum();
    assert_eq!(planned.len(), declared, "every declared unit is planned");
}

#[test]
fn plans_ceil_of_units_over_capacity_and_respects_capacity() {
    let s = spec(
        vec![
            exchange(Venue::BinanceSpot, symbols(23)),
            exchange(Venue::OkxSpot, symbols(10)),
        ],
        10,
    );
    let p = plan(&s, &[]);
    assert_eq!(p.len(), 4, "33 units / 10 per shard");
    assert!(p.iter().all(|s| s.units.len() <= 10));
    assert_eq!(
        p.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["s0", "s1", "s2", "s3"]
    );
    assert_covers_once(&s, &p);
    assert_eq!(p, plan(&s, &[]), "deterministic");
}

#[test]
fn adding_a_symbol_moves_no_other_symbol() {
    let mut s = spec(vec![exchange(Venue::BinanceSpot, symbols(35))], 10);
    let first = plan(&s, &[]);
    s.exchanges[0].symbols.push("NEW-USDT".into());
    let second = plan(&s, &to_status(&first));
    assert_covers_once(&s, &second);
    let (a, b) = (owner_of(&first), owner_of(&second));
    for (unit, shard) in &a {
        assert_eq!(&b[unit], shard, "{unit} moved");
    }
    assert_eq!(second.len(), 4);
}

#[test]
fn growing_past_capacity_opens_a_shard_without_moving_others() {
    let mut s = spec(vec![exchange(Venue::BinanceSpot, symbols(20))], 10);
    let first = plan(&s, &[]);
    assert_eq!(first.len(), 2);
    s.exchanges[0]
        .symbols
        .extend(["X-USDT".to_string(), "Y-USDT".to_string()]);
    let second = plan(&s, &to_status(&first));
    assert_eq!(second.len(), 3);
    let (a, b) = (owner_of(&first), owner_of(&second));
    let moved = a.iter().filter(|(u, sh)| &b[*u] != *sh).count();
    assert_eq!(moved, 0);
    assert_eq!(b[&Unit::new(Venue::BinanceSpot, "X-USDT")], "s2");
}

#[test]
fn removing_symbols_moves_only_those_of_a_dropped_shard() {
    let mut s = spec(vec![exchange(Venue::BinanceSpot, symbols(30))], 10);
    let first = plan(&s, &[]);
    let a = owner_of(&first);
    // Remove 12 symbols: 18 remain, 2 shards wanted.
    s.exchanges[0].symbols.truncate(18);
    let second = plan(&s, &to_status(&first));
    assert_covers_once(&s, &second);
    assert_eq!(second.len(), 2);
    let kept: BTreeSet<&str> = second.iter().map(|s| s.name.as_str()).collect();
    let b = owner_of(&second);
    for (unit, shard) in &b {
        if kept.contains(a[unit].as_str()) {
            assert_eq!(&a[unit], shard, "{unit} moved off a surviving shard");
        }
    }
}

#[test]
fn previous_plan_with_unknown_or_stale_entries_is_tolerated() {
    let s = spec(vec![exchange(Venue::BinanceSpot, symbols(5))], 10);
    let previous = vec![
        ShardStatus {
            name: "s7".into(),
            symbols: vec![
                "binance_spot/S1-USDT".into(),
                "binance_spot/GONE-USDT".into(),
                "garbage".into(),
            ],
            ..ShardStatus::default()
        },
        ShardStatus {
            name: "s2".into(),
            symbols: vec!["binance_spot/S1-USDT".into()],
            ..ShardStatus::default()
        },
    ];
    let p = plan(&s, &previous);
    assert_covers_once(&s, &p);
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].name, "s7",
        "the shard that still holds a live unit is kept"
    );
}

#[test]
fn shrinking_capacity_replans_within_the_new_bound() {
    let mut s = spec(vec![exchange(Venue::OkxSpot, symbols(20))], 20);
    let first = plan(&s, &[]);
    s.sharding.max_symbols_per_shard = 5;
    let second = plan(&s, &to_status(&first));
    assert_eq!(second.len(), 4);
    assert!(second.iter().all(|s| s.units.len() <= 5));
    assert_covers_once(&s, &second);
}

#[test]
fn explicit_groups_get_their_own_shard() {
    let mut s = spec(
        vec![
            exchange(Venue::BinanceSpot, symbols(12)),
            exchange(Venue::BinanceDerivatives, symbols(3)),
        ],
        10,
    );
    s.sharding.groups = vec![ShardGroup {
        name: "majors".into(),
        members: vec![
            GroupMember {
                venue: Venue::BinanceSpot,
                symbols: vec!["S0-USDT".into()],
            },
            GroupMember {
                venue: Venue::BinanceDerivatives,
                symbols: vec!["S0-USDT".into(), "UNDECLARED-USDT".into()],
            },
        ],
    }];
    let p = plan(&s, &[]);
    assert_covers_once(&s, &p);
    let g = p.iter().find(|s| s.name == "g-majors").unwrap();
    assert_eq!(
        g.units,
        vec![
            Unit::new(Venue::BinanceSpot, "S0-USDT"),
            Unit::new(Venue::BinanceDerivatives, "S0-USDT"),
        ]
    );
    assert_eq!(
        p.len(),
        3,
        "13 ungrouped units in 2 automatic shards + 1 group"
    );
}

#[test]
fn fresh_plans_spread_symbols_over_shards() {
    let s = spec(vec![exchange(Venue::BinanceSpot, symbols(100))], 10);
    let p = plan(&s, &[]);
    assert_eq!(p.len(), 10);
    assert!(
        p.iter().all(|s| s.units.len() == 10),
        "full shards when exact"
    );
    assert_eq!(
        Unit::parse("okx_spot/BTC-USDT").unwrap().to_string(),
        "okx_spot/BTC-USDT"
    );
    assert_eq!(Unit::parse("nope/BTC-USDT"), None);
}
