//! TLS for every client the collector opens (venue WebSockets and REST, NATS, ClickHouse) and for the
//! simulator's server: one crypto provider, one trust store.
//!
//! **Provider: `ring`**, installed explicitly by [`install_crypto_provider`] at the start of every binary
//! (and by every client builder here, so library users and tests cannot hit rustls' "no process-level
//! CryptoProvider" panic). Why `ring` and not `aws-lc-rs`: kube, async-nats and rcgen already offer it,
//! it builds with a C compiler alone (aws-lc-sys needs cmake and a long C build, a third of a cold
//! build), and nothing here needs FIPS or post-quantum key exchange. The workspace enables no rustls
//! default features, so `cargo tree -i aws-lc-rs` prints nothing; a test in `tests/` checks it.
//!
//! **Trust**: the Mozilla roots compiled in (`webpki-roots`, so a distroless image needs no
//! `/etc/ssl`), plus the PEM certificates of `tls.ca_file` / `MARKETPRISM_TLS_CA_FILE` (a private CA,
//! the simulator's). Verification is never disabled.

use crate::TlsConfig;
use crate::error::ConfigError;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Install `ring` as the process-wide rustls provider (for crates that build their own configs,
/// such as kube's client). Idempotent; a provider installed earlier by someone else is kept.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client side of TLS: an immutable rustls config shared by every client of the process.
/// Cheap to clone. Equality is by the CA file it was built from.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    roots: Arc<RootCertStore>,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.ca_file == other.ca_file
    }
}

impl Default for ClientTls {
    /// The public roots only.
    fn default() -> Self {
        static PUBLIC: OnceLock<ClientTls> = OnceLock::new();
        PUBLIC
            .get_or_init(|| ClientTls::with_roots(public_roots(), None))
            .clone()
    }
}

fn public_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

impl ClientTls {
    /// The public roots plus the CA certificates of `config.ca_file`.
    ///
    /// Errors (naming `tls.ca_file`): unreadable file, no PEM certificate in it, or a certificate
    /// rustls refuses as a trust anchor.
    pub fn from_config(config: &TlsConfig) -> Result<ClientTls, ConfigError> {
        match &config.ca_file {
            None => Ok(ClientTls::default()),
            Some(path) => ClientTls::with_extra_ca_file(path),
        }
    }

    /// The public roots plus every PEM certificate in `path`.
    pub fn with_extra_ca_file(path: &Path) -> Result<ClientTls, ConfigError> {
        let pem = std::fs::read(path).map_err(|e| ConfigError::Invalid {
            field: "tls.ca_file".into(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let mut roots = public_roots();
        add_pem(&mut roots, &pem, &path.display().to_string())?;
        Ok(ClientTls::with_roots(roots, Some(path.to_owned())))
    }

    /// This trust store plus the CA certificates in `pem` (the in-process simulator's CA).
    pub fn with_extra_pem(&self, label: &str, pem: &str) -> Result<ClientTls, ConfigError> {
        let mut roots = (*self.roots).clone();
        add_pem(&mut roots, pem.as_bytes(), label)?;
        let name = match &self.ca_file {
            Some(f) => format!("{} + {label}", f.display()),
            None => label.to_owned(),
        };
        Ok(ClientTls::with_roots(roots, Some(PathBuf::from(name))))
    }

    /// Trust exactly the CA certificates in `ca_pem` (tests: a test server's CA), no public roots.
    pub fn trusting_only(ca_pem: &str) -> Result<ClientTls, ConfigError> {
        let mut roots = RootCertStore::empty();
        add_pem(&mut roots, ca_pem.as_bytes(), "<inline>")?;
        Ok(ClientTls::with_roots(
            roots,
            Some(PathBuf::from("<inline>")),
        ))
    }

    fn with_roots(roots: RootCertStore, ca_file: Option<PathBuf>) -> ClientTls {
        install_crypto_provider();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        ClientTls {
            config: Arc::new(config),
            roots: Arc::new(roots),
            ca_file,
        }
    }

    /// The rustls config (for async-nats, and anything else that takes one).
    pub fn rustls(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// The CA file this trust store was built from, if any.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }
}

/// Add every PEM certificate of `pem` to `roots`; errors (naming `tls.ca_file` and `source`) when there
/// is none or one is not a usable trust anchor.
fn add_pem(roots: &mut RootCertStore, pem: &[u8], source: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        field: "tls.ca_file".into(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{source}: not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{source}: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
        )));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("{source}: not a usable CA: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = ClientTls::with_extra_ca_file(&missing)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tls.ca_file") && err.contains("cannot read"),
            "{err}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = ClientTls::with_extra_ca_file(&empty)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
