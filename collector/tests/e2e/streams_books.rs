//! Books that cannot be trusted are never published: OKX frames without `prevSeqId` (judged by the
//! checksum when there is one, withheld when there is none), a REST snapshot without `seqId` (reported
//! when the book does not sync in time), and a checksum that never matches (resyncs bounded).

use crate::books::assert_book_matches_sim;
use crate::checks::assert_invariants;
use crate::common::{Rig, gaps, metric, sim_config};
use marketprism_config::{OkxBookMode, OkxSnapshotSource, SimulatorConfig};
use marketprism_model::Exchange::OkxSpot;
use marketprism_model::{DataType, Event, GapCause, Payload};
use marketprism_simulator::{Fault, Target};
use std::time::Duration;

const TYPES: [DataType; 2] = [DataType::Orderbooks, DataType::Trades];

fn mode(okx_book_mode: OkxBookMode) -> SimulatorConfig {
    SimulatorConfig {
        okx_book_mode,
        ..sim_config()
    }
}

fn book_gaps_of<'a>(events: &'a [Event], symbol: &str) -> Vec<&'a marketprism_model::Gap> {
    gaps(events, OkxSpot)
        .into_iter()
        .filter(|(s, g)| *s == symbol && g.data_type == DataType::Orderbooks)
        .map(|(_, g)| g)
        .collect()
}

fn status(rig: &Rig, symbol: &str) -> Option<(bool, String)> {
    rig.health
        .snapshot()
        .get(&format!("stream:okx_spot/orderbooks/{symbol}"))
        .map(|s| (s.ready, s.reason.clone()))
}

/// Frames without `prevSeqId` but with the venue's non-zero checksum (verified by default): a lost
/// update is caught by the checksum (an `integrity` gap), never published as a silently wrong book.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_frames_without_seq_ids_are_judged_by_the_checksum() {
    let mut rig = Rig::start_with(mode(OkxBookMode::Legacy), &[(OkxSpot, &TYPES)], |c| {
        c.orderbook.okx_snapshot = OkxSnapshotSource::Ws;
    })
    .await;
    rig.wait_streaming(OkxSpot, 0).await;
    // One update lost, then 40 without sequence ids: only the checksum can notice the loss.
    let btc = Target::symbol(OkxSpot, "BTC-USDT");
    rig.sim.inject(Fault::SequenceGap {
        target: btc.clone(),
        messages: 1,
    });
    rig.sim.inject(Fault::StripSeqIds {
        target: btc,
        messages: 40,
    });
    rig.wait_for("the lost update caught by the checksum", |ev| {
        book_gaps_of(ev, "BTC-USDT")
            .iter()
            .any(|g| g.cause == GapCause::Integrity && g.detail.contains("checksum mismatch"))
    })
    .await;
    // Sequence ids come back: the book (whose ids the stripped frames could not carry) resyncs once
    // more and is exact.
    rig.settle(Duration::from_secs(3)).await;
    assert_book_matches_sim(&mut rig, OkxSpot, "BTC-USDT").await;
    let events = rig.stop().await;
    assert!(book_gaps_of(&events, "ETH-USDT").is_empty());
    assert!(
        book_gaps_of(&events, "BTC-USDT")
            .iter()
            .all(|g| !g.detail.contains("unprovable")),
        "the checksum proves continuity"
    );
    assert_invariants(&events);
}

/// Frames without `prevSeqId` and with checksum 0: nothing can prove continuity, so the book is
/// withheld (one `integrity` gap saying so, a metric, not-ready) instead of published as if it could.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_unprovable_book_is_withheld_and_reported() {
    let mut rig = Rig::start_with(mode(OkxBookMode::ZeroChecksum), &[(OkxSpot, &TYPES)], |c| {
        c.orderbook.okx_snapshot = OkxSnapshotSource::Ws;
    })
    .await;
    rig.wait_streaming(OkxSpot, 0).await;
    rig.sim.inject(Fault::StripSeqIds {
        target: Target::symbol(OkxSpot, "BTC-USDT"),
        messages: 1_000_000,
    });
    rig.wait_for("unprovable reported", |ev| {
        book_gaps_of(ev, "BTC-USDT")
            .iter()
            .any(|g| g.cause == GapCause::Integrity && g.detail.contains("unprovable"))
    })
    .await;
    let at = rig.events.len();
    rig.settle(Duration::from_secs(2)).await;
    let n = rig.events.len();
    rig.wait_for("ETH books and BTC trades still flow", |ev| {
        ev[n..]
            .iter()
            .any(|e| e.symbol.as_str() == "ETH-USDT" && e.data_type() == DataType::Orderbooks)
            && ev[n..]
                .iter()
                .any(|e| e.symbol.as_str() == "BTC-USDT" && e.data_type() == DataType::Trades)
    })
    .await;
    let published_after = rig.events[at..]
        .iter()
        .filter(|e| e.symbol.as_str() == "BTC-USDT" && matches!(e.payload, Payload::Orderbook(_)))
        .count();
    assert_eq!(
        published_after, 0,
        "a book that cannot be trusted is not published"
    );
    let (ready, reason) = status(&rig, "BTC-USDT").expect("reported");
    assert!(!ready && reason.contains("unprovable"), "{reason}");
    assert!(
        metric(
            "marketprism_orderbook_unprovable_total",
            &["exchange=\"okx_spot\"", "symbol=\"BTC-USDT\""]
        ) >= 1
    );
    let events = rig.stop().await;
    assert_eq!(
        book_gaps_of(&events, "BTC-USDT").len(),
        1,
        "reported once, not a resync storm"
    );
    assert!(book_gaps_of(&events, "ETH-USDT").is_empty());
    assert_invariants(&events);
}

