//! Benchmarks that need real servers: `pipeline` (publisher → JetStream → sink → ClickHouse, or
//! publisher → JetStream alone), with per-stage and per-server CPU; `collector` (the whole collector
//! against the simulator in another process: CPU per frame, RSS, context switches).

pub mod collector;
pub mod collector_config;
pub mod floor;
pub mod pipeline;
pub mod procfs;
pub mod report;
pub mod server_cpu;
pub mod throughput;
pub mod verify;

pub use pipeline::{PipelineBenchOptions, run_pipeline_bench};
pub use report::PipelineBenchReport;
