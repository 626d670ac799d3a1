//! Exchange connectors: one folder per venue (parser, instrument list, plan), plus the shared
//! connection (sessions, supervisor, books), local order books, keep-alive, rate-limit and poller pieces.
//! Parsers and plans are pure; connectors are thin async shells around them. Speaks the normalized
//! model (`marketprism_model`) and reads its part of the config (`marketprism_config`).
//!
//! Entry point: [`spawn_connectors`].

#![forbid(unsafe_code)]

pub mod binance;
pub mod book;
pub mod clock;
pub mod connection;
pub mod deribit;
pub mod gate;
pub mod history;
pub mod instruments;
mod internal_events;
pub mod keepalive;
pub mod mexc;
pub mod okx;
pub mod parse;
pub mod plan;
pub mod poller;
pub mod rate_limit;
pub mod signals;
pub mod supervise;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use internal_events::observe::{LATENCY_BUCKETS, StreamMeter};
pub use parse::{Control, ParseError, ParseErrorReason, Parsed};

use connection::session::SessionCtx;
use marketprism_config::ExchangeConfig;
use marketprism_config::tls::ClientTls;
use marketprism_model::{DataType, Event, Exchange, Symbol};
use marketprism_telemetry::Health;
use rate_limit::RateLimiter;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use supervise::{TaskIdentity, supervise};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The REST budget we allow ourselves per venue and IP: (bucket capacity, refill per second), about half
/// of the venue's published limit (Binance spot 6000/min, USD-M 2400/min weight; OKX books 40/2 s,
/// rubik 5/2 s (weight 8 here); Gate 200 / 10 s per endpoint; MEXC spot 500 per 10 s per endpoint,
/// contracts 20 per 2 s).
fn rest_budget(exchange: Exchange) -> (u32, f64) {
    match exchange {
        Exchange::BinanceSpot => (600, 50.0),
        Exchange::BinanceDerivatives => (400, 20.0),
        Exchange::OkxSpot | Exchange::OkxDerivatives => (20, 10.0),
        Exchange::DeribitDerivatives => (20, 10.0),
        // Gate public REST: 200 requests / 10 s per endpoint and IP.
        Exchange::GateSpot | Exchange::GateDerivatives => (100, 10.0),
        Exchange::MexcSpot => (100, 25.0),
        Exchange::MexcDerivatives => (10, 5.0),
    }
}

/// A limiter with the REST budget of `exchange` (see [`rest_budget`]), for jobs that call the venue
/// outside a running collector.
pub fn rest_limiter(exchange: Exchange) -> RateLimiter {
    let (capacity, refill) = rest_budget(limiter_key(exchange));
    RateLimiter::new(capacity, refill)
}

/// The HTTP client venues are called with (re-exported so callers need not depend on `reqwest`).
pub type RestClient = reqwest::Client;

/// The REST client of every poller and snapshot fetch: HTTP/1.1, `https://` with `tls`'s trust, 10 s per request.
pub fn rest_client(tls: &ClientTls) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured((*tls.rustls()).clone())
        .timeout(Duration::from_secs(10))
        .build()
        // Building fails only when the TLS backend cannot start, which a preconfigured rustls config rules out.
        .expect("a REST client with a preconfigured rustls config builds")
}

/// One limiter per venue and IP: OKX spot and derivatives share theirs.
fn limiter_key(exchange: Exchange) -> Exchange {
    match exchange {
        Exchange::OkxDerivatives => Exchange::OkxSpot,
        Exchange::GateDerivatives => Exchange::GateSpot,
        e => e,
    }
}

/// Start every connection and poller for `configs`. Each product line first loads the venue's
/// instrument list (retrying until it answers), reports configured symbols the venue does not list
/// (a `refused` gap per stream), then plans and starts its connections and pollers, and refreshes the
/// list every `instruments_refresh_s`; each also probes the venue's clock offset ([`clock`]). Each
/// task runs until `shutdown`; events go to `tx`.
pub fn spawn_connectors(
    configs: &[ExchangeConfig],
    tls: &ClientTls,
    tx: mpsc::Sender<Event>,
    health: Health,
    shutdown: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let http = rest_client(tls);
    let mut limiters: HashMap<Exchange, RateLimiter> = HashMap::new();
    for config in configs {
        let key = limiter_key(config.exchange);
        let limiter = limiters
            .entry(key)
            .or_insert_with(|| {
                let (capacity, refill) = rest_budget(key);
                RateLimiter::new(capacity, refill)
            })
            .clone();
        let missing = plan::unsupported(config);
        if !missing.is_empty() {
            tracing::warn!(exchange = %config.exchange, ?missing, "data types not offered by this venue are not collected");
        }
        let signals = config.signals.as_ref().and_then(|section| {
            // The config was validated: an error here is a bug, reported and signals left off.
            signals::SignalsHub::new(config.exchange, section)
                .inspect_err(|e| tracing::error!(exchange = %config.exchange, error = %e, "signals not started"))
                .ok()
                .map(Arc::new)
        });
        let line = ProductLine {
            signals,
            tls: tls.clone(),
            http: http.clone(),
            limiter,
            tx: tx.clone(),
            health: health.clone(),
            shutdown: shutdown.clone(),
        };
        set.spawn(run_product_line(config.clone(), line));
    }
    set
}

