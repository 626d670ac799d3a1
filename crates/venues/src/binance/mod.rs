//! binance venue: instrument list, frame parser and plans.

pub mod history;
pub mod instruments;
pub mod parse;
pub mod plan;
pub mod time;
