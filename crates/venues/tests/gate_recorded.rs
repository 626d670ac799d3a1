//! Gate on real frames: the recorded spot session (cryptofeed, 2021-04-22) through the parser and the
//! real book sync, and the futures documentation examples (`fixtures/gate/docexample_*`).

mod common;

use common::{fixture, fixture_lines, recorded_instruments};
use marketprism_model::instruments::SizeRule;
use marketprism_model::{DataType, Decimal, Exchange, GapCause, MarketType, Payload, Side};
use marketprism_venues::book::{BookSync, SyncOutcome, SyncRule};
use marketprism_venues::gate;
use marketprism_venues::parse::{Control, Parsed};
use std::str::FromStr;

const PAIRS: [&str; 10] = [
    "BTC_USDC",
    "DIS_USDT",
    "FAST_USDT",
    "HAI_ETH",
    "INK_USDT",
    "NANO_USDT",
    "NEO_BTC",
    "OMG_USDT",
    "QTUM3S_USDT",
    "ZKS_ETH",
];

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn parse(ex: Exchange, line: &str) -> Parsed {
    gate::parse::parse_frame(&recorded_instruments(ex), ex, line, 0)
        .unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// Snapshot then every recorded update of one pair through the real sync; `skip` leaves one out.
fn replay(pair: &str, skip: Option<usize>) -> (BookSync, Vec<SyncOutcome>, i64) {
    let mut sync = BookSync::new(SyncRule::Gate, 5_000, false);
    let snap = gate::parse::parse_rest_book(
        &fixture(&format!("gate_spot/rest/spot_order_book__{pair}.json")),
        None,
    )
    .unwrap();
    let mut outcomes = vec![sync.on_snapshot(snap)];
    let mut last_u = 0;
    for (i, line) in fixture_lines(&format!("gate_spot/spot.order_book_update/{pair}.jsonl"))
        .iter()
        .enumerate()
    {
        if Some(i) == skip {
            continue;
        }
        let Parsed::BookUpdate(sym, u) = parse(Exchange::GateSpot, line) else {
            panic!("{pair}: not a book update: {line}")
        };
        assert_eq!(sym.as_str(), pair.replace('_', "-"));
        last_u = u.last_id;
        outcomes.push(sync.on_update(u));
        if sync.is_live() {
            assert!(!sync.book().is_crossed(), "{pair}: crossed after {last_u}");
        }
    }
    (sync, outcomes, last_u)
}

#[test]
fn every_recorded_chain_continues_its_rest_snapshot() {
    let mut applied = 0;
    for pair in PAIRS {
        let (sync, outcomes, last_u) = replay(pair, None);
        assert!(
            !outcomes
                .iter()
                .any(|o| matches!(o, SyncOutcome::Resync(_) | SyncOutcome::NeedSnapshot { .. })),
            "{pair}: {outcomes:?}"
        );
        let snap_id = gate::parse::parse_rest_book(
            &fixture(&format!("gate_spot/rest/spot_order_book__{pair}.json")),
            None,
        )
        .unwrap()
        .last_id;
        if last_u > snap_id {
            assert!(sync.is_live(), "{pair}: book not live");
            assert_eq!(
                sync.book().last_id,
                last_u,
                "{pair}: the book reflects the last update"
            );
        } else {
            // Every recorded update is already in the snapshot (`u < id + 1`): nothing bridges yet.
            assert!(
                outcomes[1..]
                    .iter()
                    .all(|o| matches!(o, SyncOutcome::Buffered | SyncOutcome::Ignored)),
                "{pair}: {outcomes:?}"
            );
        }
        applied += outcomes
            .iter()
            .filter(|o| matches!(o, SyncOutcome::Applied))
            .count();
    }
    assert!(
        applied > 100,
        "only {applied} updates applied on top of snapshots"
    );
}

#[test]
fn a_lost_recorded_update_is_a_sequence_gap() {
    let (_, outcomes, _) = replay("OMG_USDT", Some(25));
    let gaps: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            SyncOutcome::Resync(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len(), 1, "{outcomes:?}");
    assert_eq!(gaps[0].cause, GapCause::SequenceGap);
}

#[test]
fn recorded_trades_have_millisecond_times_and_sides() {
    let mut n = 0;
    for pair in ["DIS_USDT", "FAST_USDT", "NANO_USDT", "NEO_BTC", "ZKS_ETH"] {
        for line in fixture_lines(&format!("gate_spot/spot.trades/{pair}.jsonl")) {
            let raw: serde_json::Value = serde_json::from_str(&line).unwrap();
            let Parsed::Event(e) = parse(Exchange::GateSpot, &line) else {
                panic!("{line}")
            };
            let Payload::Trade(t) = &e.payload else {
                panic!()
            };
            let r = &raw["result"];
            let ms_text = r["create_time_ms"].as_str().unwrap();
            assert_eq!(e.ts_ms.to_string(), ms_text.split('.').next().unwrap());
            assert_eq!(e.ts_ms / 1_000, r["create_time"].as_i64().unwrap());
            let side = if r["side"] == "buy" {
                Side::Buy
            } else {
                Side::Sell
            };
            assert_eq!(t.side, side);
            assert_eq!(t.trade_id, r["id"].to_string());
            assert_eq!(t.price, d(r["price"].as_str().unwrap()));
            assert_eq!(t.quantity, d(r["amount"].as_str().unwrap()));
            assert_eq!(e.symbol.as_str(), pair.replace('_', "-"));
            n += 1;
        }
    }
    assert_eq!(n, 9);
}

#[test]
fn recorded_acks_are_acks() {
    for ch in ["spot.trades", "spot.order_book_update", "spot.tickers"] {
        for line in fixture_lines(&format!("gate_spot/{ch}/subscribe_acks.jsonl")) {
            assert_eq!(
                parse(Exchange::GateSpot, &line),
                Parsed::Control(Control::Ack { id: ch.into() })
            );
        }
    }
}

#[test]
fn recorded_currency_pairs_list() {
    let body = fixture("gate_spot/rest/spot_currency_pairs.json");
    let list = marketprism_venues::instruments::parse_listing(Exchange::GateSpot, &body).unwrap();
    let raw: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let untradable = raw
        .iter()
        .filter(|r| r["trade_status"] == "untradable")
        .count();
    assert_eq!(untradable, 44);
    assert_eq!(list.len(), raw.len() - untradable);
    let btc = list.iter().find(|i| i.venue_symbol == "BTC_USDC").unwrap();
    assert_eq!(
        (
            btc.symbol.as_str(),
            btc.market_type,
            btc.size,
            btc.tick_size,
            btc.lot_size
        ),
        (
            "BTC-USDC",
            MarketType::Spot,
            SizeRule::Base,
            Some(d("0.01")),
            Some(d("0.0001"))
        )
    );
    assert!(list.iter().all(|i| i.symbol.as_str().contains('-')));
}

#[test]
fn docexample_futures_book_syncs_in_base_units() {
    let table = recorded_instruments(Exchange::GateDerivatives);
    let inst = table.by_venue("BTC_USDT").unwrap();
    assert_eq!(inst.size, SizeRule::ContractsOfBase(d("0.0001")));
    let snap = gate::parse::parse_rest_book(
        &fixture("gate/docexample_futures_order_book_rest.json"),
        Some(inst),
    )
    .unwrap();
    assert_eq!(snap.asks[0], (d("54742"), d("0.012")));
    let mut sync = BookSync::new(SyncRule::Gate, 100, false);
    sync.on_snapshot(snap);
    for line in fixture_lines("gate/docexample_futures_order_book_update.jsonl") {
        let Parsed::BookUpdate(_, u) = parse(Exchange::GateDerivatives, &line) else {
            panic!()
        };
        let o = sync.on_update(u);
        assert!(
            matches!(o, SyncOutcome::Applied | SyncOutcome::Synced { .. }),
            "{o:?}"
        );
    }
    let b = sync.book();
    assert_eq!(b.last_id, 2_517_661_120);
    assert_eq!(b.bids.best(), Some((d("54664.5"), d("5.8"))));
    assert_eq!(b.asks.best(), Some((d("54750"), d("0.0009"))));
}

#[test]
fn docexample_futures_frames() {
    let ex = Exchange::GateDerivatives;
    let mut trades = Vec::new();
    for line in fixture_lines("gate/docexample_futures_trades.jsonl") {
        let Parsed::Events(v) = parse(ex, &line) else {
            panic!()
        };
        trades.extend(v);
    }
    let sides: Vec<_> = trades
        .iter()
        .map(|e| match &e.payload {
            Payload::Trade(t) => (t.side, t.quantity, t.raw_quantity),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        sides,
        [
            (Side::Sell, d("0.0108"), d("108")),
            (Side::Sell, d("0.0108"), d("108")),
            (Side::Buy, d("0.005"), d("50"))
        ]
    );
    assert_eq!(trades[2].ts_ms, 1_545_136_464_200);
    let line = fixture("gate/docexample_futures_tickers.jsonl");
    let Parsed::Events(v) = parse(ex, &line) else {
        panic!()
    };
    let types: Vec<_> = v.iter().map(|e| e.data_type()).collect();
    assert_eq!(types, [DataType::FundingRates, DataType::OpenInterests]);
    let mut liqs = Vec::new();
    for line in fixture_lines("gate/docexample_futures_public_liquidates.jsonl") {
        let Parsed::Events(v) = parse(ex, &line) else {
            panic!()
        };
        liqs.extend(v);
    }
    let got: Vec<_> = liqs
        .iter()
        .map(|e| match &e.payload {
            Payload::Liquidation(l) => (l.side, l.quantity, e.ts_ms),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        got,
        [
            (Side::Sell, d("0.0124"), 1_541_486_601_123),
            (Side::Sell, d("0.001"), 1_541_486_601_456),
            (Side::Buy, d("0.01245"), 1_541_486_601_123)
        ]
    );
    let controls: Vec<_> = fixture_lines("gate/docexample_futures_control.jsonl")
        .iter()
        .map(|l| parse(ex, l))
        .collect();
    assert_eq!(
        controls,
        [
            Parsed::Control(Control::Ack {
                id: "futures.tickers".into()
            }),
            Parsed::Control(Control::Ack { id: "1".into() }),
            Parsed::Control(Control::Pong)
        ]
    );
}
