//! The server's TLS certificate (`--tls-cert`, `--tls-key`): loaded and checked at start-up,
//! reloaded on SIGHUP.
//!
//! Every TLS listener asks [`Certificates`] for the certificate at each handshake, so a
//! reload is seen by the next handshake while connections already open keep the session
//! they have.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where the certificate chain and its private key are, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate could not be loaded: each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read the TLS certificate {}: {source}", .path.display())]
    Certificate {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)", .0.display())]
    NoCertificate(PathBuf),
    #[error(
        "cannot read the TLS private key {}: {source} (expected a PEM PKCS#8, RSA or EC key)",
        .path.display()
    )]
    Key {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the key {} does not fit the certificate {}: {source}", .key.display(), .cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("{}: not a readable X.509 certificate: {reason}", .path.display())]
    Unparsable { path: PathBuf, reason: String },
    #[error(
        "the TLS certificate {} expired on {not_after}: clients would refuse it; renew it",
        .path.display()
    )]
    Expired { path: PathBuf, not_after: String },
    #[error(
        "the TLS certificate {} is not valid before {not_before}: check the clock or the certificate",
        .path.display()
    )]
    NotYetValid { path: PathBuf, not_before: String },
}

/// The certificate in force, shared by every TLS listener; [`Certificates::reload`] swaps
/// it.
pub struct Certificates {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// The crypto rustls uses: ring, which builds from the crate alone (aws-lc-rs needs cmake
/// and a C toolchain's extras).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Certificates {
    /// Loads and checks `files`: a readable chain, a key that fits it, valid now. A
    /// certificate that has expired is refused rather than served, so the operator hears of
    /// it at start-up instead of from every client.
    pub fn load(files: TlsFiles) -> Result<Arc<Certificates>, CertError> {
        let key = load_key(&files)?;
        Ok(Arc::new(Certificates {
            files,
            current: RwLock::new(Arc::new(key)),
        }))
    }

    /// Reads the files again; on success new handshakes get the new certificate, on failure
    /// the current one stays in force.
    pub fn reload(&self) -> Result<(), CertError> {
        let key = load_key(&self.files)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// A server configuration presenting these certificates, offering `alpn` (such as
    /// `http/1.1`) when not empty.
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn load_key(files: &TlsFiles) -> Result<CertifiedKey, CertError> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| CertError::Certificate {
            path: files.cert.clone(),
            source,
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate(files.cert.clone()));
    };
    check_leaf(&files.cert, leaf)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| CertError::Key {
        path: files.key.clone(),
        source,
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| CertError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}

/// Refuses a certificate outside its validity; warns of one marked as a CA, which rustls
/// clients (`charla connect` among them) refuse as a server's own (`openssl req -x509`
/// makes one unless told `-addext basicConstraints=critical,CA:FALSE`).
fn check_leaf(path: &Path, leaf: &CertificateDer<'_>) -> Result<(), CertError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| CertError::Unparsable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if cert.is_ca() {
        tracing::warn!(
            cert = %path.display(),
            "this certificate is marked as a CA (basicConstraints CA:TRUE): rustls clients, \
             charla connect among them, refuse it as a server's certificate; issue one with CA:FALSE"
        );
    }
    let validity = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    let shown = |t: x509_parser::time::ASN1Time| {
        jiff::Timestamp::from_second(t.timestamp())
            .map(|t| t.to_string())
            .unwrap_or_else(|_| t.to_string())
    };
    if now > validity.not_after {
        return Err(CertError::Expired {
            path: path.to_path_buf(),
            not_after: shown(validity.not_after),
        });
    }
    if now < validity.not_before {
        return Err(CertError::NotYetValid {
            path: path.to_path_buf(),
            not_before: shown(validity.not_before),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for localhost and its key, as PEM.
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn write(dir: &Path, (cert, key): &(String, String)) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    fn presented(certs: &Certificates) -> CertificateDer<'static> {
        certs.current.read().unwrap().cert[0].clone()
    }

    #[test]
    fn a_reload_swaps_the_certificate_and_a_bad_one_keeps_the_current() {
        let dir = tempfile::tempdir().unwrap();
        let first = self_signed();
        let certs = Certificates::load(write(dir.path(), &first)).unwrap();
        let shown = presented(&certs);

        let second = self_signed();
        write(dir.path(), &second);
        certs.reload().unwrap();
        assert_ne!(presented(&certs), shown);
        let shown = presented(&certs);

        std::fs::write(&certs.files().key, "not a key").unwrap();
        let error = certs.reload().unwrap_err();
        assert!(matches!(error, CertError::Key { .. }), "{error}");
        assert_eq!(presented(&certs), shown);
    }
}
