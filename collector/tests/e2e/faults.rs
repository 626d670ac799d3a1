//! Fault scenarios shared by every venue: inject through the simulator, then assert what the collector
//! made observable (gap events with the right cause, type and symbol; exact books; clean trades).

use crate::books::{assert_book_matches_sim, book_gaps};
use crate::checks::assert_invariants;
use crate::common::{Rig, bad_frames, gaps, sim_config, venue_symbol};
use marketprism_config::SimulatorConfig;
use marketprism_model::{DataType, Event, Exchange, GapCause, now_ms};
use marketprism_simulator::{Fault, Malformation, RestRejection, Target};
use std::time::Duration;

/// The first symbol of every venue.
pub fn first_symbol(exchange: Exchange) -> &'static str {
    if exchange == Exchange::DeribitDerivatives {
        "BTC-USD"
    } else {
        "BTC-USDT"
    }
}

/// Every WebSocket stream of the venue has a gap with `cause` ending at or after `since_ms`.
fn all_streams_gapped(
    rig: &Rig,
    ev: &[Event],
    exchange: Exchange,
    cause: GapCause,
    since_ms: i64,
) -> bool {
    rig.ws_streams(exchange).iter().all(|(dt, sym)| {
        gaps(ev, exchange).iter().any(|(s, g)| {
            *s == sym.as_str() && g.data_type == *dt && g.cause == cause && g.end_ms >= since_ms
        })
    })
}

pub async fn wait_all_streams_gapped(
    rig: &mut Rig,
    exchange: Exchange,
    cause: GapCause,
    since_ms: i64,
) {
    let streams = rig.ws_streams(exchange);
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    loop {
        if all_streams_gapped(rig, &rig.events, exchange, cause, since_ms) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{exchange}: not every stream of {streams:?} got a {cause:?} gap; gaps: {:?}",
            gaps(&rig.events, exchange)
        );
        rig.settle(Duration::from_millis(200)).await;
    }
}

/// Abrupt TCP cuts: one `disconnect` gap per stream, data resumes, the book is rebuilt exactly.
pub async fn drop_connections(exchange: Exchange, types: &[DataType]) {
    let mut rig = Rig::start(sim_config(), &[(exchange, types)]).await;
    rig.wait_streaming(exchange, 0).await;
    let t0 = now_ms();
    let hit = rig
        .sim
        .inject(Fault::DropConnections(Target::venue(exchange)));
    assert!(hit >= 1, "no connection to drop");
    wait_all_streams_gapped(&mut rig, exchange, GapCause::Disconnect, t0).await;
    let n = rig.events.len();
    rig.wait_streaming(exchange, n).await;
    assert_book_matches_sim(&mut rig, exchange, first_symbol(exchange)).await;
    let dropped = rig.sim.stats().venue(exchange).dropped;
    assert_eq!(dropped as usize, hit);
    let events = rig.stop().await;
    assert_invariants(&events);
}

/// Withheld book messages: every injected gap is detected (`sequence_gap`, orderbooks, that symbol).
pub async fn sequence_gaps(exchange: Exchange) {
    let mut rig = Rig::start(
        sim_config(),
        &[(exchange, &[DataType::Orderbooks, DataType::Trades])],
    )
    .await;
    rig.wait_streaming(exchange, 0).await;
    for symbol in crate::common::symbols(exchange) {
        let symbol = symbol.as_str();
        for round in 1..=3 {
            assert_book_matches_sim(&mut rig, exchange, symbol).await;
            let target = Target::symbol(exchange, &venue_symbol(exchange, symbol));
            rig.sim.inject(Fault::SequenceGap {
                target,
                messages: round,
            });
            rig.wait_for(&format!("{exchange} {symbol} gap {round} detected"), |ev| {
                book_gaps(ev, exchange, symbol, GapCause::SequenceGap) >= round as usize
            })
            .await;
        }
        assert_book_matches_sim(&mut rig, exchange, symbol).await;
        let injected = rig.counters(exchange, "book", Some(symbol)).gaps_injected;
        assert_eq!(injected, 3, "{exchange} {symbol}: gaps injected");
        assert_eq!(
            book_gaps(&rig.events, exchange, symbol, GapCause::SequenceGap),
            3,
            "{exchange} {symbol}: one gap event per injected gap"
        );
    }
    let events = rig.stop().await;
    assert_invariants(&events);
}

