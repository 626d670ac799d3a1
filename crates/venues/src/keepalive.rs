//! Per-venue keep-alive as a pure, clock-injected state machine (exchange-protocols.md §6).
//!
//! | venue | policy |
//! |---|---|
//! | Binance | the server pings; tungstenite answers each ping frame with a pong carrying its payload. Dead after `silence` with no inbound frame at all (spot: 1 min, USD-M: 10 min). |
//! | OKX | after `idle` (< 30 s) without inbound, send text `ping`; no inbound within `deadline` → dead. |
//! | Gate | after `idle` (10 s) without inbound, send `{"time":..,"channel":"spot.ping"}` (`futures.ping`); no inbound (`*.pong` or data) within `deadline` → dead. |
//! | Deribit | `public/set_heartbeat` at connect; every `test_request` is answered with `public/test` (by the session); dead after two intervals of silence. |
//! | MEXC | the client pings every `every` whatever arrives (contracts disconnect after 1 min without a ping); a ping followed by `deadline` of total silence → dead. |

use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlivePolicy {
    ServerPing {
        silence: Duration,
    },
    ClientTextPing {
        idle: Duration,
        deadline: Duration,
    },
    Heartbeat {
        interval: Duration,
    },
    /// Ping every `every` regardless of inbound traffic; dead when nothing arrives within `deadline`
    /// of a ping.
    PeriodicPing {
        every: Duration,
        deadline: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveAction {
    /// Nothing to do before `next_check`.
    Wait,
    /// Send the venue's ping now.
    SendPing,
    /// The peer is gone: reconnect.
    Dead,
}

#[derive(Debug, Clone)]
pub struct KeepAlive {
    policy: KeepAlivePolicy,
    last_inbound: Instant,
    ping_sent: Option<Instant>,
    /// When the last ping was sent (`PeriodicPing`), or the start.
    last_ping: Instant,
}

impl KeepAlive {
    pub fn new(policy: KeepAlivePolicy, now: Instant) -> KeepAlive {
        KeepAlive {
            policy,
            last_inbound: now,
            ping_sent: None,
            last_ping: now,
        }
    }

    /// Any frame from the venue (data, pong, ping, heartbeat) proves it is alive.
    pub fn on_inbound(&mut self, now: Instant) {
        self.last_inbound = now;
        self.ping_sent = None;
    }

    pub fn poll(&mut self, now: Instant) -> KeepAliveAction {
        let silent = now.saturating_duration_since(self.last_inbound);
        match self.policy {
            KeepAlivePolicy::ServerPing { silence } if silent >= silence => KeepAliveAction::Dead,
            KeepAlivePolicy::Heartbeat { interval }
                if silent >= interval * 2 + Duration::from_secs(5) =>
            {
                KeepAliveAction::Dead
            }
            KeepAlivePolicy::PeriodicPing { every, deadline } => match self.ping_sent {
                Some(sent) if now.saturating_duration_since(sent) >= deadline => {
                    KeepAliveAction::Dead
                }
                _ if now.saturating_duration_since(self.last_ping) >= every => {
                    self.last_ping = now;
                    self.ping_sent.get_or_insert(now);
                    KeepAliveAction::SendPing
                }
                _ => KeepAliveAction::Wait,
            },
            KeepAlivePolicy::ClientTextPing { idle, deadline } => match self.ping_sent {
                Some(sent) if now.saturating_duration_since(sent) >= deadline => {
                    KeepAliveAction::Dead
                }
                Some(_) => KeepAliveAction::Wait,
                None if silent >= idle => {
                    self.ping_sent = Some(now);
                    KeepAliveAction::SendPing
                }
                None => KeepAliveAction::Wait,
            },
            _ => KeepAliveAction::Wait,
        }
    }

    /// When `poll` should next be called.
    pub fn next_check(&self) -> Instant {
        match self.policy {
            KeepAlivePolicy::ServerPing { silence } => self.last_inbound + silence,
            KeepAlivePolicy::Heartbeat { interval } => {
                self.last_inbound + interval * 2 + Duration::from_secs(5)
            }
            KeepAlivePolicy::ClientTextPing { idle, deadline } => match self.ping_sent {
                Some(sent) => sent + deadline,
                None => self.last_inbound + idle,
            },
            KeepAlivePolicy::PeriodicPing { every, deadline } => {
                let next = self.last_ping + every;
                self.ping_sent
                    .map_or(next, |sent| next.min(sent + deadline))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn okx_pings_after_idle_and_dies_without_pong() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(
            KeepAlivePolicy::ClientTextPing {
                idle: S(20),
                deadline: S(8),
            },
            t0,
        );
        assert_eq!(k.poll(t0 + S(19)), KeepAliveAction::Wait);
        assert_eq!(k.next_check(), t0 + S(20));
        assert_eq!(k.poll(t0 + S(20)), KeepAliveAction::SendPing);
        assert_eq!(
            k.poll(t0 + S(21)),
            KeepAliveAction::Wait,
            "one ping outstanding at a time"
        );
        k.on_inbound(t0 + S(22)); // "pong"
        assert_eq!(k.poll(t0 + S(30)), KeepAliveAction::Wait);
        assert_eq!(k.poll(t0 + S(42)), KeepAliveAction::SendPing);
        assert_eq!(k.next_check(), t0 + S(50));
        assert_eq!(k.poll(t0 + S(50)), KeepAliveAction::Dead);
    }

    #[test]
    fn mexc_pings_on_schedule_even_while_data_flows() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(
            KeepAlivePolicy::PeriodicPing {
                every: S(15),
                deadline: S(10),
            },
            t0,
        );
        k.on_inbound(t0 + S(14));
        assert_eq!(k.poll(t0 + S(14)), KeepAliveAction::Wait);
        assert_eq!(k.next_check(), t0 + S(15));
        assert_eq!(
            k.poll(t0 + S(15)),
            KeepAliveAction::SendPing,
            "data does not replace the ping"
        );
        k.on_inbound(t0 + S(16)); // pong
        assert_eq!(k.poll(t0 + S(29)), KeepAliveAction::Wait);
        assert_eq!(k.poll(t0 + S(30)), KeepAliveAction::SendPing);
        assert_eq!(k.next_check(), t0 + S(40));
        assert_eq!(k.poll(t0 + S(39)), KeepAliveAction::Wait);
        assert_eq!(
            k.poll(t0 + S(40)),
            KeepAliveAction::Dead,
            "nothing after the ping"
        );
    }

    #[test]
    fn server_ping_and_heartbeat_die_on_silence() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAlivePolicy::ServerPing { silence: S(60) }, t0);
        k.on_inbound(t0 + S(30));
        assert_eq!(k.poll(t0 + S(89)), KeepAliveAction::Wait);
        assert_eq!(k.poll(t0 + S(90)), KeepAliveAction::Dead);
        let mut k = KeepAlive::new(KeepAlivePolicy::Heartbeat { interval: S(30) }, t0);
        assert_eq!(k.poll(t0 + S(64)), KeepAliveAction::Wait);
        assert_eq!(k.poll(t0 + S(65)), KeepAliveAction::Dead);
    }
}
