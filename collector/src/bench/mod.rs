//! Benchmarks that need real servers: `pipeline` (publisher → JetStream → sink → ClickHouse).

pub mod pipeline;
pub mod procfs;

pub use pipeline::{PipelineBenchOptions, PipelineBenchReport, run_pipeline_bench};
