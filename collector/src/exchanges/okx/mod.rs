//! okx venue: frame parser, symbol mapping and connector.

pub mod parse;
pub mod plan;
pub mod symbols;
