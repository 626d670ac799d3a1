//! Book sync against real recordings. The strongest check: where the venue's own bookTicker shares an
//! update id with the depth stream, the rebuilt best bid/ask (price and size) must equal it.

mod common;

use common::{fixture, fixture_lines};
use marketprism_model::{Decimal, Exchange, GapCause};
use marketprism_venues::book::{BookSync, SyncOutcome, SyncRule};
use marketprism_venues::parse::Parsed;
use marketprism_venues::{binance, deribit, okx};
use std::collections::BTreeMap;

type Top = (Decimal, Decimal, Decimal, Decimal);

/// Replay snapshot + depth diffs; return the book's best bid/ask after each applied update id.
fn replay_binance(
    ex: Exchange,
    rule: SyncRule,
    snapshot: &str,
    depth: &str,
    skip: Option<usize>,
) -> (BTreeMap<i64, Top>, Vec<SyncOutcome>) {
    let mut sync = BookSync::new(rule, 5000, false);
    let snap = binance::parse::parse_depth_snapshot(&fixture(snapshot)).unwrap();
    let mut outcomes = vec![sync.on_snapshot(snap)];
    let mut tops = BTreeMap::new();
    for (i, line) in fixture_lines(depth).iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        let Parsed::BookUpdate(_, u) =
            binance::parse::parse_frame(&common::recorded_instruments(ex), ex, line, 0).unwrap()
        else {
            panic!()
        };
        let outcome = sync.on_update(u);
        if matches!(outcome, SyncOutcome::Applied | SyncOutcome::Synced { .. }) {
            let b = sync.book();
            assert!(!b.is_crossed());
            let (bb, bq) = b.bids.best().unwrap();
            let (ab, aq) = b.asks.best().unwrap();
            tops.insert(b.last_id, (bb, bq, ab, aq));
        }
        outcomes.push(outcome);
    }
    (tops, outcomes)
}

fn ticker_oracle(file: &str) -> Vec<(i64, Top)> {
    fixture_lines(file)
        .iter()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let d = &v["data"];
            let dec = |k: &str| d[k].as_str().unwrap().parse::<Decimal>().unwrap();
            (
                d["u"].as_i64().unwrap(),
                (dec("b"), dec("B"), dec("a"), dec("A")),
            )
        })
        .collect()
}

/// Returns how many bookTicker updates were compared.
fn assert_matches_oracle(tops: &BTreeMap<i64, Top>, oracle: &str) -> usize {
    let mut compared = 0;
    for (u, ticker) in ticker_oracle(oracle) {
        if let Some(top) = tops.get(&u) {
            assert_eq!(top, &ticker, "best bid/ask at update id {u}");
            compared += 1;
        }
    }
    compared
}

#[test]
fn binance_usdm_rebuilt_book_equals_book_ticker() {
    let mut total = 0;
    for sym in ["akrousdt", "ctkusdt"] {
        let (tops, outcomes) = replay_binance(
            Exchange::BinanceDerivatives,
            SyncRule::BinanceFutures,
            &format!("binance_usdm/depth_snapshot/bmoscon-cryptofeed__{sym}_rest_depth1000.json"),
            &format!("binance_usdm/depthUpdate/bmoscon-cryptofeed__{sym}_depth100ms.jsonl"),
            None,
        );
        assert!(
            !outcomes
                .iter()
                .any(|o| matches!(o, SyncOutcome::Resync(_) | SyncOutcome::NeedSnapshot { .. })),
            "{sym}: {outcomes:?}"
        );
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, SyncOutcome::Synced { .. }))
                .count(),
            1
        );
        assert!(
            tops.len() > 150,
            "{sym}: most diffs applied ({})",
            tops.len()
        );
        total += assert_matches_oracle(
            &tops,
            &format!("binance_usdm/bookTicker_oracle/bmoscon-cryptofeed__{sym}_bookTicker.jsonl"),
        );
    }
    eprintln!("usdm: {total} bookTicker updates compared");
    assert!(total >= 20, "compared only {total} bookTicker updates");
}

#[test]
fn binance_spot_rebuilt_book_equals_book_ticker() {
    let mut total = 0;
    for sym in ["lrcbtc", "blzeth"] {
        let (tops, outcomes) = replay_binance(
            Exchange::BinanceSpot,
            SyncRule::BinanceSpot,
            &format!("binance_spot/depth_snapshot/bmoscon-cryptofeed__{sym}_rest_depth1000.json"),
            &format!("binance_spot/depthUpdate/bmoscon-cryptofeed__{sym}_depth100ms.jsonl"),
            None,
        );
        assert!(
            !outcomes
                .iter()
                .any(|o| matches!(o, SyncOutcome::Resync(_) | SyncOutcome::NeedSnapshot { .. })),
            "{sym}: {outcomes:?}"
        );
        total += assert_matches_oracle(
            &tops,
            &format!("binance_spot/bookTicker_oracle/bmoscon-cryptofeed__{sym}_bookTicker.jsonl"),
        );
    }
    eprintln!("spot: {total} bookTicker updates compared");
    assert!(total >= 3, "compared only {total} bookTicker updates");
}

