//! marketprism signals: order-flow signals of one symbol, computed online from book changes and
//! trades — a pure, deterministic computation core (no I/O, no async, no clock, no dependency on
//! other marketprism crates). Definitions, defaults and thresholds follow the OFI + CVD harvester
//! the project replaces (`seed-systems.md` §B); every choice the reference leaves open is
//! documented where it is made.
//!
//! | concern | module | output |
//! |---|---|---|
//! | configuration, defaults, validation | [`config`] | [`SignalsConfig`], [`ConfigError`] |
//! | multi-level order-flow imbalance per book change | [`ofi`] | OFI value |
//! | cumulative volume delta per trade, tick rule | [`cvd`] | CVD, delta |
//! | robust z-score (previous window, warm-up, std_zero, delta mode, hybrid scale + MAD floor, winsorization, EMA) | [`zscore`] (on [`window`]) | z, scale, floor |
//! | fusion score and signal level | [`fusion`] | score, score_z, level |
//! | active / quiet regime from the trade rate | [`regime`] | regime |
//! | signal events | [`events`] | [`SignalEvent`] |
//! | one symbol's state, resets on gaps | [`engine`] | [`OfiRow`], [`CvdRow`], [`FusionRow`], [`SignalEvent`] |
//! | seeded synthetic market for tests and benches | [`synthetic`] | inputs |
//!
//! ```
//! use marketprism_signals::{Level, ResetReason, Side, SignalEngine, SignalsConfig};
//!
//! let mut engine = SignalEngine::new(SignalsConfig::default()).unwrap();
//! let out = engine.on_book(1_000, &[Level::new(100.0, 5.0)], &[Level::new(100.1, 3.0)]);
//! assert!(out.ofi.is_none()); // the first book is only the reference
//! let out = engine.on_book(1_100, &[Level::new(100.0, 7.0)], &[Level::new(100.1, 3.0)]);
//! assert!((out.ofi.unwrap().ofi - 0.4 * 2.0).abs() < 1e-12); // level 1: Δqb = +2, weight 0.40
//! let out = engine.on_trade(1_150, 100.1, 0.5, Some(Side::Buy));
//! assert_eq!(out.cvd.unwrap().cvd, 0.5);
//! let out = engine.on_gap(5_000, ResetReason::BookResync);
//! assert_eq!(out.events[0].kind.as_str(), "reset");
//! ```
//!
//! The collector maps its normalized book states and trades onto these inputs and stores the
//! rows (datasets `ofi`, `cvd`, `fusion`, `events`); that wiring lives outside this crate.
#![forbid(unsafe_code)]

pub mod config;
pub mod cvd;
pub mod engine;
pub mod events;
pub mod fusion;
pub mod ofi;
pub mod regime;
pub mod synthetic;
pub mod window;
pub mod zscore;

pub use config::{ConfigError, DEFAULT_OFI_WEIGHTS, SignalsConfig};
pub use cvd::Side;
pub use engine::{CvdRow, FusionRow, OfiRow, Output, SignalEngine};
pub use events::{EventDetail, EventKind, ResetReason, SignalEvent, Stream};
pub use fusion::SignalLevel;
pub use ofi::Level;
pub use regime::Regime;
pub use zscore::{ScaleMode, ZConfig, ZMode};
