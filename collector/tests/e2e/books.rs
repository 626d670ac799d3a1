//! Published books equal the simulator's true book at the same update id, after sync and after each
//! kind of resync (REST snapshot refetch, stale REST snapshot, OKX sequence reset, OKX keep-alive).

use crate::checks::assert_invariants;
use crate::common::{Rig, SPOT_TYPES, gaps, sim_config, venue_symbol};
use marketprism_config::OkxBookMode;
use marketprism_config::SimulatorConfig;
use marketprism_model::{DataType, Decimal, Event, Exchange, GapCause, Level, Payload};
use marketprism_simulator::{Fault, Levels, Target};
use std::time::Duration;

fn decimals(levels: &Levels) -> Vec<(Decimal, Decimal)> {
    levels
        .iter()
        .map(|(p, q)| {
            let d = |t: &str| t.parse::<Decimal>().unwrap().normalize();
            (d(p), d(q))
        })
        .collect()
}

fn pairs(levels: &[Level]) -> Vec<(Decimal, Decimal)> {
    levels
        .iter()
        .map(|l| (l.0.normalize(), l.1.normalize()))
        .collect()
}

fn book_at(events: &[Event], exchange: Exchange, symbol: &str, id: i64) -> Option<usize> {
    events.iter().rposition(|e| {
        matches!(&e.payload, Payload::Orderbook(b)
            if e.exchange == exchange && e.symbol.as_str() == symbol && b.last_update_id == id)
    })
}

/// Freeze the market, wait for the snapshot at the frozen update id, compare its top 10 with the
/// simulator's, resume. Proves the local book is exactly the venue's after whatever came before.
/// A book caught mid-resync cannot finish while frozen (it needs the next update): resume and retry.
pub async fn assert_book_matches_sim(rig: &mut Rig, exchange: Exchange, symbol: &str) {
    for _attempt in 0..10 {
        wait_live(rig, exchange, symbol).await;
        rig.sim.set_paused(true);
        let top = rig
            .sim
            .book_top(exchange, &venue_symbol(exchange, symbol), 10);
        let id = i64::try_from(top.last_id).unwrap();
        let seen = rig
            // Generous: under a loaded CI machine the connector may still be working through the
            // frames sent before the freeze.
            .try_wait_for(Duration::from_secs(10), |ev| {
                book_at(ev, exchange, symbol, id).is_some()
            })
            .await;
        if !seen {
            rig.sim.set_paused(false);
            continue;
        }
        let at = book_at(&rig.events, exchange, symbol, id).unwrap();
        let Payload::Orderbook(b) = &rig.events[at].payload else {
            unreachable!()
        };
        assert_eq!(
            pairs(&b.bids),
            decimals(&top.bids),
            "{exchange} {symbol} bids at id {id}"
        );
        assert_eq!(
            pairs(&b.asks),
            decimals(&top.asks),
            "{exchange} {symbol} asks at id {id}"
        );
        rig.sim.set_paused(false);
        return;
    }
    panic!("{exchange} {symbol}: no book at a frozen update id in 10 attempts");
}

/// A book published after the last recorded book gap of this symbol.
async fn wait_live(rig: &mut Rig, exchange: Exchange, symbol: &str) {
    rig.wait_for(&format!("{exchange} {symbol} book live"), |ev| {
        let is = |e: &Event, dt| {
            e.exchange == exchange && e.symbol.as_str() == symbol && e.data_type() == dt
        };
        let last_gap = ev.iter().rposition(|e| {
            is(e, DataType::Gaps)
                && matches!(&e.payload, Payload::Gap(g) if g.data_type == DataType::Orderbooks)
        });
        ev.iter()
            .enumerate()
            .any(|(i, e)| is(e, DataType::Orderbooks) && last_gap.is_none_or(|g| i > g))
    })
    .await;
}

