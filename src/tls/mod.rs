//! TLS, with rustls (its `ring` provider, one for both sides): the client side that
//! `wss://` upstreams are reached with, whose roots are the system's (read once, when the
//! first route needs them) or a route's own CA file; and the main port's server side
//! ([`server`]).

pub mod server;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The cryptography both sides use.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA certificates in the PEM file at `path`: at least one, each valid.
pub fn roots_from(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("{} is not PEM", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{} holds a certificate rustls cannot use", path.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(roots)
}

/// The system's CA certificates, read once.
fn system_roots() -> anyhow::Result<Arc<RootCertStore>> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        match added {
            0 => Err(match found.errors.first() {
                Some(error) => format!("no system CA certificates could be read ({error})"),
                None => "the system has no CA certificates".into(),
            }),
            _ => Ok(Arc::new(roots)),
        }
    });
    match roots {
        Ok(roots) => Ok(roots.clone()),
        Err(why) => bail!("{why}: install them, or give the route an upstream.ca_file"),
    }
}

/// The client configuration for a `wss://` upstream: trusting `ca_file`'s certificates, or
/// the system's; offering HTTP/1.1 by ALPN, as a WebSocket handshake needs.
pub fn client(ca_file: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let roots = match ca_file {
        Some(path) => Arc::new(roots_from(path)?),
        None => system_roots()?,
    };
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("rustls has no protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