/// Repeated frames: nothing emitted twice, nothing mistaken for a gap, books exact.
pub async fn duplicates(exchange: Exchange, types: &[DataType]) {
    let mut rig = Rig::start(sim_config(), &[(exchange, types)]).await;
    rig.wait_streaming(exchange, 0).await;
    rig.sim.inject(Fault::Duplicate {
        target: Target::venue(exchange),
        messages: 40,
    });
    rig.wait_for("40 duplicated frames", |_| true).await;
    while rig.counters(exchange, "", None).duplicated < 40 {
        rig.settle(Duration::from_millis(100)).await;
    }
    let trade_dups = ["trades", "agg_trades"].map(|c| rig.counters(exchange, c, None).duplicated);
    assert!(
        trade_dups.iter().sum::<u64>() > 0,
        "trade frames duplicated too"
    );
    assert_book_matches_sim(&mut rig, exchange, first_symbol(exchange)).await;
    let events = rig.stop().await;
    assert!(
        gaps(&events, exchange).is_empty(),
        "duplicates are not gaps: {:?}",
        gaps(&events, exchange)
    );
    assert_invariants(&events);
}

/// Swapped frames: a swapped book diff breaks the chain and is recorded as a gap, then resynced; swapped
/// trades are all kept.
pub async fn out_of_order(exchange: Exchange, types: &[DataType]) {
    let mut rig = Rig::start(sim_config(), &[(exchange, types)]).await;
    rig.wait_streaming(exchange, 0).await;
    rig.sim.inject(Fault::OutOfOrder {
        target: Target::venue(exchange),
        messages: 8,
    });
    while rig.counters(exchange, "", None).reordered < 8 {
        rig.settle(Duration::from_millis(100)).await;
    }
    for symbol in crate::common::symbols(exchange) {
        let symbol = symbol.as_str();
        if rig.counters(exchange, "book", Some(symbol)).reordered > 0 {
            rig.wait_for(&format!("{exchange} {symbol} reorder detected"), |ev| {
                book_gaps(ev, exchange, symbol, GapCause::SequenceGap) >= 1
            })
            .await;
        }
        assert_book_matches_sim(&mut rig, exchange, symbol).await;
    }
    let events = rig.stop().await;
    assert_invariants(&events);
}

/// An open but silent connection: the watchdog ends it, a `stale` gap per stream, data resumes.
pub async fn stale(exchange: Exchange, types: &[DataType]) {
    let mut rig =
        Rig::start_with(sim_config(), &[(exchange, types)], |c| c.stale_after_s = 1).await;
    rig.wait_streaming(exchange, 0).await;
    let t0 = now_ms();
    rig.sim.inject(Fault::Stale {
        target: Target::venue(exchange),
        duration_ms: 60_000,
    });
    wait_all_streams_gapped(&mut rig, exchange, GapCause::Stale, t0).await;
    assert!(rig.counters(exchange, "", None).suppressed > 0);
    let n = rig.events.len();
    rig.wait_streaming(exchange, n).await;
    assert_book_matches_sim(&mut rig, exchange, first_symbol(exchange)).await;
    let events = rig.stop().await;
    assert_invariants(&events);
}

