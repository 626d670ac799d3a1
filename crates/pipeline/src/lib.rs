//! From normalized events to storage: the fan-out to the outputs (fenced by the shard lease), the JetStream
//! publisher, the JetStream → ClickHouse sink, the ClickHouse and Parquet stores, and the stream ledger.
//!
//! | step | module |
//! |---|---|
//! | fan-out to the outputs, fenced by the lease | [`output`] |
//! | per-stream delivery accounting (run summary) | [`ledger`] |
//! | the shard's instance lock (Kubernetes Lease) | [`lease`] |
//! | JetStream publisher and streams | [`publish`] |
//! | JetStream → ClickHouse sink | [`sink`] |
//! | ClickHouse tables and Parquet files | [`store`] |
//! | errors | [`error`] |

#![forbid(unsafe_code)]

pub mod error;
mod internal_events;
pub mod lease;
pub mod ledger;
pub mod output;
pub mod publish;
pub mod sink;
pub mod store;

pub use error::{Error, Result};
