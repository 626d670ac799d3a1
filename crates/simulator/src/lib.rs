//! An in-process exchange simulator: Binance spot/USD-M, OKX v5, Deribit, Gate.io v4 and MEXC wire protocols on one loopback
//! listener, driven by deterministic markets and able to inject faults on demand.
//!
//! Written from the protocol facts (shared/reference/exchange-protocols.md), independently of the venue parsers,
//! so a parser bug is not mirrored here. Wire types are local JSON, never the collector's model.
//!
//! Endpoint layout (one listener, one path prefix per venue, see [`SimulatorHandle::endpoints`]):
//! - `binance_spot`: `ws://A/binance_spot` + `/ws/<stream>` | `/stream?streams=a/b`; REST `http://A/binance_spot/api/v3/depth`.
//! - `binance_derivatives`: `ws://A/binance_derivatives` + `/public|/market` (or nothing: legacy) + `/ws/..|/stream?..`;
//!   REST `/fapi/v1/depth`, `/fapi/v1/openInterest`, `/futures/data/{topLongShortPositionRatio,topLongShortAccountRatio,globalLongShortAccountRatio}`.
//! - `okx_spot`, `okx_derivatives`: `ws://A/okx_*/ws/v5/public`; REST `/api/v5/market/books`, `/api/v5/rubik/stat/contracts/*`.
//! - `deribit_derivatives`: `ws://A/deribit_derivatives/ws/api/v2`; REST `/api/v2/public/get_volatility_index_data`.
//! - `gate_spot`: `ws://A/gate_spot/ws/v4/`; REST `/api/v4/spot/order_book`, `/api/v4/spot/time`.
//! - `gate_derivatives`: `ws://A/gate_derivatives/v4/ws/usdt`; REST `/api/v4/futures/usdt/order_book`.
//! - `mexc_spot`: `ws://A/mexc_spot/ws` (protobuf data); REST `/api/v3/depth`, `/api/v3/exchangeInfo`, `/api/v3/time`.
//! - `mexc_derivatives`: `ws://A/mexc_derivatives/edge`; REST `/api/v1/contract/depth/{symbol}`,
//!   `/api/v1/contract/detail`, `/api/v1/contract/ping`.
//! - Server time (plus `clock_skew_ms`): `/api/v3/time`, `/fapi/v1/time`, `/api/v5/public/time`,
//!   `/api/v2/public/get_time` and Deribit `public/get_time` over the WebSocket.
//! - Instrument lists: `/api/v3/exchangeInfo`, `/fapi/v1/exchangeInfo`, `/api/v5/public/instruments?instType=..`,
//!   `/api/v2/public/get_instruments` (see `instruments.rs`).

#![forbid(unsafe_code)]

mod binance;
mod book;
mod conn;
mod deribit;
pub mod error;
mod faults;
mod gate;
mod history;
mod instruments;
mod internal_events;
mod market;
mod mexc;
mod mexc_pb;
mod mexc_rest;
mod okx;
mod rest;
mod rng;
mod server;
mod stats;
pub mod tls;

pub use book::{fmt_fixed, fmt_trimmed, okx_checksum};
pub use error::{Error, Result};
pub use faults::{Fault, Malformation, RestRejection, Target};
pub use instruments::listing;
pub use stats::{SimStats, StreamCounters, StreamKey, VenueCounters};

use crate::internal_events::InternalEvent;
use crate::internal_events::simulator::SimulatorStarted;
use conn::ConnCmd;
use faults::{FrameFault, PendingFault};
use market::{Market, MarketEvent, MarketKind, Stamped};
use marketprism_config::{EndpointsConfig, SimulatorConfig};
use marketprism_model::Exchange;
use stats::Stats;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Instruments every venue has from the start (others appear when first subscribed or requested).
fn default_instruments(exchange: Exchange) -> &'static [&'static str] {
    match exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => &["BTCUSDT", "ETHUSDT"],
        Exchange::OkxSpot => &["BTC-USDT", "ETH-USDT"],
        Exchange::OkxDerivatives => &["BTC-USDT-SWAP", "ETH-USDT-SWAP"],
        Exchange::DeribitDerivatives => &["BTC-PERPETUAL", "ETH-PERPETUAL"],
        Exchange::GateSpot | Exchange::GateDerivatives => &["BTC_USDT", "ETH_USDT"],
        Exchange::MexcSpot => &["BTCUSDT", "ETHUSDT"],
        Exchange::MexcDerivatives => &["BTC_USDT", "ETH_USDT"],
    }
}

