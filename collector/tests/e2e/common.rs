//! The rig: the simulator and the real connectors in one process, events collected from the channel,
//! and waits that poll the received events with generous timeouts (never assertions on speed).

use marketprism_config::tls::ClientTls;
use marketprism_config::{EndpointsConfig, ExchangeConfig, OrderBookConfig, SimulatorConfig};
use marketprism_model::{DataType, Event, Exchange, Gap, Payload, Symbol};
use marketprism_simulator::{Simulator, SimulatorHandle, StreamCounters};
use marketprism_telemetry::Health;
use marketprism_venues::plan::ws_plans;
use marketprism_venues::spawn_connectors;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long any condition may take on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(60);

pub const BINANCE_DERIVATIVES_TYPES: [DataType; 7] = [
    DataType::Trades,
    DataType::Orderbooks,
    DataType::FundingRates,
    DataType::OpenInterests,
    DataType::Liquidations,
    DataType::LsrTopPositions,
    DataType::LsrAllAccounts,
];
pub const SPOT_TYPES: [DataType; 2] = [DataType::Trades, DataType::Orderbooks];
/// What Gate's USDT perpetuals offer (no long/short ratios).
pub const GATE_DERIVATIVES_TYPES: [DataType; 5] = [
    DataType::Trades,
    DataType::Orderbooks,
    DataType::FundingRates,
    DataType::OpenInterests,
    DataType::Liquidations,
];
/// What `mexc_derivatives` offers (no liquidations: MEXC publishes none; no ratios).
pub const MEXC_DERIVATIVES_TYPES: [DataType; 4] = [
    DataType::Trades,
    DataType::Orderbooks,
    DataType::FundingRates,
    DataType::OpenInterests,
];

/// Fast simulator timings: every keep-alive and slow stream within seconds. Served over TLS
/// (`wss://`, `https://`), the path production takes; the connectors trust the simulator's CA.
pub fn sim_config() -> SimulatorConfig {
    SimulatorConfig {
        tls: true,
        seed: 7,
        rate_per_s: 20,
        slow_interval_ms: 200,
        book_levels: 40,
        deribit_heartbeat_second_ms: 100,
        server_shutdown_grace_ms: 300,
        ..SimulatorConfig::default()
    }
}

/// The two symbols every test uses, in the collector's normalized form.
pub fn symbols(exchange: Exchange) -> Vec<Symbol> {
    let names: &[&str] = match exchange {
        Exchange::DeribitDerivatives => &["BTC-USD", "ETH-USD"],
        _ => &["BTC-USDT", "ETH-USDT"],
    };
    names.iter().map(|s| Symbol::new(*s).unwrap()).collect()
}

/// The simulator's name for a normalized symbol (its markets and stats are keyed by it).
pub fn venue_symbol(exchange: Exchange, symbol: &str) -> String {
    match exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => symbol.replace('-', ""),
        Exchange::OkxSpot => symbol.to_owned(),
        Exchange::OkxDerivatives => format!("{symbol}-SWAP"),
        Exchange::DeribitDerivatives => format!("{}-PERPETUAL", &symbol[..3]),
        Exchange::GateSpot | Exchange::GateDerivatives => symbol.replace('-', "_"),
        Exchange::MexcSpot => symbol.replace('-', ""),
        Exchange::MexcDerivatives => symbol.replace('-', "_"),
    }
}

/// A venue config pointed at the simulator, with short watchdogs and polls.
pub fn venue(sim: &SimulatorHandle, exchange: Exchange, data_types: &[DataType]) -> ExchangeConfig {
    let EndpointsConfig { ws_url, rest_url } = sim.endpoints(exchange);
    ExchangeConfig {
        exchange,
        symbols: symbols(exchange),
        data_types: data_types.to_vec(),
        endpoints: EndpointsConfig { ws_url, rest_url },
        orderbook: OrderBookConfig {
            snapshot_levels: 10,
            // Every update (50 ms apart at 20/s) publishes a snapshot, so the last one before a pause is seen.
            snapshot_interval_ms: 10,
            ..OrderBookConfig::default()
        },
        poll_interval_s: 1,
        // Longer than a pause for a book comparison; the stale tests shorten it.
        stale_after_s: 5,
        rotate_after_s: 86_100,
        subscribe_timeout_s: 10,
        lsr_period: "5m".into(),
        instruments_refresh_s: 3_600,
        signals: None,
    }
}

