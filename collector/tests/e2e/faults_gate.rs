//! Gate spot and USDT perpetuals against every fault, the application ping (`spot.ping`) rule, and a
//! refused subscription attributed to exactly its streams by the request `id` the venue echoes.

use crate::books::assert_book_matches_sim;
use crate::checks::assert_invariants;
use crate::common::GATE_DERIVATIVES_TYPES as FUT;
use crate::common::SPOT_TYPES as SPOT;
use crate::common::{Rig, gaps, metric, sim_config};
use crate::faults;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange::{GateDerivatives, GateSpot};
use marketprism_model::{DataType, GapCause, Symbol};
use marketprism_simulator::{Fault, Target};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_drop_connections() {
    faults::drop_connections(GateSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_drop_connections() {
    faults::drop_connections(GateDerivatives, &FUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_sequence_gaps() {
    faults::sequence_gaps(GateSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_sequence_gaps() {
    faults::sequence_gaps(GateDerivatives).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_duplicates() {
    faults::duplicates(GateSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_duplicates() {
    faults::duplicates(GateDerivatives, &FUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_out_of_order() {
    faults::out_of_order(GateSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_out_of_order() {
    faults::out_of_order(GateDerivatives, &FUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_stale() {
    faults::stale(GateSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_stale() {
    faults::stale(GateDerivatives, &FUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_malformed() {
    faults::malformed(GateSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_malformed() {
    faults::malformed(GateDerivatives, &FUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_connection_lifetime() {
    faults::connection_lifetime(GateDerivatives, &FUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_rest_rejections_are_survived() {
    faults::rest_rejections(GateDerivatives).await;
}

/// A quiet market pushes nothing: the simulated venue cuts a connection silent for 12 s unless the
/// client sends frames; the collector's `spot.ping` after 10 s idle keeps it open, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_ping_keeps_a_quiet_connection() {
    let config = SimulatorConfig {
        gate_idle_timeout_ms: 12_000,
        ..sim_config()
    };
    let types = [DataType::Trades];
    let mut rig = Rig::start(config, &[(GateSpot, &types)]).await;
    rig.wait_streaming(GateSpot, 0).await;
    for s in ["BTC_USDT", "ETH_USDT"] {
        rig.sim.inject(Fault::Quiet {
            target: Target::symbol(GateSpot, s),
            duration_ms: 16_000,
        });
    }
    rig.settle(Duration::from_secs(16)).await;
    let n = rig.events.len();
    rig.wait_streaming(GateSpot, n).await;
    let venue = rig.sim.stats().venue(GateSpot);
    let events = rig.stop().await;
    assert_eq!(venue.keepalive_cuts, 0, "cut for keep-alive: {venue:?}");
    assert_eq!(venue.connections, 1, "never reconnected: {venue:?}");
    assert!(
        gaps(&events, GateSpot).is_empty(),
        "{:?}",
        gaps(&events, GateSpot)
    );
    assert_invariants(&events);
}

/// The venue refuses every subscribe request of a delisted contract (error code 2, echoing the
/// request `id`): only that contract's streams end, each with one `refused` gap; the listed contracts
/// keep delivering on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_refused_contract_stays_in_its_streams() {
    let types = [
        DataType::Orderbooks,
        DataType::Trades,
        DataType::FundingRates,
    ];
    let syms = |v: &[&str]| {
        v.iter()
            .map(|s| Symbol::new(*s).unwrap())
            .collect::<Vec<_>>()
    };
    let mut rig = Rig::start_prepared(
        sim_config(),
        &[(GateDerivatives, &types)],
        |c| c.symbols = syms(&["BTC-USDT", "ETH-USDT", "SOL-USDT"]),
        |sim| {
            sim.inject(Fault::Delist(Target::symbol(GateDerivatives, "SOL_USDT")));
        },
    )
    .await;
    rig.wait_for("a refused gap per SOL stream", |ev| {
        types.iter().all(|dt| {
            gaps(ev, GateDerivatives).iter().any(|(s, g)| {
                *s == "SOL-USDT" && g.data_type == *dt && g.cause == GapCause::Refused
            })
        })
    })
    .await;
    let n = rig.events.len();
    rig.wait_for("BTC and ETH still delivering", |ev| {
        types.iter().all(|dt| {
            ["BTC-USDT", "ETH-USDT"].iter().all(|s| {
                ev[n..]
                    .iter()
                    .any(|e| e.data_type() == *dt && e.symbol.as_str() == *s)
            })
        })
    })
    .await;
    assert_book_matches_sim(&mut rig, GateDerivatives, "BTC-USDT").await;
    assert_eq!(
        rig.sim.stats().venue(GateDerivatives).connections,
        1,
        "no reconnect"
    );
    let reason = rig
        .health
        .snapshot()
        .get("stream:gate_derivatives/orderbooks/SOL-USDT")
        .map(|s| (s.ready, s.reason.clone()));
    assert!(
        reason
            .as_ref()
            .is_some_and(|(ready, r)| !ready && r.contains("unknown contract SOL_USDT")),
        "{reason:?}"
    );
    assert!(
        metric(
            "marketprism_stream_refused_total",
            &["exchange=\"gate_derivatives\"", "symbol=\"SOL-USDT\""]
        ) >= 3
    );
    let events = rig.stop().await;
    let sol: Vec<_> = gaps(&events, GateDerivatives)
        .into_iter()
        .filter(|(s, _)| *s == "SOL-USDT")
        .collect();
    assert_eq!(sol.len(), 3, "one refused gap per stream: {sol:?}");
    for s in ["BTC-USDT", "ETH-USDT"] {
        assert!(
            !gaps(&events, GateDerivatives).iter().any(|(g, _)| *g == s),
            "{s}: gap without a fault"
        );
    }
    assert_invariants(&events);
}

/// A subscribe request the venue never answers ends only its own streams (a `refused` gap each, after
/// the subscribe timeout); the other contracts go live and keep delivering on the same connection,
/// never cut and reconnected for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_unanswered_subscribe_ends_only_its_streams() {
    let mut rig =
        faults::unanswered_subscribe_ends_only_its_streams(GateDerivatives, "ETH_USDT").await;
    assert_book_matches_sim(&mut rig, GateDerivatives, "BTC-USDT").await;
    // The venue answers again: after a reconnect ETH delivers, is ready, and its next outage is a
    // gap like any stream's (a slow answer is not a refusal for good).
    rig.sim.inject(Fault::AnswerAgain(Target::symbol(
        GateDerivatives,
        "ETH_USDT",
    )));
    assert!(
        rig.sim
            .inject(Fault::DropConnections(Target::venue(GateDerivatives)))
            >= 1
    );
    let n = rig.events.len();
    rig.wait_for("ETH trades again", |ev| {
        ev[n..]
            .iter()
            .any(|e| e.data_type() == DataType::Trades && e.symbol.as_str() == "ETH-USDT")
    })
    .await;
    let ready = rig
        .health
        .snapshot()
        .get("stream:gate_derivatives/trades/ETH-USDT")
        .map(|s| s.ready);
    assert_eq!(ready, Some(true), "refused reason cleared once it delivers");
    assert!(
        rig.sim
            .inject(Fault::DropConnections(Target::venue(GateDerivatives)))
            >= 1
    );
    rig.wait_for("an ETH disconnect gap", |ev| {
        gaps(ev, GateDerivatives).iter().any(|(s, g)| {
            *s == "ETH-USDT" && g.data_type == DataType::Trades && g.cause == GapCause::Disconnect
        })
    })
    .await;
    let events = rig.stop().await;
    assert_invariants(&events);
}

/// A REST snapshot older than the buffered updates (`id + 1 < U` of the first) is refused and fetched
/// again until one bridges; the book then equals the venue's, on both product lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_rest_snapshots_are_refetched_until_they_bridge() {
    for exchange in [GateSpot, GateDerivatives] {
        crate::books::stale_snapshots_are_refetched(exchange).await;
    }
}
