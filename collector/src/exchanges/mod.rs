//! Exchange connectors: one folder per venue (parser, symbol mapping, plan), plus the shared
//! connection, keep-alive and rate-limit pieces. Parsers and plans are pure; connectors are thin async shells.

pub mod binance;
pub mod deribit;
pub mod keepalive;
pub mod okx;
pub mod parse;
pub mod plan;
pub mod rate_limit;

pub use parse::{Control, ParseError, ParseErrorReason, Parsed};
