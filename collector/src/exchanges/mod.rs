//! Exchange connectors: one folder per venue (parser, symbol mapping, connector), plus the shared
//! connection, keep-alive and rate-limit pieces. Parsers are pure; connectors are thin async shells.

pub mod binance;
pub mod deribit;
pub mod okx;
pub mod parse;

pub use parse::{Control, ParseError, ParseErrorReason, Parsed};