/// Broken frames of each kind: counted as bad frames and skipped; the connection and its other data
/// carry on; whatever data they carried is accounted for by a gap.
pub async fn malformed(exchange: Exchange, types: &[DataType]) {
    let mut rig = Rig::start(sim_config(), &[(exchange, types)]).await;
    rig.wait_streaming(exchange, 0).await;
    let connections = rig.sim.stats().venue(exchange).connections;
    let before = bad_frames(exchange);
    let kinds = [
        Malformation::InvalidJson,
        Malformation::Truncated,
        Malformation::WrongTypes,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        rig.sim.inject(Fault::Malformed {
            target: Target::venue(exchange),
            kind,
            messages: 3,
        });
        let want = 3 * (i as u64 + 1);
        while rig.counters(exchange, "", None).malformed < want {
            rig.settle(Duration::from_millis(100)).await;
        }
    }
    let sent = rig.counters(exchange, "", None).malformed;
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    while bad_frames(exchange) - before < sent {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{exchange}: {} of {sent} malformed frames counted",
            bad_frames(exchange) - before
        );
        rig.settle(Duration::from_millis(100)).await;
    }
    let n = rig.events.len();
    rig.wait_streaming(exchange, n).await;
    assert_book_matches_sim(&mut rig, exchange, first_symbol(exchange)).await;
    assert_eq!(
        rig.sim.stats().venue(exchange).connections,
        connections,
        "connection kept"
    );
    let events = rig.stop().await;
    let disconnects: Vec<_> = gaps(&events, exchange)
        .into_iter()
        .filter(|(_, g)| g.cause == GapCause::Disconnect)
        .collect();
    assert!(disconnects.is_empty(), "{disconnects:?}");
    assert_invariants(&events);
}

/// The venue's keep-alive rule, enforced by the simulator within seconds: the collector must satisfy it
/// (answer pings, send its own, reply to test requests) so no connection is cut and no gap recorded.
pub async fn keepalive_kept(
    exchange: Exchange,
    types: &[DataType],
    config: SimulatorConfig,
    hold: Duration,
) {
    let mut rig = Rig::start(config, &[(exchange, types)]).await;
    rig.wait_streaming(exchange, 0).await;
    rig.settle(hold).await;
    let n = rig.events.len();
    rig.wait_streaming(exchange, n).await;
    let venue = rig.sim.stats().venue(exchange);
    let events = rig.stop().await;
    assert_eq!(
        venue.keepalive_cuts, 0,
        "{exchange}: cut for keep-alive: {venue:?}"
    );
    assert!(
        gaps(&events, exchange).is_empty(),
        "{:?}",
        gaps(&events, exchange)
    );
    assert_invariants(&events);
}

/// Connections cut by the venue's lifetime limit: each cut is a `disconnect` gap on every stream.
pub async fn connection_lifetime(exchange: Exchange, types: &[DataType]) {
    let mut rig = Rig::start(sim_config(), &[(exchange, types)]).await;
    rig.wait_streaming(exchange, 0).await;
    rig.sim.inject(Fault::ConnectionLifetime {
        exchange,
        lifetime_ms: 1_500,
    });
    while rig.sim.stats().venue(exchange).lifetime_cuts < 3 {
        rig.settle(Duration::from_millis(200)).await;
    }
    rig.sim.inject(Fault::ConnectionLifetime {
        exchange,
        lifetime_ms: 3_600_000,
    });
    let n = rig.events.len();
    rig.wait_streaming(exchange, n).await;
    // Every connection cut (lifetime or otherwise) left one gap on each of its streams.
    let cuts = rig.sim.stats().venue(exchange).lifetime_cuts as usize;
    let plans = rig
        .configs
        .iter()
        .flat_map(|c| {
            marketprism_venues::plan::ws_plans(
                c,
                &marketprism_venues::test_support::simulator_instruments(c.exchange),
            )
        })
        .count();
    let (dt, sym) = rig.ws_streams(exchange)[0].clone();
    let stream_gaps = |ev: &[Event]| {
        gaps(ev, exchange)
            .iter()
            .filter(|(s, g)| {
                *s == sym.as_str() && g.data_type == dt && g.cause == GapCause::Disconnect
            })
            .count()
    };
    assert_eq!(plans, 1, "one connection, so every cut hits this stream");
    rig.wait_for(&format!("{cuts} gaps on {dt} {sym}"), |ev| {
        stream_gaps(ev) >= cuts
    })
    .await;
    assert_book_matches_sim(&mut rig, exchange, first_symbol(exchange)).await;
    let events = rig.stop().await;
    assert_eq!(stream_gaps(&events), cuts, "one gap per cut, no more");
    assert_invariants(&events);
}

