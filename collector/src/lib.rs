//! marketprism collector: the binary's shell around the crates of the data path.
//!
//! exchange frame → venue parser (`marketprism_venues`) → normalized event (`marketprism_model`) →
//! publisher → sink → table (`marketprism_pipeline`); configured by `marketprism_config`, exercised by
//! `marketprism_simulator`.
//!
//! | step | module |
//! |---|---|
//! | `run`: connectors → fan-out → outputs, under the lease | [`run`] |
//! | `bench`: throughput and resource figures | [`bench`] |
//! | `report`: the data-quality report of what landed | [`report`] |
//! | `job import` / `replay` / `verify` / `repair`: resumable jobs over stored data | [`job`] |
//! | `parquet compact` / `check`: maintenance of a Parquet dataset | [`parquet_cmd`] |
//! | probes, metrics and logs | [`telemetry`] |
//! | errors | [`error`] |
#![forbid(unsafe_code)]

pub mod bench;
pub mod error;
pub mod job;
pub mod parquet_cmd;
pub mod report;
pub mod run;
pub mod telemetry;

pub use error::{Error, Result};