/// Deribit DVOL index names, kept as markets named `dvol:<index>`.
pub(crate) const DVOL_INDEXES: [&str; 2] = ["btc_usd", "eth_usd"];

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The simulated venues' server time, UTC ms: the real clock plus `simulator.clock_skew_ms` (what
/// the time endpoints answer; market data keeps real time).
pub(crate) fn server_time_ms(config: &SimulatorConfig) -> i64 {
    now_ms().saturating_add(config.clock_skew_ms)
}

pub(crate) type SharedMarket = Arc<Mutex<Market>>;

struct ConnEntry {
    exchange: Exchange,
    cmd: mpsc::UnboundedSender<ConnCmd>,
}

#[derive(Debug, Default)]
pub(crate) struct RestFaults {
    pub slow: Vec<(u64, u32)>,
    pub reject: Vec<(RestRejection, u64, u32)>,
    /// OKX book snapshots still to serve without `seqId`.
    pub no_seq_id: u32,
}

/// State shared by the listener, connections, REST handlers, market tasks and the handle.
pub(crate) struct Shared {
    pub config: SimulatorConfig,
    pub stats: Stats,
    markets: Mutex<BTreeMap<(Exchange, String), SharedMarket>>,
    conns: Mutex<HashMap<u64, ConnEntry>>,
    next_conn: AtomicU64,
    pub rest_faults: Mutex<HashMap<Exchange, RestFaults>>,
    /// Binance used weight: (minute, weight) per venue.
    pub weights: Mutex<HashMap<Exchange, (i64, u32)>>,
    lifetimes: Mutex<HashMap<Exchange, u64>>,
    /// WebSocket upgrades of a venue answered 503 until the instant ([`Fault::RefuseConnections`]).
    pub refuse_until: Mutex<HashMap<Exchange, Instant>>,
    /// Instruments the venue no longer lists (venue names, upper case).
    delisted: Mutex<std::collections::HashSet<(Exchange, String)>>,
    /// Instruments whose subscribe requests are never answered ([`Fault::Unanswered`]).
    unanswered: Mutex<std::collections::HashSet<(Exchange, String)>>,
    /// Instruments left out of the venue's list until the instant ([`Fault::ListLater`]).
    listed_from: Mutex<HashMap<(Exchange, String), Instant>>,
    /// Instruments left out of the venue's list from now on ([`Fault::Unlist`]).
    unlisted: Mutex<std::collections::HashSet<(Exchange, String)>>,
    paused: AtomicBool,
    pub shutdown: CancellationToken,
}

impl Shared {
    /// The market for a venue's symbol, created (and its ticker started) on first use.
    pub(crate) fn market(self: &Arc<Self>, exchange: Exchange, symbol: &str) -> SharedMarket {
        let mut markets = lock(&self.markets);
        if let Some(m) = markets.get(&(exchange, symbol.to_owned())) {
            return m.clone();
        }
        let kind = if symbol.starts_with("dvol:") {
            MarketKind::VolIndex
        } else {
            MarketKind::Instrument
        };
        let m = Arc::new(Mutex::new(Market::new(
            self.config.seed,
            exchange.as_str(),
            symbol,
            kind,
            self.config.book_levels,
        )));
        markets.insert((exchange, symbol.to_owned()), m.clone());
        tokio::spawn(run_market(self.clone(), exchange, m.clone()));
        m
    }

    /// Existing markets of a venue (liquidation streams by instrument type fan in from all of them).
    pub(crate) fn markets_of(&self, exchange: Exchange) -> Vec<SharedMarket> {
        lock(&self.markets)
            .iter()
            .filter(|((e, _), _)| *e == exchange)
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub(crate) fn register_conn(
        &self,
        exchange: Exchange,
        cmd: mpsc::UnboundedSender<ConnCmd>,
    ) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        lock(&self.conns).insert(id, ConnEntry { exchange, cmd });
        self.stats.venue(exchange, |v| v.connections += 1);
        id
    }