/// Wait for `count` more book events from now on.
async fn wait_books_after_now(rig: &mut Rig, count: usize) {
    let n = rig.events.len();
    rig.wait_for(&format!("{count} books from event {n} on"), |ev| {
        ev[n..]
            .iter()
            .filter(|e| e.data_type() == DataType::Orderbooks)
            .count()
            >= count
    })
    .await;
}

/// Orderbook gap events of one symbol with a cause.
pub fn book_gaps(events: &[Event], exchange: Exchange, symbol: &str, cause: GapCause) -> usize {
    gaps(events, exchange)
        .iter()
        .filter(|(s, g)| *s == symbol && g.data_type == DataType::Orderbooks && g.cause == cause)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_books_equal_the_venue_on_every_venue() {
    let books: &[DataType] = &[DataType::Orderbooks];
    let venues: Vec<(Exchange, &[DataType])> = Exchange::ALL.iter().map(|&e| (e, books)).collect();
    let mut rig = Rig::start(sim_config(), &venues).await;
    for exchange in Exchange::ALL {
        let symbol = if exchange == Exchange::DeribitDerivatives {
            "ETH-USD"
        } else {
            "ETH-USDT"
        };
        assert_book_matches_sim(&mut rig, exchange, symbol).await;
    }
    let events = rig.stop().await;
    assert_invariants(&events);
    assert!(gaps(&events, Exchange::BinanceSpot).is_empty());
}

/// Tick by tick: BTC publishes its top after every venue update, exactly one row per depth frame the
/// simulator sent between two frozen points, each at a new update id; ETH keeps its (long) interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_by_tick_books_publish_every_update_and_the_others_keep_the_interval() {
    let exchange = Exchange::BinanceDerivatives;
    let books: &[DataType] = &[DataType::Orderbooks];
    let mut rig = Rig::start_with(sim_config(), &[(exchange, books)], |c| {
        c.orderbook.snapshot_interval_ms = 600_000;
        c.orderbook.every_update_symbols =
            vec![marketprism_model::Symbol::new("BTC-USDT").unwrap()];
    })
    .await;
    // Frozen at a known id with the simulator's frame count: the first mark.
    let mut marks = Vec::new();
    for _ in 0..2 {
        assert_book_matches_sim(&mut rig, exchange, "BTC-USDT").await;
        rig.sim.set_paused(true);
        let id = rig.sim.book_top(exchange, "BTCUSDT", 1).last_id;
        let sent = rig.counters(exchange, "book", Some("BTC-USDT")).sent;
        rig.sim.set_paused(false);
        marks.push((i64::try_from(id).unwrap(), sent, rig.events.len()));
        rig.settle(Duration::from_secs(3)).await;
    }
    let events = rig.stop().await;
    assert_invariants(&events);
    assert!(gaps(&events, exchange).is_empty(), "no resync in between");
    let ((id0, sent0, _), (id1, sent1, _)) = (marks[0], marks[1]);
    let between = book_ids_between(&events, "BTC-USDT", id0, id1);
    assert!(sent1 > sent0 + 5, "the market moved: {sent0} -> {sent1}");
    assert_eq!(
        between.len() as u64,
        sent1 - sent0,
        "one BTC book per depth frame between the marks"
    );
    assert!(
        between.windows(2).all(|w| w[0] < w[1]),
        "each at a new, increasing update id"
    );
    let eth = events
        .iter()
        .filter(|e| e.symbol.as_str() == "ETH-USDT" && e.data_type() == DataType::Orderbooks)
        .count();
    assert_eq!(eth, 1, "ETH: only the book published when it synced");
}

