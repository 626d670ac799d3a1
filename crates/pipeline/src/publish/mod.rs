//! Normalized events → NATS JetStream: stream layout (`streams`), the publisher loop (`publisher`),
//! and the record of what could not be published (`overflow`).

pub mod ack_window;
mod coalesce;
pub mod holds;
pub mod overflow;
pub mod publisher;
pub mod streams;

pub use publisher::{PublishStats, run_nats_output, run_nats_output_fenced};
pub use streams::ensure_streams;
