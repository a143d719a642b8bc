//! TLS for ecapture's own connections: `wss://` collectors (`--logaddr`,
//! `--eventaddr`) and the eCaptureQ server over `wss://`.
//!
//! The TLS stack is rustls (pure Rust, linked in), never a library that
//! ecapture captures: a sink speaking through the system's OpenSSL would
//! feed its own traffic back into the capture (the BPF programs also skip
//! ecapture's own process, whatever it links).
//!
//! Collectors' certificates are verified against the host's CA store
//! (`SSL_CERT_FILE`, `SSL_CERT_DIR`, else the usual bundle paths) plus any
//! `--cacert` file, and the name in the URL is checked. Verification is off
//! only with `--insecure-skip-tls-verify`, said loudly at start.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, ServerConfig, ServerConnection, SignatureScheme, StreamOwned};

use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

use crate::error::{Error, Result};

/// The CA bundles tried when `SSL_CERT_FILE` is not set (Debian/Ubuntu,
/// Fedora/RHEL, openSUSE, Alpine/others), first found wins.
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// How `wss://` collectors are trusted (the command line's TLS flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTrust {
    /// `--cacert`: CA certificates (PEM) trusted besides the host's.
    pub cacert: Option<PathBuf>,
    /// `--insecure-skip-tls-verify`: accept any certificate and name.
    pub insecure: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// PEM certificates of `path` into `store`; how many were added.
fn add_pem_file(store: &mut RootCertStore, path: &Path) -> io::Result<usize> {
    let mut n = 0;
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| io::Error::other(e.to_string()))? {
        let cert = cert.map_err(|e| io::Error::other(e.to_string()))?;
        // A bundle may hold certificates webpki cannot use; skip those.
        if store.add(cert).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// The host's CA store: `SSL_CERT_FILE`, or the first bundle found, and the
/// PEM files of `SSL_CERT_DIR`. Empty when the host has none (only
/// `--cacert` is trusted then).
fn host_roots(store: &mut RootCertStore) -> Vec<String> {
    let mut from = Vec::new();
    let file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).or_else(|| BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()));
    if let Some(f) = file {
        match add_pem_file(store, &f) {
            Ok(n) => from.push(format!("{} ({n})", f.display())),
            Err(e) => log::warn!("CA bundle {}: {e}; not used", f.display()),
        }
    }
    if let Some(dir) = std::env::var_os("SSL_CERT_DIR") {
        for d in std::env::split_paths(&dir) {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            let mut n = 0;
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "pem" || x == "crt") {
                    n += add_pem_file(store, &p).unwrap_or(0);
                }
            }
            from.push(format!("{} ({n})", d.display()));
        }
    }
    from
}

impl ClientTrust {
    /// The client configuration for `wss://` collectors; a `--cacert` that
    /// cannot be read or holds no certificate is an error (exit 2).
    pub fn config(&self) -> Result<Arc<ClientConfig>> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::runtime(format!("TLS: {e}")))?;
        let config = if self.insecure {
            log::warn!(
                "--insecure-skip-tls-verify: wss:// collectors' certificates and names are NOT checked; anyone on the \
                 path can read the captured plaintext"
            );
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider()))).with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            let from = host_roots(&mut roots);
            if let Some(ca) = &self.cacert {
                let n = add_pem_file(&mut roots, ca)
                    .map_err(|e| Error::usage(format!("invalid value '{}' for --cacert: {e}", ca.display())))?;
                if n == 0 {
                    return Err(Error::usage(format!(
                        "invalid value '{}' for --cacert: no PEM certificate in it",
                        ca.display()
                    )));
                }
                log::info!("wss: trusting {n} certificate(s) from --cacert {}", ca.display());
            }
            log::debug!("wss: host CA store: {}", if from.is_empty() { "none found".into() } else { from.join(", ") });
            if roots.is_empty() {
                log::warn!("wss: no CA certificate found on this host ({}) and no --cacert: every collector will be refused", BUNDLES.join(", "));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(Arc::new(config))
    }
}

