//! The simulator's error type.

use marketprism_config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Generating the simulator's CA or server certificate failed.
    #[error("{0}")]
    Tls(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