#[test]
fn a_missing_diff_is_detected_as_a_sequence_gap() {
    let (_, outcomes) = replay_binance(
        Exchange::BinanceDerivatives,
        SyncRule::BinanceFutures,
        "binance_usdm/depth_snapshot/bmoscon-cryptofeed__akrousdt_rest_depth1000.json",
        "binance_usdm/depthUpdate/bmoscon-cryptofeed__akrousdt_depth100ms.jsonl",
        Some(50),
    );
    let gaps: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            SyncOutcome::Resync(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(
        gaps.len(),
        1,
        "exactly one resync, then buffering: {outcomes:?}"
    );
    assert_eq!(gaps[0].cause, GapCause::SequenceGap);
    assert_eq!(
        outcomes[51],
        SyncOutcome::Resync(gaps[0].clone()),
        "detected at the very next diff"
    );
    assert!(
        outcomes[52..].iter().all(|o| *o == SyncOutcome::Buffered),
        "buffered until a new snapshot"
    );

    let (_, outcomes) = replay_binance(
        Exchange::BinanceSpot,
        SyncRule::BinanceSpot,
        "binance_spot/depth_snapshot/bmoscon-cryptofeed__lrcbtc_rest_depth1000.json",
        "binance_spot/depthUpdate/bmoscon-cryptofeed__lrcbtc_depth100ms.jsonl",
        Some(5),
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, SyncOutcome::Resync(d) if d.cause == GapCause::SequenceGap)),
        "{outcomes:?}"
    );
}

#[test]
fn resync_keeps_buffered_events_and_recovers_with_a_newer_snapshot() {
    // Futures: drop diff 50, resync; the akro snapshot replayed again is too old for the buffer.
    let lines =
        fixture_lines("binance_usdm/depthUpdate/bmoscon-cryptofeed__akrousdt_depth100ms.jsonl");
    let updates: Vec<_> = lines
        .iter()
        .map(|l| {
            match binance::parse::parse_frame(
                &common::recorded_instruments(Exchange::BinanceDerivatives),
                Exchange::BinanceDerivatives,
                l,
                0,
            )
            .unwrap()
            {
                Parsed::BookUpdate(_, u) => u,
                _ => panic!(),
            }
        })
        .collect();
    let snap = binance::parse::parse_depth_snapshot(&fixture(
        "binance_usdm/depth_snapshot/bmoscon-cryptofeed__akrousdt_rest_depth1000.json",
    ))
    .unwrap();
    let mut sync = BookSync::new(SyncRule::BinanceFutures, 1000, false);
    sync.on_snapshot(snap.clone());
    let mut reference = BookSync::new(SyncRule::BinanceFutures, 1000, false);
    reference.on_snapshot(snap.clone());
    for (i, u) in updates.iter().enumerate() {
        reference.on_update(u.clone());
        if i != 50 {
            sync.on_update(u.clone());
        }
    }
    assert!(!sync.is_live());
    let buffered = sync.buffered();
    assert_eq!(
        buffered,
        updates.len() - 51,
        "the offending diff and every later one are kept"
    );
    // The old snapshot is too old for the buffer: the first kept diff does not bridge it.
    assert!(matches!(
        sync.on_snapshot(snap),
        SyncOutcome::NeedSnapshot { .. }
    ));
    // A newer snapshot: the uninterrupted book after diff 55. Diffs with u < lastUpdateId are dropped,
    // diff 55 itself (u == lastUpdateId) bridges and is re-applied, as the USD-M rule says.
    let mut at = BookSync::new(SyncRule::BinanceFutures, 1000, false);
    at.on_snapshot(
        binance::parse::parse_depth_snapshot(&fixture(
            "binance_usdm/depth_snapshot/bmoscon-cryptofeed__akrousdt_rest_depth1000.json",
        ))
        .unwrap(),
    );
    for u in &updates[..=55] {
        at.on_update(u.clone());
    }
    let top = at.book().top(5000);
    let newer = marketprism_venues::book::BookSnapshot {
        last_id: at.book().last_id,
        ts_ms: None,
        bids: top.bids.iter().map(|l| (l.0, l.1)).collect(),
        asks: top.asks.iter().map(|l| (l.0, l.1)).collect(),
        checksum: None,
    };
    let outcome = sync.on_snapshot(newer);
    assert!(
        matches!(outcome, SyncOutcome::Synced { replayed } if replayed == updates.len() - 55),
        "{outcome:?}"
    );
    assert_eq!(
        sync.book().top(50),
        reference.book().top(50),
        "recovered book equals the uninterrupted one"
    );
}

