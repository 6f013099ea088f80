//! The listener's TLS: `tls_server_config` of the web configuration turned into a
//! rustls `ServerConfig` (ring provider, as every client of the agent), with the
//! toolkit's names for client authentication and protocol versions.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config_kit::ctx::Problem;

/// PEM text and the key it was given under, to name it in a problem.
#[derive(Debug)]
pub struct Pem {
    pub key: String,
    pub bytes: Vec<u8>,
}

/// `client_auth_type`, of the toolkit's five those that verify what they take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert`, the default.
    None,
    /// `VerifyClientCertIfGiven`: a client without a certificate is let in.
    IfGiven,
    /// `RequireAndVerifyClientCert`.
    Required,
}

impl ClientAuth {
    pub fn parse(given: &str) -> Result<ClientAuth, String> {
        match given {
            "" | "NoClientCert" => Ok(ClientAuth::None),
            "VerifyClientCertIfGiven" => Ok(ClientAuth::IfGiven),
            "RequireAndVerifyClientCert" => Ok(ClientAuth::Required),
            "RequestClientCert" | "RequireAnyClientCert" => Err(format!(
                "{given:?} takes a certificate without verifying it, which this agent \
                 does not do; use RequireAndVerifyClientCert"
            )),
            other => Err(format!(
                "{other:?} is not a client auth type; use NoClientCert, \
                 VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Tls12,
    Tls13,
}

pub fn parse_version(given: &str) -> Result<Version, String> {
    match given {
        "TLS12" => Ok(Version::Tls12),
        "TLS13" => Ok(Version::Tls13),
        "TLS10" | "TLS11" => Err(format!(
            "{given} is not supported (rustls speaks TLS12 and TLS13)"
        )),
        other => Err(format!(
            "{other:?} is not a TLS version; use TLS12 or TLS13"
        )),
    }
}

/// What `tls_server_config` holds once each key is read.
#[derive(Debug)]
pub struct TlsSettings {
    /// `None` when missing or unreadable (already reported), as for `key`.
    pub cert: Option<Pem>,
    pub key: Option<Pem>,
    /// `None` when not valid (already reported).
    pub client_auth: Option<ClientAuth>,
    pub client_ca: Option<Pem>,
    pub min_version: Version,
    pub max_version: Version,
}

const P: &str = "tls_server_config";

/// The server's TLS configuration, or every problem with what `s` holds (a part already
/// found missing or invalid makes it an error with no more problems). No problem shows
/// the private key or a part of it.
pub fn server_config(s: TlsSettings) -> Result<ServerConfig, Vec<Problem>> {
    let mut problems = Vec::new();
    let certs = s
        .cert
        .as_ref()
        .and_then(|pem| certificates(pem, &mut problems));
    let key = s
        .key
        .as_ref()
        .and_then(|pem| match PrivateKeyDer::from_pem_slice(&pem.bytes) {
            Ok(key) => Some(key),
            Err(_) => {
                problems.push(Problem::new(
                    &pem.key,
                    "holds no PEM private key (PKCS#8, PKCS#1 or SEC1) that can be read",
                ));
                None
            }
        });
    let roots = match (&s.client_ca, s.client_auth) {
        (_, None) | (None, Some(ClientAuth::None)) => None,
        (Some(_), Some(ClientAuth::None)) => {
            problems.push(Problem::new(
                format!("{P}.client_auth_type"),
                "client_ca_file is set but client_auth_type is NoClientCert; use \
                 RequireAndVerifyClientCert to check client certificates",
            ));
            None
        }
        (None, Some(_)) => {
            problems.push(Problem::new(
                format!("{P}.client_ca_file"),
                "is required to verify client certificates (client_auth_type)",
            ));
            None
        }
        (Some(ca), Some(_)) => roots(ca, &mut problems),
    };
    if s.min_version > s.max_version {
        problems.push(Problem::new(
            format!("{P}.min_version"),
            "is above max_version",
        ));
    }
    match (certs, key, s.client_auth) {
        (Some(certs), Some(key), Some(auth)) if problems.is_empty() => {
            build(&s, auth, certs, key, roots).map_err(|p| vec![p])
        }
        _ => Err(problems),
    }
}

fn build(
    s: &TlsSettings,
    auth: ClientAuth,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Option<RootCertStore>,
) -> Result<ServerConfig, Problem> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (Version::Tls12, &rustls::version::TLS12),
        (Version::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (s.min_version..=s.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| Problem::new(format!("{P}.min_version"), e.to_string()))?;
    let builder = match roots {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth {
                ClientAuth::IfGiven => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|e| Problem::new(ca_key(s), format!("cannot be used: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        let name = |pem: &Option<Pem>| pem.as_ref().map_or("", |p| p.key.as_str()).to_owned();
        Problem::new(
            name(&s.key),
            format!("cannot be used with {}: {e}", name(&s.cert)),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn ca_key(s: &TlsSettings) -> String {
    s.client_ca
        .as_ref()
        .map_or_else(|| format!("{P}.client_ca_file"), |ca| ca.key.clone())
}

fn certificates(pem: &Pem, problems: &mut Vec<Problem>) -> Option<Vec<CertificateDer<'static>>> {
    match CertificateDer::pem_slice_iter(&pem.bytes).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if !certs.is_empty() => Some(certs),
        Ok(_) => {
            problems.push(Problem::new(&pem.key, "holds no PEM certificate"));
            None
        }
        Err(e) => {
            problems.push(Problem::new(
                &pem.key,
                format!("is not a PEM certificate chain: {e}"),
            ));
            None
        }
    }
}

fn roots(ca: &Pem, problems: &mut Vec<Problem>) -> Option<RootCertStore> {
    let certs = certificates(ca, problems)?;
    let mut roots = RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(certs);
    if roots.is_empty() || ignored > 0 {
        problems.push(Problem::new(
            &ca.key,
            format!("{ignored} certificate(s) could not be read as a CA"),
        ));
        return None;
    }
    Some(roots)
}
