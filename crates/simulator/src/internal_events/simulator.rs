//! Internal events of the exchange simulator.

use super::InternalEvent;
use marketprism_model::Exchange;
use std::net::SocketAddr;

pub(crate) struct SimulatorStarted {
    pub addr: SocketAddr,
    pub seed: u64,
}

impl InternalEvent for SimulatorStarted {
    fn emit(self) {
        tracing::info!(addr = %self.addr, seed = self.seed, "exchange simulator listening");
        metrics::counter!("marketprism_simulator_starts_total").increment(1);
    }
}

/// The simulator closed (or lost) a client connection, and why.
pub(crate) struct SimulatorConnectionClosed {
    pub exchange: Exchange,
    pub connection: u64,
    pub reason: &'static str,
}

impl InternalEvent for SimulatorConnectionClosed {
    fn emit(self) {
        tracing::debug!(exchange = %self.exchange, connection = self.connection, reason = self.reason, "simulator connection closed");
        metrics::counter!("marketprism_simulator_connections_closed_total",
            "exchange" => self.exchange.as_str(), "reason" => self.reason)
        .increment(1);
    }
}

/// A client frame the simulator could not understand (answered with the venue's error, never a panic).
pub(crate) struct SimulatorBadClientFrame {
    pub exchange: Exchange,
    pub connection: u64,
    pub error: String,
}

impl InternalEvent for SimulatorBadClientFrame {
    fn emit(self) {
        tracing::debug!(exchange = %self.exchange, connection = self.connection, error = %self.error, "simulator got a bad client frame");
        metrics::counter!("marketprism_simulator_bad_client_frames_total", "exchange" => self.exchange.as_str()).increment(1);
    }
}

/// A REST request served (or rejected with `status`).
pub(crate) struct SimulatorRestServed {
    pub exchange: Exchange,
    pub path: String,
    pub status: u16,
}

impl InternalEvent for SimulatorRestServed {
    fn emit(self) {
        tracing::trace!(exchange = %self.exchange, path = %self.path, status = self.status, "simulator REST");
        metrics::counter!("marketprism_simulator_rest_requests_total",
            "exchange" => self.exchange.as_str(), "status" => self.status.to_string())
        .increment(1);
    }
}
