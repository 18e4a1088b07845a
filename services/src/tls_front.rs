//! A TLS front before a plain-TCP Kafka broker (`kafka-tls-front`): it presents a certificate
//! and key (PEM), and forwards every connection's bytes to the broker unchanged, so SASL
//! passes through to the broker. What the local platform runs before tansu, which cannot
//! terminate TLS itself (its `--cert`/`--key` are parsed and never used).
//!
//! The broker must advertise the front's address, so clients come back through it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// `kafka-tls-front`'s flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "kafka-tls-front",
    about = "Terminates TLS before a plain-TCP Kafka broker"
)]
pub struct Args {
    /// Where to accept TLS connections.
    #[arg(long, env = "TLS_FRONT_LISTEN")]
    pub listen: SocketAddr,
    /// The broker's plain-TCP address every connection is forwarded to.
    #[arg(long, env = "TLS_FRONT_UPSTREAM")]
    pub upstream: SocketAddr,
    /// The certificate chain to present (PEM: the certificate first).
    #[arg(long, env = "TLS_FRONT_CERT")]
    pub cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long, env = "TLS_FRONT_KEY")]
    pub key: PathBuf,
}

/// Why the front cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsFrontError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// The key file holds no PEM private key.
    #[error("{0} holds no PEM private key")]
    NoKey(PathBuf),
    /// rustls refuses the pair (e.g. the key does not match the certificate).
    #[error("the certificate and key cannot be used: {0}")]
    Tls(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsFrontError> {
    std::fs::read(path).map_err(|source| TlsFrontError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The acceptor presenting the PEM certificate chain `cert` (in `cert_path`) and key.
pub fn acceptor_from_pem(
    cert: &[u8],
    key: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<TlsAcceptor, TlsFrontError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsFrontError::NoCertificate(cert_path.to_owned()))?;
    if chain.is_empty() {
        return Err(TlsFrontError::NoCertificate(cert_path.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|_| TlsFrontError::NoKey(key_path.to_owned()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor for the files `args` names.
pub fn acceptor(args: &Args) -> Result<TlsAcceptor, TlsFrontError> {
    acceptor_from_pem(&read(&args.cert)?, &read(&args.key)?, &args.cert, &args.key)
}

/// Accepts on `listener` until the task is dropped: each connection's TLS is terminated and
/// its bytes copied both ways to `upstream`. A failed handshake or an unreachable broker ends
/// that connection only (logged).
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, upstream: SocketAddr) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let mut tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let mut broker = match TcpStream::connect(upstream).await {
                Ok(broker) => broker,
                Err(e) => {
                    tracing::warn!(%peer, %upstream, error = %e, "cannot reach the broker");
                    return;
                }
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_without_pem_are_named_in_the_error() {
        let cert = Path::new("/etc/broker.crt");
        let key = Path::new("/etc/broker.key");
        let none = acceptor_from_pem(b"not a certificate", b"", cert, key).err();
        assert_eq!(
            none.map(|e| e.to_string()),
            Some("/etc/broker.crt holds no PEM certificate".to_owned())
        );
        let missing = acceptor(&Args {
            listen: ([127, 0, 0, 1], 0).into(),
            upstream: ([127, 0, 0, 1], 0).into(),
            cert: PathBuf::from("/nonexistent/broker.crt"),
            key: key.to_owned(),
        });
        assert!(missing.err().is_some_and(|e| {
            e.to_string()
                .starts_with("cannot read /nonexistent/broker.crt")
        }),);
    }
}
