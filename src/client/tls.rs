//! The client side of TLS (`tls://HOST:PORT`): whom to trust and how a refusal reads.
//!
//! Without `--ca` the server is verified against the system's roots, read with
//! rustls-native-certs: the machine's own trust store, so a CA its administrator added is
//! trusted as curl and openssl trust it (a baked-in list such as webpki-roots would not know
//! it, nor follow the system's removals).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::endpoint::Endpoint;
use super::error::ClientError;

/// A connector trusting the certificates in the PEM file `ca`, or the system's roots.
pub fn connector(ca: Option<&Path>) -> Result<TlsConnector, ClientError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            let bad = |reason: String| ClientError::Ca {
                path: path.to_path_buf(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            // Some unreadable entries among many are common; only finding none is fatal.
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map_or("none found".to_string(), |e| e.to_string());
                return Err(ClientError::NoRoots(why));
            }
        }
    }
    let config = ClientConfig::builder_with_provider(crate::server::tls_provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name the server's certificate must carry: a DNS name or an IP address.
pub fn name(host: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a host name TLS can verify: {e}"),
        )
    })
}

/// The failure of a connection as the person should read it when the server's certificate
/// was the reason.
pub fn untrusted(endpoint: &Endpoint, error: &io::Error) -> Option<ClientError> {
    let inner = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::InvalidCertificate(_) => Some(ClientError::Untrusted {
            endpoint: endpoint.clone(),
            reason: inner.to_string(),
        }),
        rustls::Error::InvalidMessage(_) => Some(ClientError::NotTls(endpoint.clone())),
        _ => None,
    }
}
