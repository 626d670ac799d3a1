//! `tls:`: which certificate authorities the collector's clients trust, besides the public roots.
//!
//! One option for every client (venue WebSockets and REST, NATS `tls://`, ClickHouse `https://`):
//! `tls.ca_file`, overridden by `MARKETPRISM_TLS_CA_FILE`. Verification is never switched off.

use crate::error::ConfigError;
use crate::tls::ClientTls;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with one or more CA certificates to trust in addition to the public (Mozilla) roots:
    /// a private CA for NATS or ClickHouse, or the simulator's (`simulate --tls --ca-out FILE`).
    pub ca_file: Option<PathBuf>,
    /// The trust store built from `ca_file` by [`TlsConfig::resolve`] (never serialized).
    #[serde(skip)]
    pub client: ClientTls,
}

impl TlsConfig {
    /// No `ca_file`: the public roots only (left out of a rendered file).
    pub fn is_unset(&self) -> bool {
        self.ca_file.is_none()
    }

    /// Load `ca_file` into [`TlsConfig::client`]. Errors name `tls.ca_file` and say what is wrong.
    pub fn resolve(&mut self) -> Result<(), ConfigError> {
        self.client = ClientTls::from_config(self)?;
        Ok(())
    }
}
