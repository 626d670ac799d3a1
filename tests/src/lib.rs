//! Shared helpers of the integration tests in `tests/tests/`.
#![forbid(unsafe_code)]

pub mod servers;
pub mod pipeline;
