//! marketprism collector: exchange frame → venue parser → normalized event → publisher → sink → table.
//!
//! | step | module |
//! |---|---|
//! | configuration | [`config`] |
//! | normalized events | [`model`] |
//! | errors | [`error`] |
#![forbid(unsafe_code)]

pub mod book;
pub mod config;
pub mod error;
pub mod exchanges;
pub mod internal_events;
pub mod model;
pub mod telemetry;

pub use error::{Error, Result};