/// REST snapshots without `seqId` are rejected: past `orderbook.sync_timeout_s` that is a `rejected`
/// gap naming the reason, a metric and not-ready for the book; when a usable snapshot comes the book
/// syncs, is exact and ready again. Trades are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_snapshot_without_seq_id_is_reported_then_recovers() {
    let mut rig = Rig::start_prepared(
        mode(OkxBookMode::RestSnapshot),
        &[(OkxSpot, &TYPES)],
        |c| {
            c.symbols = vec![marketprism_model::Symbol::new("BTC-USDT").unwrap()];
            c.orderbook.sync_timeout_s = 2;
        },
        |sim| {
            sim.inject(Fault::SnapshotWithoutSeqId {
                exchange: OkxSpot,
                requests: 6,
            });
        },
    )
    .await;
    rig.wait_for("sync overdue reported", |ev| {
        book_gaps_of(ev, "BTC-USDT")
            .iter()
            .any(|g| g.cause == GapCause::Rejected && g.detail.contains("seqId"))
    })
    .await;
    let (ready, reason) = status(&rig, "BTC-USDT").expect("reported");
    assert!(!ready && reason.contains("not synced"), "{reason}");
    assert!(
        metric(
            "marketprism_orderbook_sync_overdue_total",
            &["exchange=\"okx_spot\"", "symbol=\"BTC-USDT\""]
        ) >= 1
    );
    assert!(
        rig.events.iter().any(|e| e.data_type() == DataType::Trades),
        "trades flow meanwhile"
    );
    assert_book_matches_sim(&mut rig, OkxSpot, "BTC-USDT").await;
    assert_eq!(
        status(&rig, "BTC-USDT").map(|s| s.0),
        Some(true),
        "ready once synced"
    );
    let events = rig.stop().await;
    assert_eq!(
        book_gaps_of(&events, "BTC-USDT").len(),
        1,
        "{:?}",
        book_gaps_of(&events, "BTC-USDT")
    );
    assert_invariants(&events);
}

/// A checksum that never matches (every frame corrupted): resyncs back off per stream instead of
/// storming (the issue saw 31,980 in 12 s); the other symbol is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_checksum_storm_is_bounded() {
    let mut rig = Rig::start_with(mode(OkxBookMode::Legacy), &[(OkxSpot, &TYPES)], |c| {
        c.orderbook.okx_snapshot = OkxSnapshotSource::Ws;
    })
    .await;
    rig.wait_streaming(OkxSpot, 0).await;
    rig.sim.inject(Fault::CorruptChecksum {
        target: Target::symbol(OkxSpot, "BTC-USDT"),
        messages: 1_000_000,
    });
    rig.wait_for("first integrity gap", |ev| {
        book_gaps_of(ev, "BTC-USDT")
            .iter()
            .any(|g| g.cause == GapCause::Integrity)
    })
    .await;
    rig.settle(Duration::from_secs(6)).await;
    let resyncs = book_gaps_of(&rig.events, "BTC-USDT").len();
    eprintln!("checksum storm: {resyncs} resyncs (integrity gaps) in the 6 s after the first");
    // Backoff 0, ¼–½, ½–1, 1–2, 2–4 s…: at most ~7 in 6 s, however fast the frames come.
    assert!((2..=8).contains(&resyncs), "{resyncs} resyncs");
    assert_eq!(
        rig.sim.stats().venue(OkxSpot).connections,
        1,
        "no reconnect"
    );
    let events = rig.stop().await;
    assert!(book_gaps_of(&events, "ETH-USDT").is_empty());
    assert_invariants(&events);
}
