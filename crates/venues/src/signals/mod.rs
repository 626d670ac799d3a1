//! The signals stage of one product line: a [`SignalEngine`] per symbol enabled under
//! `exchanges[].signals`, fed in process by the book sync (every change of a book's top levels,
//! [`BookTop`]) and by the trades and gaps its connections forward ([`SignalsHub::on_event`]).
//!
//! The hub is shared by every connection of the product line (a symbol's books and trades may come
//! over different connections); each symbol's engine has its own lock, taken only for that symbol's
//! inputs. Symbols without signals cost one failed map lookup per trade or gap, nothing per book
//! change (their books never produce a [`BookTop`]).
//!
//! Metrics per symbol (scale, rows with a z, CVD floor hits): see
//! `internal_events::signals::SignalMeter` in this crate.
//!
//! Inputs reach the engine in the order the connection supervisors forward them, after the
//! rotation overlap's de-duplication, so a trade seen twice is counted once.

pub mod map;

use crate::internal_events::InternalEvent;
use crate::internal_events::signals::{SignalMeter, SignalRowsComputed};
use map::{RowContext, Source};
use marketprism_config::{ConfigError, SignalsSection};
use marketprism_model::{Event, Exchange, MarketType, Payload, Symbol};
use marketprism_signals::{self as sig, SignalEngine};
use std::collections::HashMap;
use std::sync::Mutex;

/// A change of one book's top levels (the levels the OFI weighs), as the engine reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct BookTop {
    pub symbol: Symbol,
    pub market_type: MarketType,
    /// Exchange time of the update that changed the top, ms.
    pub ts_ms: i64,
    /// Our receive time of that update, ms.
    pub recv_ts_ms: i64,
    /// The venue's id of that update.
    pub update_id: i64,
    /// Best first: bids highest first, asks lowest first (price, base quantity).
    pub bids: Vec<sig::Level>,
    pub asks: Vec<sig::Level>,
}

/// Every signals engine of one product line.
pub struct SignalsHub {
    exchange: Exchange,
    /// Book levels the engines read (the number of OFI weights).
    levels: usize,
    engines: HashMap<Symbol, Lane>,
}

/// One symbol's engine and its metrics.
struct Lane {
    engine: Mutex<SignalEngine>,
    meter: SignalMeter,
}

impl Lane {
    /// Run the engine under its lock and count what it computed.
    fn run(&self, f: impl FnOnce(&mut SignalEngine) -> sig::Output) -> sig::Output {
        let out = f(&mut lock(&self.engine));
        SignalRowsComputed {
            meter: &self.meter,
            out: &out,
        }
        .emit();
        out
    }
}

impl SignalsHub {
    /// Engines for the section's symbols; the engine configuration is validated.
    pub fn new(exchange: Exchange, section: &SignalsSection) -> Result<SignalsHub, ConfigError> {
        let cfg = section.engine_config();
        let levels = cfg.ofi_weights.len();
        let mut engines = HashMap::new();
        for s in &section.symbols {
            let engine = SignalEngine::new(cfg.clone()).map_err(|e| ConfigError::Invalid {
                field: format!("signals.{}", e.field),
                reason: e.to_string(),
            })?;
            let lane = Lane {
                engine: Mutex::new(engine),
                meter: SignalMeter::new(exchange, s),
            };
            engines.insert(s.clone(), lane);
        }
        Ok(SignalsHub {
            exchange,
            levels,
            engines,
        })
    }

    /// Book levels per side a [`BookTop`] carries.
    pub fn levels(&self) -> usize {
        self.levels
    }

    pub fn is_enabled(&self, symbol: &Symbol) -> bool {
        self.engines.contains_key(symbol)
    }

    /// A book's top levels changed: OFI (and maybe fusion and event) rows.
    pub fn on_book(&self, top: &BookTop) -> Vec<Event> {
        let Some(engine) = self.engines.get(&top.symbol) else {
            return Vec::new();
        };
        let out = engine.run(|e| e.on_book(top.ts_ms, &top.bids, &top.asks));
        let ctx = RowContext {
            exchange: self.exchange,
            market_type: top.market_type,
            symbol: &top.symbol,
            recv_ts_ms: top.recv_ts_ms,
        };
        let source = Source::Book {
            update_id: top.update_id,
        };
        map::output_events(ctx, &source, &out)
    }

    /// A forwarded event: a trade feeds the CVD, a gap of the symbol's books or trades resets the
    /// state (a `reset` event row); anything else is ignored.
    pub fn on_event(&self, e: &Event) -> Vec<Event> {
        let (source, out) = match &e.payload {
            Payload::Trade(t) => {
                let Some(engine) = self.engines.get(&e.symbol) else {
                    return Vec::new();
                };
                let price = map::f64_of(t.price);
                let qty = map::f64_of(t.quantity);
                let out = engine.run(|s| s.on_trade(e.ts_ms, price, qty, Some(map::side(t.side))));
                let source = Source::Trade {
                    trade_id: &t.trade_id,
                };
                (source, out)
            }
            Payload::Gap(g)
                if matches!(
                    g.data_type,
                    marketprism_model::DataType::Orderbooks | marketprism_model::DataType::Trades
                ) =>
            {
                let Some(engine) = self.engines.get(&e.symbol) else {
                    return Vec::new();
                };
                let reason = map::reset_reason(g.data_type, g.cause);
                let out = engine.run(|s| s.on_gap(g.start_ms, reason));
                let source = Source::Gap {
                    data_type: g.data_type,
                    start_ms: g.start_ms,
                    cause: g.cause,
                };
                (source, out)
            }
            _ => return Vec::new(),
        };
        let ctx = RowContext {
            exchange: self.exchange,
            market_type: e.market_type,
            symbol: &e.symbol,
            recv_ts_ms: e.recv_ts_ms,
        };
        map::output_events(ctx, &source, &out)
    }
}

/// The engine is plain data: a panic elsewhere while it was locked leaves nothing half-written
/// that matters more than losing the signal, so a poisoned lock is used as is.
fn lock(m: &Mutex<SignalEngine>) -> std::sync::MutexGuard<'_, SignalEngine> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
