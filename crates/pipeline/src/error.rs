//! The pipeline's error type: one enum, one variant per failure a caller can act on.

use marketprism_config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("Parquet: {0}")]
    Parquet(String),
    /// A ClickHouse table or view differs from the project's DDL; that table takes no inserts.
    #[error("ClickHouse schema: {0}")]
    Schema(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