/// REST 429 and 418 with `Retry-After`, while a book resync needs a snapshot: pollers and the snapshot
/// fetch back off and recover.
pub async fn rest_rejections(exchange: Exchange) {
    let types = [DataType::Orderbooks, DataType::OpenInterests];
    let mut rig = Rig::start(sim_config(), &[(exchange, &types)]).await;
    rig.wait_streaming(exchange, 0).await;
    let mut rejected = 0;
    for rejection in [RestRejection::RateLimited, RestRejection::IpBanned] {
        assert_book_matches_sim(&mut rig, exchange, "BTC-USDT").await;
        rig.sim.inject(Fault::RestReject {
            exchange,
            rejection,
            retry_after_s: 2,
            requests: 4,
        });
        let target = Target::symbol(exchange, &venue_symbol(exchange, "BTC-USDT"));
        rig.sim.inject(Fault::SequenceGap {
            target,
            messages: 1,
        });
        rejected += 4;
        while rig.sim.stats().venue(exchange).rest_rejected < rejected {
            rig.settle(Duration::from_millis(200)).await;
        }
        let n = rig.events.len();
        rig.wait_for(&format!("open interest after {rejection:?}"), |ev| {
            ["BTC-USDT", "ETH-USDT"].iter().all(|s| {
                ev[n..]
                    .iter()
                    .any(|e| e.data_type() == DataType::OpenInterests && e.symbol.as_str() == *s)
            })
        })
        .await;
        assert_book_matches_sim(&mut rig, exchange, "BTC-USDT").await;
    }
    assert_invariants(&rig.stop().await);
}

/// A subscribe request the venue never answers (BTC and ETH trades and books; ETH's subscribe is
/// never answered): after the subscribe timeout ETH's two streams end with a `refused` gap each
/// ("no answer"), BTC keeps delivering on the same connection (never cut and reconnected for it)
/// and has no gap. Returns the rig for what the venue's test checks next.
pub async fn unanswered_subscribe_ends_only_its_streams(exchange: Exchange, eth: &str) -> Rig {
    let types = [DataType::Orderbooks, DataType::Trades];
    let eth = eth.to_owned();
    let mut rig = Rig::start_prepared(
        sim_config(),
        &[(exchange, &types)],
        |c| c.subscribe_timeout_s = 2,
        move |sim| {
            sim.inject(Fault::Unanswered(Target::symbol(exchange, &eth)));
        },
    )
    .await;
    rig.wait_for("a refused gap per ETH stream", |ev| {
        types.iter().all(|dt| {
            gaps(ev, exchange).iter().any(|(s, g)| {
                *s == "ETH-USDT" && g.data_type == *dt && g.cause == GapCause::Refused
            })
        })
    })
    .await;
    let n = rig.events.len();
    rig.wait_for("BTC still delivering", |ev| {
        types.iter().all(|dt| {
            ev[n..]
                .iter()
                .any(|e| e.data_type() == *dt && e.symbol.as_str() == "BTC-USDT")
        })
    })
    .await;
    assert_eq!(
        rig.sim.stats().venue(exchange).connections,
        1,
        "no reconnect"
    );
    let eth: Vec<_> = gaps(&rig.events, exchange)
        .into_iter()
        .filter(|(s, _)| *s == "ETH-USDT")
        .map(|(_, g)| g.clone())
        .collect();
    assert_eq!(eth.len(), 2, "one refused gap per stream: {eth:?}");
    assert!(
        eth.iter().all(|g| g.detail.contains("no answer")),
        "{eth:?}"
    );
    assert!(
        !gaps(&rig.events, exchange)
            .iter()
            .any(|(s, _)| *s == "BTC-USDT"),
        "BTC: gap without a fault"
    );
    rig
}
