//! Binance spot and USD-M against every fault, plus serverShutdown, ping/pong and REST 429/418.

use crate::common::BINANCE_DERIVATIVES_TYPES as USDM;
use crate::common::SPOT_TYPES as SPOT;
use crate::faults;
use marketprism_collector::model::Exchange::{BinanceDerivatives, BinanceSpot};

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