/// `--insecure-skip-tls-verify`: signatures are still checked (the
/// handshake needs them), the certificate chain and name are not.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server configuration of `--ecaptureq wss://…`: a certificate chain
/// and its key, PEM files (errors name the flag, exit 2).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let bad = |flag: &str, p: &Path, why: String| Error::usage(format!("invalid value '{}' for {flag}: {why}", p.display()));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("--ecaptureq-cert", cert, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("--ecaptureq-cert", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("--ecaptureq-cert", cert, "no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--ecaptureq-key", key, e.to_string()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::runtime(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::usage(format!("--ecaptureq-cert/--ecaptureq-key: {e}")))?;
    Ok(Arc::new(config))
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection to `host:port` (each address in turn), with a connect
/// timeout and a write timeout.
pub fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} resolves to no address"));
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A WebSocket client connection to a `ws://` or `wss://` URL (`tls` for
/// wss), blocking. The TLS handshake runs on its own first, so a
/// certificate that fails verification is reported as such.
pub fn connect_ws(url: &str, tls: Option<&Arc<ClientConfig>>, config: Option<WebSocketConfig>) -> io::Result<WebSocket<Stream>> {
    let bad = || io::Error::other(format!("bad WebSocket URL {url}"));
    let (rest, secure) = match (url.strip_prefix("wss://"), url.strip_prefix("ws://")) {
        (Some(r), _) => (r, true),
        (None, Some(r)) => (r, false),
        _ => return Err(bad()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once("]:").ok_or_else(bad)?
    } else {
        authority.rsplit_once(':').ok_or_else(bad)?
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let tcp = connect_tcp(host, port)?;
    tcp.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    let stream = match (secure, tls) {
        (true, Some(config)) => {
            let mut s = Stream::client(config, host, tcp)?;
            s.handshake().map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
            s
        }
        (true, None) => return Err(io::Error::other(format!("{url}: wss:// without a TLS configuration"))),
        (false, _) => Stream::Plain(tcp),
    };
    let (ws, _) = tungstenite::client::client_with_config(url, stream, config).map_err(|e| io::Error::other(e.to_string()))?;
    ws.get_ref().tcp().set_read_timeout(None)?;
    Ok(ws)
}

/// A TCP connection, in the clear or inside TLS (client or server side).
pub enum Stream {
    Plain(TcpStream),
    Client(Box<StreamOwned<ClientConnection, TcpStream>>),
    Server(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    /// A TLS client on `tcp` for `host` (the name checked in the certificate).
    pub fn client(config: &Arc<ClientConfig>, host: &str, tcp: TcpStream) -> io::Result<Stream> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| io::Error::other(format!("{host}: {e}")))?;
        let conn = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        Ok(Stream::Client(Box::new(StreamOwned::new(conn, tcp))))
    }

    /// A TLS server on an accepted `tcp`.
    pub fn server(config: &Arc<ServerConfig>, tcp: TcpStream) -> io::Result<Stream> {
        let conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        Ok(Stream::Server(Box::new(StreamOwned::new(conn, tcp))))
    }

    /// The socket underneath (for poll, timeouts, non-blocking mode).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Client(s) => s.get_ref(),
            Stream::Server(s) => s.get_ref(),
        }
    }

    /// Completes the TLS handshake now (blocking sockets), so a certificate
    /// problem is reported as such rather than inside the WebSocket handshake.
    pub fn handshake(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Client(s) => {
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Ok(())
            }
            Stream::Server(s) => {
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Ok(())
            }
        }
    }

    /// Whether TLS holds ciphertext not yet written to the socket.
    pub fn wants_write(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Client(s) => s.conn.wants_write(),
            Stream::Server(s) => s.conn.wants_write(),
        }
    }

    /// Sends TLS close_notify (best effort; the socket closes after).
    pub fn close_notify(&mut self) {
        match self {
            Stream::Plain(_) => {}
            Stream::Client(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
            }
            Stream::Server(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Client(s) => tls_eof(s.read(buf)),
            Stream::Server(s) => tls_eof(s.read(buf)),
        }
    }
}

/// A peer that closes the TCP connection without close_notify: the end of
/// the stream, as for a plain socket (the WebSocket layer then reports it).
fn tls_eof(r: io::Result<usize>) -> io::Result<usize> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        r => r,
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self {
            Stream::Plain(s) => return s.write(buf),
            Stream::Client(s) => s.write(buf)?,
            Stream::Server(s) => s.write(buf)?,
        };
        // TLS's own send buffer is full (a non-blocking socket that takes
        // nothing): that is "would block", not the end of the connection
        // that a 0 means to the WebSocket layer.
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Client(s) => s.flush(),
            Stream::Server(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cacert_errors_name_the_flag() {
        let t = ClientTrust { cacert: Some("/nonexistent/ca.pem".into()), insecure: false };
        let e = t.config().unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("invalid value '/nonexistent/ca.pem' for --cacert: "), "{e}");
        let dir = std::env::temp_dir().join(format!("ecap-cacert-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate\n").unwrap();
        let t = ClientTrust { cacert: Some(dir.clone()), insecure: false };
        let e = t.config().unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn server_config_errors_name_the_flag() {
        let e = server_config(Path::new("/nonexistent/c.pem"), Path::new("/nonexistent/k.pem")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--ecaptureq-cert"), "{e}");
    }
}
