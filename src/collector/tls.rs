//! TLS to Redis with rustls (ring), set up as the `redis` crate did before the collector
//! owned its streams: the configured CA bundle or the system's roots, an optional client
//! certificate, and `insecure_skip_verify` accepting any certificate without SNI.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::model::{CollectError, ErrorKind, Tls};

/// The TLS handshake over an open TCP connection.
pub async fn handshake(
    tls: &Tls,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, CollectError> {
    let config = client_config(tls)?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| invalid(&e.to_string()))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| CollectError::untrusted(ErrorKind::Tls, &format!("TLS handshake: {e}")))
}

fn invalid(text: &str) -> CollectError {
    CollectError::untrusted(ErrorKind::Tls, text)
}

fn client_config(tls: &Tls) -> Result<ClientConfig, CollectError> {
    let roots = match &tls.ca_cert {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| invalid(&format!("CA certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| invalid(&format!("CA certificate: {e}")))?;
            }
            roots
        }
        None => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            if let Some(e) = found.errors.first().filter(|_| found.certs.is_empty()) {
                return Err(invalid(&format!("system certificates: {e}")));
            }
            roots.add_parsable_certificates(found.certs);
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(&format!("client certificate: {e}")))?;
            // The key's text is a secret: its parse error is not echoed.
            let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes())
                .map_err(|_| invalid("client key: not a PEM private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid(&format!("client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    if tls.insecure_skip_verify {
        config.enable_sni = false;
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(AcceptAny {
                algorithms: provider.signature_verification_algorithms,
            }));
    }
    Ok(config)
}

/// `insecure_skip_verify`: any certificate is accepted (the handshake's signatures are
/// still checked against it).
#[derive(Debug)]
struct AcceptAny {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