/// One product line: instrument list first, then its connections, pollers and list refresh; symbols
/// the venue starts listing later get connections and pollers of their own when the refresh sees them.
async fn run_product_line(config: ExchangeConfig, line: ProductLine) {
    // The venue's clock, from the start (never fatal: failures are only counted); it ends at shutdown
    // or with the product line.
    let _clock = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(clock::run_clock(
        config.exchange,
        plan::base_urls(&config).1,
        clock::PROBE_INTERVAL,
        line.http.clone(),
        line.limiter.clone(),
        line.shutdown.clone(),
    )));
    let ready = line
        .health
        .register(&format!("instruments:{}", config.exchange));
    let (http, limiter, shutdown) = (&line.http, &line.limiter, &line.shutdown);
    let Some(table) = instruments::load(&config, http, limiter, shutdown, &ready).await else {
        return;
    };
    let refused = instruments::refused_gaps(&config, &table);
    let (_, unlisted) = table.resolve(&config.symbols);
    report_unlisted(&ready, &unlisted);
    for gap in refused {
        if line.tx.send(gap).await.is_err() {
            return;
        }
    }
    let listed = marketprism_model::instruments::Instruments::new(config.exchange, table);
    let mut set = JoinSet::new();
    line.spawn_streams(&config, &listed, "", &mut set);
    let (relisted_tx, mut relisted_rx) = mpsc::channel(4);
    let every = Duration::from_secs(config.instruments_refresh_s);
    set.spawn(instruments::refresh(
        config.clone(),
        listed.clone(),
        every,
        line.http.clone(),
        line.limiter.clone(),
        line.shutdown.clone(),
        relisted_tx,
    ));
    let mut generation = 0;
    loop {
        tokio::select! {
            Some(change) = relisted_rx.recv() => {
                let unlisted: Vec<&Symbol> = change.unlisted.iter().collect();
                report_unlisted(&ready, &unlisted);
                let listed_now = listed.load().len();
                for gap in instruments::delisted_gaps(&config, &change.removed, listed_now) {
                    if line.tx.send(gap).await.is_err() {
                        return;
                    }
                }
                if change.added.is_empty() {
                    continue;
                }
                generation += 1;
                // DVOL is per index and was subscribed from the start; only instrument streams are new.
                let added = ExchangeConfig {
                    symbols: change.added,
                    data_types: config
                        .data_types
                        .iter()
                        .copied()
                        .filter(|d| *d != DataType::VolatilityIndices)
                        .collect(),
                    ..config.clone()
                };
                line.spawn_streams(&added, &listed, &format!("+{generation}"), &mut set);
            }
            joined = set.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
        }
    }
}

/// The instrument list's readiness: not ready while configured symbols are not listed, naming them.
fn report_unlisted(ready: &marketprism_telemetry::ReadinessGuard, unlisted: &[&Symbol]) {
    if unlisted.is_empty() {
        ready.ready();
    } else {
        let names: Vec<&str> = unlisted.iter().map(|s| s.as_str()).collect();
        ready.not_ready(&format!("not listed by the venue: {}", names.join(", ")));
    }
}

/// What every connection and poller of a product line shares.
struct ProductLine {
    /// The product line's signals engines, when `signals` is configured.
    signals: Option<Arc<signals::SignalsHub>>,
    tls: ClientTls,
    http: reqwest::Client,
    limiter: RateLimiter,
    tx: mpsc::Sender<Event>,
    health: Health,
    shutdown: CancellationToken,
}

impl ProductLine {
    /// Plan and start the connections and pollers of `config`'s listed symbols; `suffix` keeps the
    /// names (readiness components, task identities) of a later batch apart from the first.
    fn spawn_streams(
        &self,
        config: &ExchangeConfig,
        listed: &marketprism_model::instruments::Instruments,
        suffix: &str,
        set: &mut JoinSet<()>,
    ) {
        let shutdown = &self.shutdown;
        for mut ws in plan::ws_plans(config, listed) {
            ws.name.push_str(suffix);
            let identity = TaskIdentity {
                exchange: config.exchange,
                name: ws.name.clone(),
                streams: ws.streams.clone(),
            };
            let ctx = Arc::new(SessionCtx {
                plan: ws,
                http: self.http.clone(),
                limiter: self.limiter.clone(),
                tls: self.tls.clone(),
                signals: self.signals.clone(),
            });
            let (tx2, health, stop) = (self.tx.clone(), self.health.clone(), shutdown.clone());
            set.spawn(supervise(
                identity,
                self.tx.clone(),
                shutdown.clone(),
                move || {
                    connection::run_connection(
                        ctx.clone(),
                        tx2.clone(),
                        health.clone(),
                        stop.clone(),
                    )
                },
            ));
        }
        for poll in plan::poll_plans(config, listed) {
            let every = Duration::from_secs(config.poll_interval_s);
            let identity = TaskIdentity {
                exchange: config.exchange,
                name: format!(
                    "{}/poll/{}/{}",
                    config.exchange, poll.data_type, poll.symbol
                ),
                streams: vec![plan::Stream {
                    data_type: poll.data_type,
                    symbol: poll.symbol.clone(),
                    market_type: poll.market_type,
                    max_silence: None,
                }],
            };
            let (http, limiter, tx2, stop) = (
                self.http.clone(),
                self.limiter.clone(),
                self.tx.clone(),
                shutdown.clone(),
            );
            set.spawn(supervise(
                identity,
                self.tx.clone(),
                shutdown.clone(),
                move || {
                    poller::run_poller(
                        poll.clone(),
                        every,
                        http.clone(),
                        limiter.clone(),
                        tx2.clone(),
                        stop.clone(),
                    )
                },
            ));
        }
    }
}