    pub(crate) fn unregister_conn(&self, id: u64) {
        lock(&self.conns).remove(&id);
    }

    /// True while the venue's list leaves this instrument out ([`Fault::ListLater`]).
    pub(crate) fn is_not_yet_listed(&self, exchange: Exchange, symbol: &str) -> bool {
        lock(&self.listed_from)
            .get(&(exchange, symbol.to_ascii_uppercase()))
            .is_some_and(|from| Instant::now() < *from)
    }

    /// True when the venue's list leaves this instrument out: not listed yet ([`Fault::ListLater`])
    /// or no longer ([`Fault::Unlist`]).
    pub(crate) fn is_left_out_of_list(&self, exchange: Exchange, symbol: &str) -> bool {
        self.is_not_yet_listed(exchange, symbol)
            || lock(&self.unlisted).contains(&(exchange, symbol.to_ascii_uppercase()))
    }

    /// True when subscribe requests for this instrument go unanswered ([`Fault::Unanswered`]).
    pub(crate) fn is_unanswered(&self, exchange: Exchange, symbol: &str) -> bool {
        lock(&self.unanswered).contains(&(exchange, symbol.to_ascii_uppercase()))
    }

    /// True when the venue no longer lists this instrument ([`Fault::Delist`]).
    pub(crate) fn is_delisted(&self, exchange: Exchange, symbol: &str) -> bool {
        lock(&self.delisted).contains(&(exchange, symbol.to_ascii_uppercase()))
    }

    pub(crate) fn lifetime_ms(&self, exchange: Exchange) -> u64 {
        lock(&self.lifetimes)
            .get(&exchange)
            .copied()
            .unwrap_or(self.config.connection_lifetime_ms)
    }

    fn send_to_conns(&self, target: &Target, cmd: impl Fn() -> ConnCmd) -> usize {
        let conns = lock(&self.conns);
        let mut n = 0;
        for (id, c) in conns.iter() {
            if c.exchange == target.exchange && target.connection.is_none_or(|t| t == *id) {
                n += usize::from(c.cmd.send(cmd()).is_ok());
            }
        }
        n
    }

    fn target_markets(self: &Arc<Self>, target: &Target) -> Vec<SharedMarket> {
        match &target.symbol {
            Some(s) => vec![self.market(target.exchange, s)],
            None => self.markets_of(target.exchange),
        }
    }
}

/// One simulated market's clock: `rate_per_s` book diffs and trade batches per second, slow data every `slow_interval_ms`.
async fn run_market(shared: Arc<Shared>, exchange: Exchange, market: SharedMarket) {
    let rate = f64::from(shared.config.rate_per_s);
    let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_millis(1));
    let slow = Duration::from_millis(shared.config.slow_interval_ms);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut start, mut done) = (Instant::now(), 0u64);
    let mut next_slow = Instant::now() + slow;
    let is_index = lock(&market).kind == MarketKind::VolIndex;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if shared.paused.load(Ordering::SeqCst) {
            (start, done) = (Instant::now(), 0);
            next_slow = Instant::now() + slow;
            continue;
        }
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        // Nobody listening: hold the market still (the sequence is per step, so determinism is kept),
        // unless the venue shuts its clients out: then the market trades on, as a venue's does.
        let shut_out = lock(&shared.refuse_until)
            .get(&exchange)
            .is_some_and(|t| Instant::now() < *t);
        if lock(&market).tx.receiver_count() == 0 && !shut_out {
            done = due;
            next_slow = Instant::now() + slow;
            continue;
        }
        // Bounded catch-up after a stall: a burst, not a flood.
        let steps = due.saturating_sub(done).min(10_000);
        done = due;
        let quiet = lock(&market)
            .quiet_until
            .is_some_and(|t| Instant::now() < t);
        if !is_index && !quiet {
            for _ in 0..steps {
                let mut m = lock(&market);
                // Checked under the lock: once `set_paused(true)` returns, no further step can start.
                if shared.paused.load(Ordering::SeqCst) {
                    break;
                }
                let diff = if std::mem::take(&mut m.reset_pending) {
                    m.step_book_after_reset()
                } else {
                    m.step_book()
                };
                publish(&m, MarketEvent::Book(diff));
                let trades = m.step_trades();
                // One time for the push and the tape, so history answers what the stream said.
                let ts_ms = now_ms();
                m.record_trades(ts_ms, &trades);
                publish_at(&m, ts_ms, MarketEvent::Trades(trades));
            }
        }
        if Instant::now() >= next_slow {
            next_slow += slow;
            let mut m = lock(&market);
            if is_index {
                let v = m.step_dvol();
                publish(&m, MarketEvent::Dvol { volatility_bp: v });
            } else {
                let mark = m.step_mark(now_ms());
                publish(&m, MarketEvent::Mark(mark));
                let oi = m.step_open_interest();
                publish(&m, MarketEvent::OpenInterest { oi_lots: oi });
                if let Some(l) = m.step_liquidation() {
                    publish(&m, MarketEvent::Liquidation(l));
                }
            }
        }
    }
}

