//! Binance spot and USD-M against every fault, plus serverShutdown, ping/pong and REST 429/418.

use crate::books::assert_book_matches_sim;
use crate::checks::{assert_invariants, assert_trade_holes_covered};
use crate::common::BINANCE_DERIVATIVES_TYPES as USDM;
use crate::common::SPOT_TYPES as SPOT;
use crate::common::{Rig, gaps, sim_config};
use crate::faults;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange::{BinanceDerivatives, BinanceSpot};
use marketprism_model::{DataType, GapCause, now_ms};
use marketprism_simulator::{Fault, Target};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_drop_connections() {
    faults::drop_connections(BinanceSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_drop_connections() {
    faults::drop_connections(BinanceDerivatives, &USDM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_sequence_gaps() {
    faults::sequence_gaps(BinanceSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_sequence_gaps() {
    faults::sequence_gaps(BinanceDerivatives).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_duplicates() {
    faults::duplicates(BinanceSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_duplicates() {
    faults::duplicates(BinanceDerivatives, &USDM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_out_of_order() {
    faults::out_of_order(BinanceSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_out_of_order() {
    faults::out_of_order(BinanceDerivatives, &USDM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_stale() {
    faults::stale(BinanceSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_stale() {
    faults::stale(BinanceDerivatives, &USDM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_malformed() {
    faults::malformed(BinanceSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_malformed() {
    faults::malformed(BinanceDerivatives, &USDM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_connection_lifetime() {
    faults::connection_lifetime(BinanceSpot, &SPOT).await;
}

/// `serverShutdown`: a `server_shutdown` gap on every stream, immediate reconnect, exact book.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_server_shutdown() {
    let mut rig = Rig::start(sim_config(), &[(BinanceSpot, &SPOT)]).await;
    rig.wait_streaming(BinanceSpot, 0).await;
    let t0 = now_ms();
    assert_eq!(
        rig.sim
            .inject(Fault::BinanceServerShutdown(Target::venue(BinanceSpot))),
        1
    );
    faults::wait_all_streams_gapped(&mut rig, BinanceSpot, GapCause::ServerShutdown, t0).await;
    let n = rig.events.len();
    rig.wait_streaming(BinanceSpot, n).await;
    assert_book_matches_sim(&mut rig, BinanceSpot, "BTC-USDT").await;
    assert_eq!(rig.sim.stats().venue(BinanceSpot).server_shutdowns, 1);
    assert_invariants(&rig.stop().await);
}

/// Pings every 300 ms, cut after 1 s without a pong: the collector's pongs keep the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_pings_are_answered() {
    let config = SimulatorConfig {
        binance_spot_ping_interval_ms: 300,
        binance_spot_pong_timeout_ms: 1_000,
        ..sim_config()
    };
    faults::keepalive_kept(BinanceSpot, &SPOT, config, Duration::from_secs(4)).await;
}

/// Make-before-break rotation every 2 s: no gap, no trade twice, no trade missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_rotation_loses_and_repeats_nothing() {
    let mut rig = Rig::start_with(sim_config(), &[(BinanceSpot, &SPOT)], |c| {
        c.rotate_after_s = 2
    })
    .await;
    rig.wait_streaming(BinanceSpot, 0).await;
    while rig.sim.stats().venue(BinanceSpot).connections < 4 {
        rig.settle(Duration::from_millis(200)).await;
    }
    let n = rig.events.len();
    rig.wait_streaming(BinanceSpot, n).await;
    assert_book_matches_sim(&mut rig, BinanceSpot, "BTC-USDT").await;
    let events = rig.stop().await;
    assert!(
        gaps(&events, BinanceSpot).is_empty(),
        "{:?}",
        gaps(&events, BinanceSpot)
    );
    assert_invariants(&events);
    assert_eq!(
        assert_trade_holes_covered(&events),
        0,
        "no trade id hole at all"
    );
}

/// REST 429 and 418 with `Retry-After`: the pollers and the snapshot fetch back off and recover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_rest_rejections_are_survived() {
    faults::rest_rejections(BinanceDerivatives).await;
}

/// REST answers delayed by seconds: polls still land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_slow_rest_still_polls() {
    let types = [DataType::OpenInterests, DataType::LsrTopPositions];
    let mut rig = Rig::start(sim_config(), &[(BinanceDerivatives, &types)]).await;
    rig.wait_for("first poll", |ev| {
        ev.iter().any(|e| e.data_type() == DataType::OpenInterests)
    })
    .await;
    rig.sim.inject(Fault::SlowRest {
        exchange: BinanceDerivatives,
        delay_ms: 2_500,
        requests: 6,
    });
    let n = rig.events.len();
    rig.wait_for("open interest after slow answers", |ev| {
        ev[n..]
            .iter()
            .filter(|e| e.data_type() == DataType::OpenInterests)
            .count()
            >= 8
    })
    .await;
    assert!(rig.sim.stats().venue(BinanceDerivatives).rest_requests >= 8);
    assert_invariants(&rig.stop().await);
}