/// Tick by tick across make-before-break rotations: between two frozen points that span four
/// rotations, still exactly one BTC row per book diff the market made, at increasing update ids.
/// At each swap the old session's last rows go first and the candidate's continue after them.
/// Five diffs a second, 200 ms apart: each connection's 100 ms depth window holds at most one, so
/// both sessions' frames are the market's diffs (at 20/s a window merges diffs differently per
/// connection and the diff count says nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_by_tick_books_lose_and_repeat_nothing_across_rotations() {
    let exchange = Exchange::BinanceDerivatives;
    let books: &[DataType] = &[DataType::Orderbooks];
    let sim = SimulatorConfig {
        rate_per_s: 5,
        ..sim_config()
    };
    let mut rig = Rig::start_with(sim, &[(exchange, books)], |c| {
        c.rotate_after_s = 2;
        c.orderbook.snapshot_interval_ms = 600_000;
        c.orderbook.every_update_symbols =
            vec![marketprism_model::Symbol::new("BTC-USDT").unwrap()];
    })
    .await;
    let mut marks = Vec::new();
    for round in 0..2 {
        if round == 1 {
            let start = rig.sim.stats().venue(exchange).connections;
            while rig.sim.stats().venue(exchange).connections < start + 4 {
                rig.settle(Duration::from_millis(200)).await;
            }
        }
        assert_book_matches_sim(&mut rig, exchange, "BTC-USDT").await;
        rig.sim.set_paused(true);
        let top = rig.sim.book_top(exchange, "BTCUSDT", 1);
        rig.sim.set_paused(false);
        marks.push((i64::try_from(top.last_id).unwrap(), top.diffs));
    }
    let events = rig.stop().await;
    assert_invariants(&events);
    assert!(
        gaps(&events, exchange).is_empty(),
        "{:?}",
        gaps(&events, exchange)
    );
    let ((id0, diffs0), (id1, diffs1)) = (marks[0], marks[1]);
    let between = book_ids_between(&events, "BTC-USDT", id0, id1);
    assert!(
        diffs1 > diffs0 + 5,
        "the market moved: {diffs0} -> {diffs1}"
    );

    assert!(
        between.windows(2).all(|w| w[0] < w[1]),
        "each at a new, increasing update id: {between:?}"
    );
    assert_eq!(
        between.len() as u64,
        diffs1 - diffs0,
        "one BTC book per book diff between the marks, across the rotations: {id0} {id1} {between:?}"
    );
}

/// The update ids of `symbol`'s book rows in `(from, to]`, in the order they were published.
fn book_ids_between(events: &[Event], symbol: &str, from: i64, to: i64) -> Vec<i64> {
    events
        .iter()
        .filter(|e| e.symbol.as_str() == symbol)
        .filter_map(|e| match &e.payload {
            Payload::Orderbook(b) if b.last_update_id > from && b.last_update_id <= to => {
                Some(b.last_update_id)
            }
            _ => None,
        })
        .collect()
}

/// A REST snapshot older than the buffered updates is refused and refetched, not applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_rest_snapshots_are_refetched_until_they_bridge() {
    for exchange in [
        Exchange::BinanceSpot,
        Exchange::BinanceDerivatives,
        Exchange::OkxSpot,
    ] {
        stale_snapshots_are_refetched(exchange).await;
    }
}

/// Live first (a gap while still buffering loses nothing published, so it is no gap), then a sequence
/// gap makes the connector fetch a snapshot, which is stale twice: both are refused, the third bridges,
/// and the book equals the venue's again.
pub async fn stale_snapshots_are_refetched(exchange: Exchange) {
    let mut rig = Rig::start(sim_config(), &[(exchange, &SPOT_TYPES)]).await;
    let symbol = "BTC-USDT";
    assert_book_matches_sim(&mut rig, exchange, symbol).await;
    let stats = |rig: &Rig| rig.sim.stats().venue(exchange).rest_requests;
    let before = stats(&rig);
    let target = Target::symbol(exchange, &venue_symbol(exchange, symbol));
    rig.sim.inject(Fault::StaleSnapshot {
        target: target.clone(),
        requests: 2,
    });
    rig.sim.inject(Fault::SequenceGap {
        target,
        messages: 2,
    });
    rig.wait_for("sequence gap recorded", |ev| {
        book_gaps(ev, exchange, symbol, GapCause::SequenceGap) >= 1
    })
    .await;
    assert_book_matches_sim(&mut rig, exchange, symbol).await;
    assert!(
        stats(&rig) >= before + 3,
        "{exchange}: two stale snapshots refused then a good one (REST calls {} -> {})",
        before,
        stats(&rig)
    );
    let events = rig.stop().await;
    assert_invariants(&events);
}

