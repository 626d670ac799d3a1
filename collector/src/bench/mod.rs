//! Benchmarks that need real servers: `pipeline` (publisher → JetStream → sink → ClickHouse, or
//! publisher → JetStream alone), with per-stage and per-server CPU.

pub mod pipeline;
pub mod procfs;
pub mod report;
pub mod server_cpu;
pub mod throughput;
pub mod verify;

pub use pipeline::{PipelineBenchOptions, run_pipeline_bench};
pub use report::PipelineBenchReport;
