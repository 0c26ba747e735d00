//! TLS on the main port: the certificate and its key, loaded and checked ([`load`]),
//! swapped on SIGHUP without touching the connections that have them already
//! ([`Acceptor::reload`]), and the handshake of a connection whose first bytes were a
//! ClientHello ([`Acceptor::accept`]).
//!
//! TLS 1.2 and 1.3 (rustls speaks nothing older), ALPN `http/1.1`. Clients that cannot
//! (Flash's own sockets, Windows XP's browsers, early Android and iOS) keep the same port in
//! plain text, unless `--tls-only`.

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, ServerConnection};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;

use crate::config::TlsFiles;
use crate::stream::Stream;

/// True when `first`, a connection's first bytes, start a TLS handshake record (a
/// ClientHello): content type 22, protocol major version 3.
pub fn is_client_hello(first: &[u8]) -> bool {
    matches!(first, [0x16, 0x03, ..] | [0x16])
}

/// A certificate and key that belong together, with what `--check` says of them.
pub struct Loaded {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// The DNS names and addresses the certificate is for (its subjectAltName).
    pub names: Vec<String>,
    /// When it stops being valid.
    pub not_after: SystemTime,
    /// When it starts being valid.
    pub not_before: SystemTime,
}

impl Loaded {
    /// What would make browsers refuse it now: expired, not yet valid, or for no name.
    pub fn problems(&self, files: &TlsFiles) -> Vec<String> {
        let (cert, now) = (files.cert.display(), SystemTime::now());
        let mut problems = Vec::new();
        if now > self.not_after {
            problems.push(format!("TLS: {cert}: the certificate has expired"));
        }
        if now < self.not_before {
            problems.push(format!("TLS: {cert}: the certificate is not valid yet"));
        }
        if self.names.is_empty() {
            problems.push(format!(
                "TLS: {cert}: the certificate names no host (no subjectAltName): browsers refuse it"
            ));
        }
        problems
    }
}

/// Reads and checks the pair: PEM, a chain of at least one certificate, a key rustls can
/// sign with, and the key matching the first certificate.
pub fn load(files: &TlsFiles) -> anyhow::Result<Loaded> {
    let (cert_path, key_path) = (files.cert.display(), files.key.display());
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("cannot read {cert_path}"))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{cert_path} is not PEM"))?;
    let Some(first) = chain.first() else {
        bail!("{cert_path} holds no certificate");
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(first)
        .map_err(|e| anyhow::anyhow!("{cert_path}: the certificate cannot be read: {e}"))?;
    let validity = parsed.validity();
    let time = |t: x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
    };
    let names = match parsed.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().filter_map(name).collect(),
        _ => Vec::new(),
    };
    let (not_before, not_after) = (time(validity.not_before), time(validity.not_after));
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            anyhow::anyhow!("{key_path} holds no private key")
        }
        e => anyhow::anyhow!("cannot read the private key {key_path}: {e}"),
    })?;
    let signer = super::provider()
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("{key_path}: a private key rustls cannot use"))?;
    let key = CertifiedKey::new(chain, signer);
    key.keys_match()
        .map_err(|_| anyhow::anyhow!("{key_path} is not the key of {cert_path}"))?;
    Ok(Loaded {
        key: Arc::new(key),
        names,
        not_after,
        not_before,
    })
}

/// What `--check` says of the main port's TLS.
pub fn describe(files: &TlsFiles, loaded: &Loaded, only: bool) -> String {
    let names = match loaded.names.is_empty() {
        true => "no host".to_string(),
        false => loaded.names.join(", "),
    };
    let plain = match only {
        true => "plain HTTP refused (--tls-only)",
        false => "plain clients on the same port",
    };
    format!(
        "TLS on the main port: {} for {names}, valid until {}; {plain}\n",
        files.cert.display(),
        humantime::format_rfc3339_seconds(loaded.not_after),
    )
}

/// A subjectAltName entry as `--check` shows it.
fn name(general: &x509_parser::extensions::GeneralName<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    match general {
        GeneralName::DNSName(dns) => Some((*dns).to_string()),
        GeneralName::IPAddress([a, b, c, d]) => {
            Some(std::net::Ipv4Addr::new(*a, *b, *c, *d).to_string())
        }
        GeneralName::IPAddress(v6) => <[u8; 16]>::try_from(*v6)
            .ok()
            .map(|octets| std::net::Ipv6Addr::from(octets).to_string()),
        _ => None,
    }
}

/// The certificate served now: replaced whole on reload; a handshake takes it once.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The main port's TLS side.
pub struct Acceptor {
    /// rustls's settings, the certificate resolved through `current`.
    config: Arc<ServerConfig>,
    /// The certificate served.
    current: Arc<Current>,
    /// Where it is read from again on reload.
    files: TlsFiles,
}

impl Acceptor {
    /// Serves the pair in `files` (checked as [`load`] does; an expired one is served, with
    /// a warning).
    pub fn new(files: &TlsFiles) -> anyhow::Result<Acceptor> {
        let loaded = load(files)?;
        for problem in loaded.problems(files) {
            tracing::warn!("{problem}");
        }
        let current = Arc::new(Current(RwLock::new(loaded.key)));
        let mut config = ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .context("rustls has no protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Acceptor {
            config: Arc::new(config),
            current,
            files: files.clone(),
        })
    }

    /// Reads the pair again and serves it to the handshakes from now on; on a problem, the
    /// one served stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let loaded = load(&self.files)?;
        for problem in loaded.problems(&self.files) {
            tracing::warn!("{problem}");
        }
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = loaded.key;
        Ok(())
    }

    /// The TLS handshake of `tcp`, whose first bytes `first` (a ClientHello's start) were
    /// read already, within `limit`.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        first: &[u8],
        limit: Duration,
    ) -> io::Result<Stream> {
        let mut tls = ServerConnection::new(self.config.clone()).map_err(io::Error::other)?;
        let mut early = first;
        while !early.is_empty() {
            tls.read_tls(&mut early)?;
        }
        let mut stream = Stream::tls(tcp, tls);
        match tokio::time::timeout(limit, poll_fn(|cx| stream.poll_handshake(cx))).await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no TLS handshake before the handshake timeout",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_hello_is_told_from_a_request_and_a_policy_request() {
        assert!(is_client_hello(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(is_client_hello(&[0x16]));
        assert!(!is_client_hello(b"GET / HTTP/1.1\r\n"));
        assert!(!is_client_hello(b"<policy-file-request/>\0"));
        assert!(!is_client_hello(&[0x16, 0x02]));
        assert!(!is_client_hello(&[]));
    }
}
