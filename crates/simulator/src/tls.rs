//! `wss://` and `https://` for the simulator: a CA and a `localhost`/`127.0.0.1` server certificate
//! generated at start (rcgen, `ring`), so clients are tested on the path production takes with real
//! verification against a CA they are told to trust (`tls.ca_file`), never with verification off.

use crate::error::{Error, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

/// A throw-away CA and the server certificate it signed (SANs `localhost`, `127.0.0.1`, `::1`).
pub struct SimulatorCa {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for SimulatorCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorCa").finish_non_exhaustive()
    }
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("simulator TLS: {what}: {e}"))
}

impl SimulatorCa {
    pub fn generate() -> Result<SimulatorCa> {
        marketprism_config::tls::install_crypto_provider();
        let ca_key = KeyPair::generate().map_err(|e| tls_err("CA key", e))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err("CA params", e))?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "marketprism simulator CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| tls_err("CA certificate", e))?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().map_err(|e| tls_err("server key", e))?;
        let mut params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .map_err(|e| tls_err("server params", e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "marketprism simulator");
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| tls_err("server certificate", e))?;

        let chain = vec![cert.der().clone(), ca_cert.der().clone()];
        let server_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(chain, server_key)
        .map_err(|e| tls_err("server config", e))?;
        Ok(SimulatorCa {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        })
    }

    /// The CA certificate (PEM) a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// The server side (for test servers other than the simulator that need the same trust).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::SimulatorCa;
    use marketprism_config::tls::ClientTls;

    #[test]
    fn an_extra_ca_is_added_to_the_public_roots() {
        let ca = SimulatorCa::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.ca_pem()).unwrap();
        let tls = ClientTls::with_extra_ca_file(&path).unwrap();
        assert_eq!(tls.ca_file(), Some(path.as_path()));
        assert_ne!(tls, ClientTls::default());
        assert_eq!(ClientTls::default(), ClientTls::default());
    }
}
