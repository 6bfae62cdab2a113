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
use rustls::{CertificateError, ClientConfig, RootCertStore};
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

/// Why a TLS handshake failed, in words, when rustls's own words would be its type names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server's certificate failed verification: why, and what to do about it.
    Untrusted { reason: String, hint: String },
    /// What answered does not speak TLS.
    NotTls,
    /// The handshake failed for another reason than the certificate.
    Handshake(String),
}

impl Refusal {
    /// The refusal behind `error`, a handshake with `host` trusting `ca` (the system's
    /// roots when `None`); `None` when the handshake was not the reason.
    pub fn of(error: &io::Error, host: &str, ca: Option<&Path>) -> Option<Refusal> {
        let inner = error.get_ref()?.downcast_ref::<rustls::Error>()?;
        match inner {
            rustls::Error::InvalidCertificate(why) => {
                let (reason, hint) = certificate(why, host, ca);
                Some(Refusal::Untrusted { reason, hint })
            }
            rustls::Error::InvalidMessage(_) => Some(Refusal::NotTls),
            rustls::Error::PeerIncompatible(_) => Some(Refusal::Handshake(
                "the server offers no TLS version or cipher suite this client takes (TLS 1.2 or 1.3)".into(),
            )),
            rustls::Error::AlertReceived(alert) => Some(Refusal::Handshake(format!(
                "the server refused it ({alert:?} alert)"
            ))),
            _ => None,
        }
    }
}

/// The failure of a connection as the person should read it when the TLS handshake was
/// the reason.
pub fn untrusted(endpoint: &Endpoint, error: &io::Error) -> Option<ClientError> {
    let (host, ca) = match endpoint {
        Endpoint::Tls { host, ca, .. } => (host.as_str(), ca.as_deref()),
        _ => ("", None),
    };
    let endpoint = endpoint.clone();
    Some(match Refusal::of(error, host, ca)? {
        Refusal::Untrusted { reason, hint } => ClientError::Untrusted {
            endpoint,
            reason,
            hint,
        },
        Refusal::NotTls => ClientError::NotTls(endpoint),
        Refusal::Handshake(reason) => ClientError::Handshake { endpoint, reason },
    })
}

/// What is wrong with the server's certificate, and what to do about it.
fn certificate(error: &CertificateError, host: &str, ca: Option<&Path>) -> (String, String) {
    let date = |secs: u64| {
        jiff::Timestamp::from_second(secs as i64).map_or_else(
            |_| format!("{secs} s after 1970"),
            |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        )
    };
    let renew = "the server needs a new certificate".to_string();
    match error {
        // No trusted certificate signed it: webpki also says so as a bad signature when a
        // trusted one bears its issuer's name (a self-signed certificate and another of
        // that name, or another CA of the same name).
        CertificateError::UnknownIssuer
        | CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => match ca {
            Some(path) => (
                format!("unknown issuer: not signed by the CA in {}", path.display()),
                "pass as --ca the certificate of the CA that signed it (for a self-signed one, the certificate itself)".into(),
            ),
            None => (
                "unknown issuer: it is self-signed, or signed by a CA this machine does not trust".into(),
                "pass --ca FILE, the certificate of the CA that signed it (for a self-signed one, the certificate itself)".into(),
            ),
        },
        CertificateError::NotValidForNameContext { presented, .. } if !presented.is_empty() => (
            format!(
                "it is for {}, not {host}",
                presented
                    .iter()
                    .map(|name| bare(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "connect by a name it is for, or have it issued for this one".into(),
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
            format!("it is not for {host}"),
            "connect by a name it is for, or have it issued for this one".into(),
        ),
        CertificateError::ExpiredContext { not_after, .. } => {
            (format!("it expired on {}", date(not_after.as_secs())), renew)
        }
        CertificateError::Expired => ("it has expired".into(), renew),
        CertificateError::NotValidYetContext { not_before, .. } => (
            format!("it is not valid until {}", date(not_before.as_secs())),
            "check this machine's clock and the server's".into(),
        ),
        CertificateError::NotValidYet => (
            "it is not valid yet".into(),
            "check this machine's clock and the server's".into(),
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
            "it is not for a TLS server (its extended key usage)".into(),
            "have it issued for serverAuth".into(),
        ),
        CertificateError::Revoked => ("it was revoked".into(), renew),
        CertificateError::Other(other)
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            (
                "it is a CA certificate (CA:TRUE), which a server may not present as its own".into(),
                "make the server's certificate with basicConstraints CA:FALSE (README, \"TLS\")".into(),
            )
        }
        CertificateError::BadEncoding => ("it is not a well-formed certificate".into(), renew),
        other => (
            other.to_string(),
            "for a server with its own CA, give --ca FILE".into(),
        ),
    }
}

/// A name a certificate presents, as webpki spells it (`DnsName("a.example")`,
/// `IpAddress(192.0.2.1)`), without the spelling: `a.example`, `192.0.2.1`.
fn bare(name: &str) -> &str {
    name.split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(name, |inner| inner.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_lose_webpkis_spelling() {
        assert_eq!(bare(r#"DnsName("chat.example.org")"#), "chat.example.org");
        assert_eq!(bare("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(bare("IpAddress(2001::db8)"), "2001::db8");
        assert_eq!(bare("DirectoryName"), "DirectoryName");
    }
}
