//! TLS server configuration: rustls 0.23 with the ring provider, TLS 1.2 and 1.3 only,
//! a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS material could not be used; `key()` names the config key at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate file {path}: {source}")]
    ReadCert {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read key file {path}: {source}")]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no PEM certificate found in {0}")]
    NoCert(PathBuf),
    #[error("no PEM private key found in {0}")]
    NoKey(PathBuf),
    #[error("certificate and key do not fit together: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// The config key this error is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::ReadCert { .. } | TlsError::NoCert(_) => "server.tls_cert",
            TlsError::ReadKey { .. } | TlsError::NoKey(_) => "server.tls_key",
            TlsError::Rustls(_) => "server.tls_key",
        }
    }
}

/// Loads the certificate chain and key into a server config (no client auth).
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|source| TlsError::ReadCert {
        path: cert.to_path_buf(),
        source,
    })?;
    let key_pem = std::fs::read(key).map_err(|source| TlsError::ReadKey {
        path: key.to_path_buf(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::ReadCert {
            path: cert.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCert(cert.to_path_buf()));
    }
    let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::ReadKey {
            path: key.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(key.to_path_buf()))?;
    server_config(chain, key_der)
}

/// Builds the server config from DER material (used by tests with generated certs).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}