#[test]
fn okx_recorded_books_every_crc32_matches() {
    let mut sync = BookSync::new(SyncRule::OkxWsSnapshot, 400, true);
    let mut verified = 0;
    for line in fixture_lines("okx/books/bmoscon-cryptofeed__BTC-USDT_books.jsonl") {
        let outcome = match okx::parse::parse_frame(
            &common::recorded_instruments(Exchange::OkxSpot),
            Exchange::OkxSpot,
            &line,
            0,
        )
        .unwrap()
        {
            Parsed::BookSnapshot(_, s) => {
                assert!(s.checksum.is_some());
                sync.on_snapshot(s)
            }
            Parsed::BookUpdate(_, u) => {
                assert!(u.checksum.is_some());
                sync.on_update(u)
            }
            other => panic!("{other:?}"),
        };
        assert!(
            matches!(outcome, SyncOutcome::Applied | SyncOutcome::Synced { .. }),
            "{outcome:?}"
        );
        verified += 1;
    }
    assert_eq!(verified, 98);
}

#[test]
fn okx_checksum_mismatch_forces_resync_but_zero_is_absent() {
    let lines = fixture_lines("okx/books/bmoscon-cryptofeed__BTC-USDT_books.jsonl");
    let Parsed::BookSnapshot(_, snap) = okx::parse::parse_frame(
        &common::recorded_instruments(Exchange::OkxSpot),
        Exchange::OkxSpot,
        &lines[0],
        0,
    )
    .unwrap() else {
        panic!()
    };
    let Parsed::BookUpdate(_, mut u) = okx::parse::parse_frame(
        &common::recorded_instruments(Exchange::OkxSpot),
        Exchange::OkxSpot,
        &lines[1],
        0,
    )
    .unwrap() else {
        panic!()
    };
    let mut sync = BookSync::new(SyncRule::OkxWsSnapshot, 400, true);
    sync.on_snapshot(snap.clone());
    // A level inside the checksummed top 25 that the venue never sent.
    let (best, size) = sync.book().bids.best().unwrap();
    u.bids.retain(|l| l.0 != best);
    u.bids.push((best, size + Decimal::ONE));
    let outcome = sync.on_update(u.clone());
    assert!(
        matches!(&outcome, SyncOutcome::Resync(d) if d.cause == GapCause::Integrity),
        "{outcome:?}"
    );
    // Same corruption, checksum field 0 (OKX after 2026-06-23) → parsed as absent → not verified;
    // this 2022 recording has no prevSeqId either, so nothing can prove continuity: withheld, never
    // applied as if it could be trusted.
    let mut sync = BookSync::new(SyncRule::OkxWsSnapshot, 400, true);
    sync.on_snapshot(snap);
    u.checksum = None;
    assert_eq!(u.prev_id, None, "recorded before seqId existed");
    let outcome = sync.on_update(u);
    assert!(
        matches!(&outcome, SyncOutcome::Resync(d) if d.unprovable && d.cause == GapCause::Integrity),
        "{outcome:?}"
    );
    assert!(!sync.is_live());
}

#[test]
fn deribit_change_ids() {
    for file in [
        "deribit/book/bmoscon-cryptofeed__BTC-31DEC21-34000-P_book_raw.jsonl",
        "deribit/book/nautilus_trader__BTC-PERPETUAL_snapshot_delta_docstyle.jsonl",
    ] {
        let mut sync = BookSync::new(SyncRule::Deribit, 400, false);
        for line in fixture_lines(file) {
            let outcome = match deribit::parse::parse_frame(
                &common::recorded_instruments(Exchange::DeribitDerivatives),
                &line,
                0,
            )
            .unwrap()
            {
                Parsed::BookSnapshot(_, s) => sync.on_snapshot(s),
                Parsed::BookUpdate(_, u) => sync.on_update(u),
                other => panic!("{other:?}"),
            };
            assert!(
                matches!(outcome, SyncOutcome::Applied | SyncOutcome::Synced { .. }),
                "{file}: {outcome:?}"
            );
        }
    }
    // This recording skips changes between its two messages: prev_change_id != change_id.
    let mut sync = BookSync::new(SyncRule::Deribit, 400, false);
    let lines = fixture_lines(
        "deribit/book/crypto-msg-parser__BTC-PERPETUAL_100ms_snapshot_then_change.jsonl",
    );
    let Parsed::BookSnapshot(_, s) = deribit::parse::parse_frame(
        &common::recorded_instruments(Exchange::DeribitDerivatives),
        &lines[0],
        0,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(sync.on_snapshot(s), SyncOutcome::Synced { replayed: 0 });
    let Parsed::BookUpdate(_, u) = deribit::parse::parse_frame(
        &common::recorded_instruments(Exchange::DeribitDerivatives),
        &lines[1],
        0,
    )
    .unwrap() else {
        panic!()
    };
    assert!(
        matches!(sync.on_update(u), SyncOutcome::Resync(d) if d.cause == GapCause::SequenceGap)
    );
    assert!(sync.book().bids.is_empty(), "book dropped on resync");
}
