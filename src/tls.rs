//! TLS for every client connection (wss Socket.IO and runtime WebSockets, the
//! https token endpoint, REST Endpoint, context inject and webhook): rustls with
//! the ring provider and the webpki roots, one shared config. Owns the
//! process-wide `--insecure` switch, which accepts any server certificate
//! (self-signed test deployments) and is only ever set by that explicit flag;
//! the CLI prints a warning when it is on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static INSECURE: AtomicBool = AtomicBool::new(false);

/// Turns certificate verification off (or back on) for connections opened
/// from now on. Only `--insecure` calls this.
pub fn set_insecure(on: bool) {
    INSECURE.store(on, Ordering::SeqCst);
}

/// Whether certificate verification is off.
pub fn insecure() -> bool {
    INSECURE.load(Ordering::SeqCst)
}

/// The rustls client config for wss connections, verifying certificates
/// against the webpki roots unless `--insecure` is on.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static VERIFIED: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    static UNVERIFIED: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let (cell, verify) = if insecure() {
        (&UNVERIFIED, false)
    } else {
        (&VERIFIED, true)
    };
    cell.get_or_init(|| build_config(verify)).clone()
}

/// A `reqwest` client builder with the same TLS policy (certificate checks
/// off only under `--insecure`).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().danger_accept_invalid_certs(insecure())
}

fn build_config(verify: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if verify {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `--insecure`: any certificate chain and name is accepted; handshake
/// signatures are still checked, so the connection is encrypted to whoever
/// holds the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configs_build_without_a_process_provider() {
        assert!(client_config().is_ok());
        assert!(build_config(true).is_ok());
        assert!(build_config(false).is_ok());
    }
}