/// Broadcast under the market lock, so a subscriber attached under the same lock sees exactly the events after its snapshot.
pub(crate) fn publish(m: &Market, event: MarketEvent) {
    publish_at(m, now_ms(), event);
}

/// [`publish`] stamped with `ts_ms`.
pub(crate) fn publish_at(m: &Market, ts_ms: i64, event: MarketEvent) {
    let _ = m.tx.send(Arc::new(Stamped {
        symbol: m.symbol.clone(),
        ts_ms,
        event,
    }));
}

pub struct Simulator;

/// `(price, quantity)` text levels, best first.
pub type Levels = Vec<(String, String)>;

/// The top of a simulated book and the update id it reflects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookTop {
    pub last_id: u64,
    /// Book diffs the market has made so far, however many connections each went to.
    pub diffs: u64,
    pub bids: Levels,
    pub asks: Levels,
}

impl Simulator {
    /// Bind the listener, create the default instruments and start serving.
    pub async fn start(config: SimulatorConfig) -> Result<SimulatorHandle> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let ca = if config.tls {
            Some(tls::SimulatorCa::generate()?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            config,
            stats: Stats::default(),
            markets: Mutex::new(BTreeMap::new()),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            rest_faults: Mutex::new(HashMap::new()),
            weights: Mutex::new(HashMap::new()),
            lifetimes: Mutex::new(HashMap::new()),
            refuse_until: Mutex::new(HashMap::new()),
            delisted: Mutex::new(std::collections::HashSet::new()),
            unlisted: Mutex::new(std::collections::HashSet::new()),
            unanswered: Mutex::new(std::collections::HashSet::new()),
            listed_from: Mutex::new(HashMap::new()),
            paused: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
        });
        for exchange in Exchange::ALL {
            for s in default_instruments(exchange) {
                shared.market(exchange, s);
            }
        }
        for index in DVOL_INDEXES {
            shared.market(Exchange::DeribitDerivatives, &format!("dvol:{index}"));
        }
        let acceptor = ca.as_ref().map(tls::SimulatorCa::acceptor);
        let task = tokio::spawn(server::serve(listener, acceptor, shared.clone()));
        SimulatorStarted {
            addr,
            seed: shared.config.seed,
        }
        .emit();
        Ok(SimulatorHandle {
            addr,
            ca,
            shared,
            task,
        })
    }
}

