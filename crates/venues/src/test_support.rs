//! Test support (feature `test-support`, and this crate's own tests): instrument tables as a collector
//! pointed at the simulator loads them, without a network round trip.

use crate::instruments::{listing_urls, parse_listing};
use marketprism_model::Exchange;
use marketprism_model::instruments::{InstrumentTable, Instruments};

/// The simulator's list for `exchange`, read by the venue's own list parser: what a collector pointed
/// at the simulator loads (tests use it to build plans without a network round trip).
pub fn simulator_instruments(exchange: Exchange) -> Instruments {
    let mut all = Vec::new();
    for url in listing_urls(exchange, "") {
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let inst_type = query.strip_prefix("instType=");
        let body = marketprism_simulator::listing(exchange, path, inst_type)
            .expect("every listing url of a venue is served by the simulator")
            .to_string();
        all.extend(parse_listing(exchange, &body).expect("the simulator's list parses"));
    }
    Instruments::new(exchange, InstrumentTable::new(all))
}
