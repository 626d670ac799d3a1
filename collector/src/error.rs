//! The collector shell's error type: what `run`, `bench` and `report` can fail with, wrapping the crates below.

use marketprism_config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pipeline(#[from] marketprism_pipeline::Error),
    #[error(transparent)]
    Simulator(#[from] marketprism_simulator::Error),
    #[error(transparent)]
    Report(#[from] marketprism_report::Error),
    #[error(transparent)]
    Job(#[from] marketprism_jobs::JobError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
