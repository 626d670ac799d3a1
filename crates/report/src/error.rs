//! The crate's one error enum. Every variant names what was being read, so a report that cannot be
//! made says where (exit code 2 in the binary, distinct from a failing verdict's 1).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A criteria file that does not parse or names an unknown field or data type.
    #[error("criteria {origin}: {reason}")]
    Criteria { origin: String, reason: String },
    /// A file or directory of the Parquet dataset could not be read.
    #[error("{path}: {reason}")]
    Parquet { path: PathBuf, reason: String },
    /// A ClickHouse query failed.
    #[error("clickhouse: {reason}; query: {query}")]
    ClickHouse { query: String, reason: String },
    /// Bad arguments (a time range that ends before it starts, an unparsable time).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;
