//! deribit venue: instrument list, frame parser, DVOL index names and plans.

pub mod history;
pub mod instruments;
pub mod parse;
pub mod plan;
pub mod symbols;
pub mod time;