pub struct SimulatorHandle {
    addr: SocketAddr,
    /// Present when serving TLS.
    ca: Option<tls::SimulatorCa>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl SimulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA (PEM) clients must trust, when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(tls::SimulatorCa::ca_pem)
    }

    /// `base` plus this simulator's CA when it serves TLS (`base` unchanged otherwise).
    pub fn trusted_by(
        &self,
        base: &marketprism_config::tls::ClientTls,
    ) -> Result<marketprism_config::tls::ClientTls> {
        match self.ca_pem() {
            Some(pem) => Ok(base.with_extra_pem("<simulator CA>", pem)?),
            None => Ok(base.clone()),
        }
    }

    fn schemes(&self) -> (&'static str, &'static str) {
        if self.ca.is_some() {
            ("wss", "https")
        } else {
            ("ws", "http")
        }
    }

    /// The base URLs a connector should use for `exchange`, as `EndpointsConfig` defines them: the
    /// connector appends the venue's own paths (`/ws/..`, `/public/..`, `/ws/v5/public`, `/ws/api/v2`).
    pub fn endpoints(&self, exchange: Exchange) -> EndpointsConfig {
        let base = format!("{}/{}", self.addr, exchange.as_str());
        let (ws, http) = self.schemes();
        EndpointsConfig {
            ws_url: Some(format!("{ws}://{base}")),
            rest_url: Some(format!("{http}://{base}")),
        }
    }

    /// The full WebSocket URL of a venue's JSON endpoint (OKX, Deribit) or base (Binance), for raw clients.
    pub fn ws_endpoint(&self, exchange: Exchange) -> String {
        let path = match exchange {
            Exchange::BinanceSpot | Exchange::BinanceDerivatives => "",
            Exchange::OkxSpot | Exchange::OkxDerivatives => "/ws/v5/public",
            Exchange::DeribitDerivatives => "/ws/api/v2",
            Exchange::GateSpot | Exchange::GateDerivatives => gate::ws_path(exchange),
            Exchange::MexcSpot => "/ws",
            Exchange::MexcDerivatives => "/edge",
        };
        format!(
            "{}://{}/{}{path}",
            self.schemes().0,
            self.addr,
            exchange.as_str()
        )
    }

    /// Apply a fault; returns how many connections (or markets, or REST budgets) it reached.
    pub fn inject(&self, fault: Fault) -> usize {
        let s = &self.shared;
        let frame = |target: &Target, kind: FrameFault, remaining: u32| {
            s.send_to_conns(target, || {
                ConnCmd::Fault(PendingFault {
                    symbol: target.symbol.clone(),
                    kind,
                    remaining,
                    started: false,
                })
            })
        };
        match fault {
            Fault::DropConnections(t) => s.send_to_conns(&t, || ConnCmd::Drop),
            Fault::SequenceGap { target, messages } => frame(&target, FrameFault::Gap, messages),
            Fault::Duplicate { target, messages } => {
                frame(&target, FrameFault::Duplicate, messages)
            }
            Fault::OutOfOrder { target, messages } => {
                frame(&target, FrameFault::OutOfOrder, messages)
            }
            Fault::Malformed {
                target,
                kind,
                messages,
            } => frame(&target, FrameFault::Malformed(kind), messages),
            Fault::Stale {
                target,
                duration_ms,
            } => {
                let until = Instant::now() + Duration::from_millis(duration_ms);
                s.send_to_conns(&target, || ConnCmd::Stale {
                    symbol: target.symbol.clone(),
                    until,
                })
            }
            Fault::SlowRest {
                exchange,
                delay_ms,
                requests,
            } => {
                lock(&s.rest_faults)
                    .entry(exchange)
                    .or_default()
                    .slow
                    .push((delay_ms, requests));
                1
            }
            Fault::RestReject {
                exchange,
                rejection,
                retry_after_s,
                requests,
            } => {
                lock(&s.rest_faults)
                    .entry(exchange)
                    .or_default()
                    .reject
                    .push((rejection, retry_after_s, requests));
                1
            }
            Fault::ConnectionLifetime {
                exchange,
                lifetime_ms,
            } => {
                lock(&s.lifetimes).insert(exchange, lifetime_ms);
                s.send_to_conns(&Target::venue(exchange), || ConnCmd::Lifetime(lifetime_ms))
            }
            Fault::RefuseConnections {
                exchange,
                duration_ms,
            } => {
                lock(&s.refuse_until).insert(
                    exchange,
                    Instant::now() + Duration::from_millis(duration_ms),
                );
                1
            }
            Fault::OkxKeepAlive(t) => {
                let markets = s.target_markets(&t);
                for m in &markets {
                    let m = lock(m);
                    let id = m.last_id();
                    publish(&m, MarketEvent::BookKeepAlive { id });
                }
                markets.len()
            }
            Fault::StaleSnapshot { target, requests } => {
                let markets = s.target_markets(&target);
                for m in &markets {
                    let mut m = lock(m);
                    m.frozen = Some(m.snapshot(usize::MAX, now_ms()));
                    m.stale_serves = requests;
                }
                markets.len()
            }
            Fault::OkxSequenceReset(t) => {
                let markets = s.target_markets(&t);
                for m in &markets {
                    lock(m).reset_pending = true;
                }
                markets.len()
            }
            Fault::BinanceServerShutdown(t) => s.send_to_conns(&t, || ConnCmd::ServerShutdown),
            Fault::Delist(t) => {
                let Some(sym) = t.symbol else { return 0 };
                lock(&s.delisted).insert((t.exchange, sym.to_ascii_uppercase()));
                1
            }
            Fault::Unanswered(t) => {
                let Some(sym) = t.symbol else { return 0 };
                lock(&s.unanswered).insert((t.exchange, sym.to_ascii_uppercase()));
                1
            }
            Fault::AnswerAgain(t) => {
                let Some(sym) = t.symbol else { return 0 };
                usize::from(lock(&s.unanswered).remove(&(t.exchange, sym.to_ascii_uppercase())))
            }
            Fault::Unlist(t) => {
                let Some(sym) = t.symbol else { return 0 };
                lock(&s.unlisted).insert((t.exchange, sym.to_ascii_uppercase()));
                1
            }
            Fault::ListLater { target, after_ms } => {
                let Some(sym) = target.symbol else { return 0 };
                let from = Instant::now() + Duration::from_millis(after_ms);
                lock(&s.listed_from).insert((target.exchange, sym.to_ascii_uppercase()), from);
                1
            }
            Fault::Quiet {
                target,
                duration_ms,
            } => {
                let markets = s.target_markets(&target);
                let until = Instant::now() + Duration::from_millis(duration_ms);
                for m in &markets {
                    lock(m).quiet_until = Some(until);
                }
                markets.len()
            }
            Fault::UnsubscribedFrame(t) => {
                let Some(text) = t
                    .symbol
                    .as_deref()
                    .and_then(|sym| faults::foreign_trade(t.exchange, sym, now_ms()))
                else {
                    return 0;
                };
                s.send_to_conns(&Target { symbol: None, ..t }, || ConnCmd::Raw(text.clone()))
            }
            Fault::SwapTrades { target, messages } => {
                frame(&target, FrameFault::OutOfOrderTrades, messages)
            }
            Fault::StripSeqIds { target, messages } => {
                frame(&target, FrameFault::StripSeqIds, messages)
            }
            Fault::CorruptChecksum { target, messages } => {
                frame(&target, FrameFault::CorruptChecksum, messages)
            }
            Fault::SnapshotWithoutSeqId { exchange, requests } => {
                lock(&s.rest_faults).entry(exchange).or_default().no_seq_id += requests;
                1
            }
        }
    }

    /// The simulator's true book at this instant, formatted like OKX (trailing zeros trimmed):
    /// compare numbers (normalized decimals), not one venue's strings.
    pub fn book_top(&self, exchange: Exchange, symbol: &str, n: usize) -> BookTop {
        let m = self.shared.market(exchange, symbol);
        let m = lock(&m);
        let f = |v: Vec<(i64, i64)>| {
            v.into_iter()
                .map(|(p, q)| {
                    (
                        fmt_trimmed(p, m.scale.price_decimals),
                        fmt_trimmed(q, m.scale.qty_decimals),
                    )
                })
                .collect()
        };
        BookTop {
            last_id: m.last_id(),
            diffs: m.diffs(),
            bids: f(m.book().top_bids(n)),
            asks: f(m.book().top_asks(n)),
        }
    }

    /// Freeze (or resume) every market, so a test can drain and compare books at a fixed update id.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
        // Wait out a step that holds a market lock right now.
        for m in lock(&self.shared.markets).values() {
            drop(lock(m));
        }
    }

    /// Ids of the open connections of a venue (targets for per-connection faults).
    pub fn connections(&self, exchange: Exchange) -> Vec<u64> {
        let mut ids: Vec<u64> = lock(&self.shared.conns)
            .iter()
            .filter(|(_, c)| c.exchange == exchange)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn stats(&self) -> SimStats {
        self.shared.stats.snapshot()
    }

    /// Close every connection and stop serving.
    pub async fn stop(mut self) {
        self.shared.shutdown.cancel();
        let _ = (&mut self.task).await;
    }
}
