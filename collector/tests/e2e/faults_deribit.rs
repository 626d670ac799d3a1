//! Deribit (books, trades, DVOL) against every fault, plus the `test_request` heartbeat rule.

use crate::common::sim_config;
use crate::faults;
use marketprism_model::DataType;
use marketprism_model::Exchange::DeribitDerivatives as Deribit;
use std::time::Duration;

const TYPES: [DataType; 3] = [
    DataType::Trades,
    DataType::Orderbooks,
    DataType::VolatilityIndices,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_connections() {
    faults::drop_connections(Deribit, &TYPES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_gaps() {
    faults::sequence_gaps(Deribit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates() {
    faults::duplicates(Deribit, &TYPES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order() {
    faults::out_of_order(Deribit, &TYPES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale() {
    faults::stale(Deribit, &TYPES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed() {
    faults::malformed(Deribit, &TYPES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_lifetime() {
    faults::connection_lifetime(Deribit, &TYPES).await;
}

/// With a 10-"second" heartbeat of 100 ms each, a missed `public/test` reply is cut within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_is_answered() {
    faults::keepalive_kept(Deribit, &TYPES, sim_config(), Duration::from_secs(4)).await;
}