/// OKX keep-alive messages (`seqId == prevSeqId`, empty) and sequence resets (`seqId < prevSeqId`) are
/// normal flow, not gaps; the book stays exact through both, in every 2026 `books` mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_keepalives_and_sequence_resets_are_not_gaps() {
    for mode in [
        OkxBookMode::Legacy,
        OkxBookMode::ZeroChecksum,
        OkxBookMode::RestSnapshot,
    ] {
        let config = marketprism_config::SimulatorConfig {
            okx_book_mode: mode,
            ..sim_config()
        };
        eprintln!("okx books mode {mode:?}");
        let mut rig = Rig::start(config, &[(Exchange::OkxDerivatives, &SPOT_TYPES)]).await;
        let exchange = Exchange::OkxDerivatives;
        assert_book_matches_sim(&mut rig, exchange, "BTC-USDT").await;
        for _ in 0..3 {
            rig.sim.inject(Fault::OkxKeepAlive(Target::venue(exchange)));
        }
        rig.sim
            .inject(Fault::OkxSequenceReset(Target::venue(exchange)));
        wait_books_after_now(&mut rig, 20).await;
        assert_book_matches_sim(&mut rig, exchange, "BTC-USDT").await;
        assert_book_matches_sim(&mut rig, exchange, "ETH-USDT").await;
        let events = rig.stop().await;
        assert!(
            gaps(&events, exchange).is_empty(),
            "{mode:?}: {:?}",
            gaps(&events, exchange)
        );
        assert_invariants(&events);
    }
}

/// A REST snapshot from before an OKX sequence reset (a lagging cache) has ids of the old sequence:
/// it "covers" every update of the new one, so the book would wait for a bridge for good. The sync
/// deadline reports it once (a `stale` gap naming the wait) and starts the sync over from a fresh
/// snapshot, until one bridges; the book is then exact again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_book_stuck_on_a_snapshot_of_the_old_sequence_restarts_its_sync() {
    let config = marketprism_config::SimulatorConfig {
        okx_book_mode: OkxBookMode::RestSnapshot,
        ..sim_config()
    };
    let exchange = Exchange::OkxDerivatives;
    let symbol = "BTC-USDT";
    let mut rig = Rig::start_prepared(
        config,
        &[(exchange, &[DataType::Orderbooks])],
        |c| {
            c.symbols = vec![marketprism_model::Symbol::new(symbol).unwrap()];
            c.orderbook.sync_timeout_s = 2;
        },
        |_| {},
    )
    .await;
    assert_book_matches_sim(&mut rig, exchange, symbol).await;
    let target = Target::symbol(exchange, &venue_symbol(exchange, symbol));
    // Freeze what REST serves (old sequence), then reset the sequence and break the live book.
    rig.sim.inject(Fault::StaleSnapshot {
        target: target.clone(),
        requests: 2,
    });
    rig.sim.inject(Fault::OkxSequenceReset(target.clone()));
    wait_books_after_now(&mut rig, 5).await;
    rig.sim.inject(Fault::SequenceGap {
        target,
        messages: 2,
    });
    rig.wait_for("the overdue sync reported", |ev| {
        gaps(ev, exchange)
            .iter()
            .any(|(_, g)| g.cause == GapCause::Stale && g.detail.contains("not synced within"))
    })
    .await;
    assert_book_matches_sim(&mut rig, exchange, symbol).await;
    let events = rig.stop().await;
    let overdue = gaps(&events, exchange)
        .iter()
        .filter(|(_, g)| g.detail.contains("not synced within"))
        .count();
    assert_eq!(overdue, 1, "reported once per wait, however many restarts");
    assert_invariants(&events);
}
