//! What the simulator sent and did, so tests can assert "every injected gap was detected".

use marketprism_model::Exchange;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One stream: venue, channel (`book`, `trades`, `mark`, …) and symbol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StreamKey {
    pub exchange: Exchange,
    pub channel: String,
    pub symbol: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamCounters {
    /// Data frames written (a duplicate counts twice).
    pub sent: u64,
    /// Injected gaps (one per `SequenceGap` application, however many messages it skipped).
    pub gaps_injected: u64,
    /// Messages withheld by gaps.
    pub skipped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub malformed: u64,
    /// Messages withheld while the connection was stale.
    pub suppressed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VenueCounters {
    pub connections: u64,
    /// Cut for a missing pong / `public/test` / client data (OKX 4004).
    pub keepalive_cuts: u64,
    pub lifetime_cuts: u64,
    pub dropped: u64,
    pub server_shutdowns: u64,
    /// Cut because the client read too slowly.
    pub slow_client_cuts: u64,
    /// Cut for sending too many messages per second.
    pub inbound_rate_cuts: u64,
    pub rest_requests: u64,
    pub rest_rejected: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    pub streams: BTreeMap<StreamKey, StreamCounters>,
    pub venues: BTreeMap<Exchange, VenueCounters>,
}

impl SimStats {
    /// Sum over every stream of one venue and channel.
    pub fn channel_total(&self, exchange: Exchange, channel: &str) -> StreamCounters {
        let mut t = StreamCounters::default();
        for (k, c) in &self.streams {
            if k.exchange == exchange && k.channel == channel {
                t.sent += c.sent;
                t.gaps_injected += c.gaps_injected;
                t.skipped += c.skipped;
                t.duplicated += c.duplicated;
                t.reordered += c.reordered;
                t.malformed += c.malformed;
                t.suppressed += c.suppressed;
            }
        }
        t
    }

    pub fn venue(&self, exchange: Exchange) -> VenueCounters {
        self.venues.get(&exchange).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats(Mutex<SimStats>);

impl Stats {
    pub(crate) fn stream(
        &self,
        exchange: Exchange,
        channel: &str,
        symbol: &str,
        f: impl FnOnce(&mut StreamCounters),
    ) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = StreamKey {
            exchange,
            channel: channel.to_owned(),
            symbol: symbol.to_owned(),
        };
        f(s.streams.entry(key).or_default());
    }

    pub(crate) fn venue(&self, exchange: Exchange, f: impl FnOnce(&mut VenueCounters)) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(s.venues.entry(exchange).or_default());
    }

    pub(crate) fn snapshot(&self) -> SimStats {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
