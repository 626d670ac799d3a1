//! OKX spot and swap against every fault, plus the client `ping` keep-alive rule (close 4004).

use crate::books::assert_book_matches_sim;
use crate::checks::assert_invariants;
use crate::common::BINANCE_DERIVATIVES_TYPES as SWAP;
use crate::common::SPOT_TYPES as SPOT;
use crate::common::{Rig, gaps, sim_config};
use crate::faults;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange::{OkxDerivatives, OkxSpot};
use marketprism_model::{DataType, GapCause, now_ms};
use marketprism_simulator::{Fault, Target};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_drop_connections() {
    faults::drop_connections(OkxSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_drop_connections() {
    faults::drop_connections(OkxDerivatives, &SWAP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_sequence_gaps() {
    faults::sequence_gaps(OkxSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_sequence_gaps() {
    faults::sequence_gaps(OkxDerivatives).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_duplicates() {
    faults::duplicates(OkxDerivatives, &SWAP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_out_of_order() {
    faults::out_of_order(OkxDerivatives, &SWAP).await;
}

/// OKX books may legitimately stay silent ~60 s (then a keep-alive message), so the stale watchdog
/// cannot fire within seconds; a shorter silence is caught by the books' `prevSeqId` when data resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_short_silence_is_a_book_gap() {
    let mut rig = Rig::start(sim_config(), &[(OkxDerivatives, &SWAP)]).await;
    rig.wait_streaming(OkxDerivatives, 0).await;
    let t0 = now_ms();
    let target = Target::venue(OkxDerivatives);
    rig.sim.inject(Fault::Stale {
        target,
        duration_ms: 2_000,
    });
    for symbol in ["BTC-USDT", "ETH-USDT"] {
        rig.wait_for(&format!("{symbol} silence detected"), |ev| {
            gaps(ev, OkxDerivatives).iter().any(|(s, g)| {
                *s == symbol
                    && g.data_type == DataType::Orderbooks
                    && g.cause == GapCause::SequenceGap
                    && g.end_ms >= t0
            })
        })
        .await;
        assert_book_matches_sim(&mut rig, OkxDerivatives, symbol).await;
    }
    assert!(rig.counters(OkxDerivatives, "book", None).suppressed > 0);
    let events = rig.stop().await;
    assert_invariants(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_malformed() {
    faults::malformed(OkxDerivatives, &SWAP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_connection_lifetime() {
    faults::connection_lifetime(OkxSpot, &SPOT).await;
}

/// The venue closes with 4004 after its idle timeout: the collector's `ping` must come first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_keepalive_is_kept() {
    let config = SimulatorConfig {
        okx_idle_timeout_ms: 1_500,
        ..sim_config()
    };
    faults::keepalive_kept(OkxDerivatives, &SWAP, config, Duration::from_secs(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_rest_rejections_are_survived() {
    faults::rest_rejections(OkxDerivatives).await;
}
