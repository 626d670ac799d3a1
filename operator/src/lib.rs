//! The marketprism operator: reconciles `CollectorSet`s into collector shards.
//!
//! | concern | module |
//! |---|---|
//! | the custom resource | [`crd`] |
//! | spec rules (CEL repeated in Rust) | [`validate`] |
//! | which symbols run where | [`planner`] |
//! | the collector config each shard gets | [`render`] |
//! | child objects (pure builders) | [`builders`] |
//! | least-privilege RBAC | [`rbac`] |
//! | the reconcile loop | [`controller`] |
//! | leader election | [`leader`] |
//! | `/metrics`, `/healthz`, `/readyz` | [`http`] |
#![forbid(unsafe_code)]

pub mod builders;
pub mod controller;
pub mod crd;
pub mod error;
pub mod http;
pub mod leader;
pub mod planner;
pub mod rbac;
pub mod render;
pub mod validate;

#[cfg(test)]
mod fixtures;

pub use error::{Error, Result};

/// The one field manager for every server-side apply.
pub const FIELD_MANAGER: &str = "marketprism-operator";
