//! MEXC spot (protobuf pushes) and contracts (JSON) against every fault the simulator injects: cut
//! connections, withheld book pushes (a `fromVersion`/`version` jump → gap and REST resync), repeated,
//! swapped and broken frames (broken binary frames on spot), silence, connection lifetime and REST
//! rejections. Books must equal the simulator's at the same version; no trade twice.

use crate::books::assert_book_matches_sim;
use crate::checks::assert_invariants;
use crate::common::{
    MEXC_DERIVATIVES_TYPES as CONTRACT, Rig, SPOT_TYPES as SPOT, gaps, sim_config,
};
use crate::faults;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange::{MexcDerivatives, MexcSpot};
use marketprism_model::{DataType, Exchange, GapCause, Payload, Symbol};
use marketprism_simulator::{Fault, Target};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_drop_connections() {
    faults::drop_connections(MexcSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_drop_connections() {
    faults::drop_connections(MexcDerivatives, &CONTRACT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_sequence_gaps() {
    faults::sequence_gaps(MexcSpot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_sequence_gaps() {
    faults::sequence_gaps(MexcDerivatives).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_duplicates() {
    faults::duplicates(MexcSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_duplicates() {
    faults::duplicates(MexcDerivatives, &CONTRACT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_out_of_order() {
    faults::out_of_order(MexcSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_out_of_order() {
    faults::out_of_order(MexcDerivatives, &CONTRACT).await;
}

/// Broken protobuf frames (garbage, truncated, wrong wire types): counted, skipped, connection kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_malformed_binary() {
    faults::malformed(MexcSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_malformed() {
    faults::malformed(MexcDerivatives, &CONTRACT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_stale() {
    faults::stale(MexcSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_stale() {
    faults::stale(MexcDerivatives, &CONTRACT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_connection_lifetime() {
    faults::connection_lifetime(MexcSpot, &SPOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_rest_rejections_are_survived() {
    faults::rest_rejections(MexcDerivatives).await;
}

/// Spot closes a connection after its idle timeout unless data or client frames arrive: with data
/// flowing and the collector's pings, nothing is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_keepalive_is_kept() {
    let config = SimulatorConfig {
        mexc_idle_timeout_ms: 1_500,
        ..sim_config()
    };
    faults::keepalive_kept(MexcSpot, &SPOT, config, Duration::from_secs(4)).await;
}

/// Contract sizes are stored in base units: trades and open interest are contracts × contractSize
/// (BTC_USDT 0.0001), raw contracts beside; spot trades are base quantities with numeric ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_are_base_units() {
    let mut rig = Rig::start(
        sim_config(),
        &[(MexcSpot, &SPOT), (MexcDerivatives, &CONTRACT)],
    )
    .await;
    rig.wait_for("contract trades, open interest and spot trades", |ev| {
        let has = |ex, dt| ev.iter().any(|e| e.exchange == ex && e.data_type() == dt);
        has(MexcDerivatives, DataType::Trades)
            && has(MexcDerivatives, DataType::OpenInterests)
            && has(MexcDerivatives, DataType::FundingRates)
            && has(MexcSpot, DataType::Trades)
    })
    .await;
    let events = rig.stop().await;
    let ct = marketprism_model::Decimal::new(1, 4);
    let mut checked = 0;
    for e in &events {
        match (&e.payload, e.exchange) {
            (Payload::Trade(t), MexcDerivatives) if e.symbol.as_str() == "BTC-USDT" => {
                assert_eq!(t.quantity, t.raw_quantity * ct, "{e:?}");
                checked += 1;
            }
            (Payload::OpenInterest(o), MexcDerivatives) if e.symbol.as_str() == "BTC-USDT" => {
                assert_eq!(o.open_interest, o.raw_open_interest * ct, "{e:?}");
                checked += 1;
            }
            (Payload::Trade(t), MexcSpot) => {
                assert_eq!(t.quantity, t.raw_quantity);
                assert!(t.trade_id.parse::<u64>().is_ok(), "{t:?}");
            }
            _ => {}
        }
    }
    assert!(checked > 0);
    assert!(crate::common::gaps(&events, MexcSpot).is_empty());
    assert_invariants(&events);
}

/// The venue refuses one listed instrument (spot: `Not Subscribed successfully! [channel]`, which
/// names it; contracts: `rs.error` naming nothing, matched to the oldest unanswered request): each of
/// its streams gets one `refused` gap, the other instrument keeps delivering on the same connection.
async fn refused_instrument_stays_in_its_streams(
    exchange: Exchange,
    types: &[DataType],
    sol: &str,
) {
    let mut rig = Rig::start_prepared(
        sim_config(),
        &[(exchange, types)],
        |c| {
            c.symbols = ["BTC-USDT", "SOL-USDT", "ETH-USDT"]
                .iter()
                .map(|s| Symbol::new(*s).unwrap())
                .collect()
        },
        |sim| {
            sim.inject(Fault::Delist(Target::symbol(exchange, sol)));
        },
    )
    .await;
    rig.wait_for(
        "a refused gap per SOL stream and data from the others",
        |ev| {
            let refused = types.iter().all(|dt| {
                gaps(ev, exchange).iter().any(|(s, g)| {
                    *s == "SOL-USDT" && g.data_type == *dt && g.cause == GapCause::Refused
                })
            });
            let delivering = ["BTC-USDT", "ETH-USDT"].iter().all(|sym| {
                types.iter().all(|dt| {
                    ev.iter().any(|e| {
                        e.exchange == exchange && e.data_type() == *dt && e.symbol.as_str() == *sym
                    })
                })
            });
            refused && delivering
        },
    )
    .await;
    assert_book_matches_sim(&mut rig, exchange, "ETH-USDT").await;
    assert_eq!(
        rig.sim.stats().venue(exchange).connections,
        1,
        "no reconnect"
    );
    let events = rig.stop().await;
    let wrong: Vec<_> = gaps(&events, exchange)
        .into_iter()
        .filter(|(s, _)| *s != "SOL-USDT")
        .collect();
    assert!(wrong.is_empty(), "only SOL's streams have gaps: {wrong:?}");
    let sol_gaps = gaps(&events, exchange)
        .into_iter()
        .filter(|(s, _)| *s == "SOL-USDT")
        .count();
    assert_eq!(sol_gaps, types.len(), "one refused gap per SOL stream");
    assert_invariants(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_refused_instrument_stays_in_its_streams() {
    refused_instrument_stays_in_its_streams(MexcSpot, &SPOT, "SOLUSDT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_refused_instrument_stays_in_its_streams() {
    refused_instrument_stays_in_its_streams(MexcDerivatives, &CONTRACT, "SOL_USDT").await;
}

/// MEXC contracts ack per method (`rs.sub.deal`, naming no symbol): one contract's subscribe left
/// unanswered is hidden once the others' acks make the connection live. At the subscribe deadline
/// its streams end with a `refused` gap each; the other contract keeps delivering on the same
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_unanswered_subscribe_is_refused_even_once_live() {
    let rig = faults::unanswered_subscribe_ends_only_its_streams(MexcDerivatives, "ETH_USDT").await;
    let health = rig.health.snapshot();
    assert!(
        health
            .iter()
            .any(|(k, s)| k.contains("ETH-USDT") && !s.ready && s.reason.contains("no answer")),
        "ETH's streams not ready: {health:?}"
    );
    rig.stop().await;
}