/// `marketprism_exchange_bad_frames_total` summed over reasons for one venue (process-wide recorder).
pub fn bad_frames(exchange: Exchange) -> u64 {
    let needle = format!("exchange=\"{}\"", exchange.as_str());
    metric("marketprism_exchange_bad_frames_total", &[&needle])
}

/// A counter of the process-wide recorder summed over the series whose labels contain every needle
/// (e.g. `exchange="okx_spot"`, `symbol="BTC-USDT"`). Tests run in parallel in one process: compare
/// before/after values of labels only one test uses.
pub fn metric(name: &str, needles: &[&str]) -> u64 {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        marketprism_collector::telemetry::install_metrics().expect("one recorder per process")
    });
    handle
        .render()
        .lines()
        .filter(|l| {
            l.starts_with(&format!("{name}{{"))
                && needles.iter().all(|n| {
                    // `label="value"` as given, or a bare value matched as `"value"`.
                    if n.contains('=') {
                        l.contains(n)
                    } else {
                        l.contains(&format!("\"{n}\""))
                    }
                })
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

pub struct Rig {
    pub sim: SimulatorHandle,
    /// The connectors' trust store: public roots plus the simulator's CA.
    pub tls: ClientTls,
    pub configs: Vec<ExchangeConfig>,
    /// The connectors' readiness (per connection and, once a stream has a problem, per stream).
    pub health: Health,
    rx: mpsc::Receiver<Event>,
    pub events: Vec<Event>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Rig {
    pub async fn start(config: SimulatorConfig, venues: &[(Exchange, &[DataType])]) -> Rig {
        Self::start_with(config, venues, |_| {}).await
    }

    /// Start, letting the test adjust each venue config first.
    pub async fn start_with(
        config: SimulatorConfig,
        venues: &[(Exchange, &[DataType])],
        adjust: impl Fn(&mut ExchangeConfig),
    ) -> Rig {
        Self::start_prepared(config, venues, adjust, |_| {}).await
    }

    /// Start, with `prepare` applied to the simulator before any connector connects (faults that must
    /// be in place from the first request, like a delisted instrument).
    pub async fn start_prepared(
        config: SimulatorConfig,
        venues: &[(Exchange, &[DataType])],
        adjust: impl Fn(&mut ExchangeConfig),
        prepare: impl FnOnce(&SimulatorHandle),
    ) -> Rig {
        bad_frames(Exchange::BinanceSpot); // installs the recorder before any event is counted
        if let Ok(filter) = std::env::var("E2E_LOG") {
            // Debugging aid: `E2E_LOG=debug cargo test --test e2e name -- --nocapture`.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let sim = Simulator::start(config).await.expect("simulator starts");
        prepare(&sim);
        let configs: Vec<ExchangeConfig> = venues
            .iter()
            .map(|(e, types)| {
                let mut c = venue(&sim, *e, types);
                adjust(&mut c);
                c
            })
            .collect();
        let (tx, rx) = mpsc::channel(100_000);
        let shutdown = CancellationToken::new();
        let tls = sim
            .trusted_by(&ClientTls::default())
            .expect("the simulator's CA is trusted");
        let health = Health::new();
        let tasks = spawn_connectors(&configs, &tls, tx, health.clone(), shutdown.clone());
        Rig {
            sim,
            tls,
            configs,
            health,
            rx,
            events: Vec::new(),
            shutdown,
            tasks,
        }
    }

    /// Receive until `pred` holds over everything received so far; panics after [`WAIT`].
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !pred(&self.events) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => {
                    self.events.push(e);
                    while let Ok(e) = self.rx.try_recv() {
                        self.events.push(e);
                    }
                }
                Ok(None) => panic!("event channel closed while waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; received {}",
                    summary(&self.events)
                ),
            }
        }
    }

    /// The (data type, symbol) streams a venue's WebSocket connections carry.
    pub fn ws_streams(&self, exchange: Exchange) -> Vec<(DataType, Symbol)> {
        self.configs
            .iter()
            .filter(|c| c.exchange == exchange)
            .flat_map(|c| {
                ws_plans(
                    c,
                    &marketprism_venues::test_support::simulator_instruments(c.exchange),
                )
            })
            .flat_map(|p| p.streams)
            .map(|s| (s.data_type, s.symbol))
            .collect()
    }

    /// Wait until every WebSocket stream of the venue that never stays quiet (all but liquidations) has
    /// delivered data after event index `from`.
    pub async fn wait_streaming(&mut self, exchange: Exchange, from: usize) {
        let streams: Vec<_> = self
            .ws_streams(exchange)
            .into_iter()
            .filter(|(dt, _)| *dt != DataType::Liquidations)
            .collect();
        self.wait_for(&format!("{exchange} streaming {streams:?}"), |ev| {
            let ev = &ev[from.min(ev.len())..];
            streams.iter().all(|(dt, sym)| {
                ev.iter()
                    .any(|e| e.exchange == exchange && e.data_type() == *dt && e.symbol == *sym)
            })
        })
        .await;
    }

    /// Stream counters of one channel (`book`, `trades`, …) and normalized symbol, or all symbols.
    pub fn counters(
        &self,
        exchange: Exchange,
        channel: &str,
        symbol: Option<&str>,
    ) -> StreamCounters {
        let want = symbol.map(|s| venue_symbol(exchange, s));
        let mut t = StreamCounters::default();
        for (k, c) in &self.sim.stats().streams {
            let sym_ok = want
                .as_ref()
                .is_none_or(|w| k.symbol.eq_ignore_ascii_case(w));
            if k.exchange == exchange && (channel.is_empty() || k.channel == channel) && sym_ok {
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

    /// Like [`Rig::wait_for`], but gives up after `d` and says whether `pred` came true.
    pub async fn try_wait_for(&mut self, d: Duration, pred: impl Fn(&[Event]) -> bool) -> bool {
        let deadline = Instant::now() + d;
        while !pred(&self.events) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => self.events.push(e),
                Ok(None) | Err(_) => return false,
            }
        }
        true
    }

    /// Receive everything for `d` (to let in-flight data land before checking invariants).
    pub async fn settle(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.events.push(e);
        }
    }

    /// Stop the connectors, collect what they still had queued, then stop the simulator.
    pub async fn stop(mut self) -> Vec<Event> {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        while let Ok(e) = self.rx.try_recv() {
            self.events.push(e);
        }
        self.sim.stop().await;
        self.events
    }
}

/// Counts per (exchange, data type), for failure messages.
pub fn summary(events: &[Event]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for e in events {
        *counts
            .entry(format!("{}/{}/{}", e.exchange, e.data_type(), e.symbol))
            .or_insert(0u64) += 1;
    }
    // Gaps in full: a timeout usually means a stream stuck in a fault, and the gap says which.
    let gap_rows: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Gap(g) => Some(format!("{} {}: {g:?}", e.exchange, e.symbol)),
            _ => None,
        })
        .collect();
    format!("{counts:?}; gaps: {gap_rows:?}")
}

pub fn count(events: &[Event], exchange: Exchange, dt: DataType) -> usize {
    events
        .iter()
        .filter(|e| e.exchange == exchange && e.data_type() == dt)
        .count()
}

/// Gap events of a venue, with their symbol.
pub fn gaps(events: &[Event], exchange: Exchange) -> Vec<(&str, &Gap)> {
    events
        .iter()
        .filter(|e| e.exchange == exchange)
        .filter_map(|e| match &e.payload {
            Payload::Gap(g) => Some((e.symbol.as_str(), g)),
            _ => None,
        })
        .collect()
}
