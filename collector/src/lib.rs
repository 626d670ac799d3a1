//! marketprism collector: exchange frame → venue parser → normalized event → publisher → sink → table.
//!
//! | step | module |
//! |---|---|
//! | configuration | [`config`] |
//! | normalized events | [`model`] |
//! | errors | [`error`] |
#![forbid(unsafe_code)]

pub mod bench;
pub mod book;
pub mod config;
pub mod error;
pub mod exchanges;
pub mod instruments;
pub mod internal_events;
pub mod lease;
pub mod ledger;
pub mod model;
pub mod output;
pub mod publish;
pub mod run;
pub mod simulator;
pub mod sink;
pub mod store;
pub mod synthetic;
pub mod telemetry;
pub mod tls;

pub use error::{Error, Result};
