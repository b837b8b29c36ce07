//! HTTPS: the certificate and key, and the accept loop that serves the app over TLS.
//!
//! [`serve_tls`] accepts TCP connections in one loop and hands each to its own task, which does
//! the TLS handshake (bounded by [`HANDSHAKE_TIMEOUT`]) and then serves HTTP/1.1 on it with hyper.
//! A slow or failed handshake therefore never holds up accepting; it is logged at debug level and
//! only costs its own connection. When the shutdown future completes the loop stops accepting,
//! handshakes still under way are dropped (no request has been sent on them yet), every served
//! connection finishes the request in flight and closes, and then [`serve_tls`] returns: the same
//! behaviour as [`crate::serve`] for plain http, which runs the same loop without the handshake.
//!
//! Slow clients are bounded ([`ConnectionLimits`]): a request's headers must arrive within
//! `--request-timeout` (hyper's header read timeout; the time limit of `observe::track` covers
//! the body and the handler), and the stop waits at most `--drain-timeout` for connections
//! still busy (a half-sent request included) before closing them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt;

use crate::AppState;

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or the key cannot be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the TLS certificate file {}", path.display())]
    ReadCertificate { path: PathBuf, source: io::Error },
    #[error("no certificate in {} (expected PEM \"BEGIN CERTIFICATE\" sections)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("the TLS certificate file {} is not valid PEM: {detail}", path.display())]
    BadCertificate { path: PathBuf, detail: String },
    #[error("cannot read the TLS private key file {}", path.display())]
    ReadKey { path: PathBuf, source: io::Error },
    #[error("no private key in {} (expected PEM PKCS#8, RSA or EC private key)", path.display())]
    NoKey { path: PathBuf },
    #[error("the TLS private key file {} is not valid PEM: {detail}", path.display())]
    BadKey { path: PathBuf, detail: String },
    #[error("the TLS certificate {} and private key {} cannot be used together", cert.display(), key.display())]
    Unusable { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 RSA or SEC1
/// EC) and builds the server configuration: TLS 1.2 and 1.3 with the ring provider, HTTP/1.1.
pub fn load_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let chain = read_chain(cert)?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        pem::Error::Io(source) => TlsSetupError::ReadKey { path: key.to_owned(), source },
        pem::Error::NoItemsFound => TlsSetupError::NoKey { path: key.to_owned() },
        other => TlsSetupError::BadKey { path: key.to_owned(), detail: other.to_string() },
    })?;
    let unusable = |source| TlsSetupError::Unusable { cert: cert.to_owned(), key: key.to_owned(), source };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(unusable)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bad = |e: pem::Error| match e {
        pem::Error::Io(source) => TlsSetupError::ReadCertificate { path: path.to_owned(), source },
        other => TlsSetupError::BadCertificate { path: path.to_owned(), detail: other.to_string() },
    };
    let chain = CertificateDer::pem_file_iter(path).map_err(bad)?.collect::<Result<Vec<_>, _>>().map_err(bad)?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate { path: path.to_owned() });
    }
    Ok(chain)
}

/// What one connection may hold, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// hyper's read buffer and header count ([`crate::hyper_limits`]).
    pub max_buf_size: usize,
    pub max_headers: usize,
    /// Longest a client may take to send a request's line and headers; then the connection
    /// is closed.
    pub header_read_timeout: Duration,
    /// Longest the stop waits for busy connections before closing them.
    pub drain: Duration,
}

impl ConnectionLimits {
    pub fn of(config: &crate::ServerConfig) -> Self {
        let (max_buf_size, max_headers) = crate::hyper_limits(config.max_header_bytes);
        Self { max_buf_size, max_headers, header_read_timeout: config.request_timeout, drain: config.drain_timeout }
    }
}

/// Serves HTTPS only, until `shutdown` completes; then stops accepting, lets in-flight requests
/// finish (for at most the drain time) and returns.
pub async fn serve_tls(
    listener: TcpListener,
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = ConnectionLimits::of(&state.config);
    serve_router(listener, crate::app(state), Some(tls), limits, shutdown).await
}

/// Serves plain http (`tls: None`) or HTTPS on `listener` until `shutdown` completes.
pub(crate) async fn serve_router(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    // Connections being served: signalled, then awaited, at shutdown.
    let graceful = GracefulShutdown::new();
    // Handshakes under way: dropped at shutdown.
    let (stop_handshakes, handshakes_stopped) = watch::channel(());
    // Every connection's task, to end those still running after the drain.
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            // Finished connections leave the set as they end (it holds only live ones).
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        connections.spawn(serve_connection(
            tcp,
            remote,
            acceptor.clone(),
            router.clone(),
            graceful.watcher(),
            handshakes_stopped.clone(),
            limits,
        ));
    }
    drop(listener);
    drop(stop_handshakes);
    tracing::debug!(connections = graceful.count(), "stopped accepting; waiting for connections to finish");
    if tokio::time::timeout(limits.drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            drain_seconds = limits.drain.as_secs_f64(),
            "connections still busy after the drain time are closed"
        );
    }
    // Ends what the drain left (nothing when every connection finished) and waits for it.
    connections.shutdown().await;
    Ok(())
}

async fn serve_connection(
    tcp: TcpStream,
    remote: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    watcher: hyper_util::server::graceful::Watcher,
    mut handshakes_stopped: watch::Receiver<()>,
    limits: ConnectionLimits,
) {
    let Some(acceptor) = acceptor else {
        return serve_http(tcp, remote, router, watcher, limits).await;
    };
    let stream = tokio::select! {
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        },
        // Resolves (with an error) when the accept loop drops the sender at shutdown.
        _ = handshakes_stopped.changed() => return,
    };
    serve_http(stream, remote, router, watcher, limits).await;
}

/// HTTP/1.1 on one connection, with the client's socket address as `ConnectInfo`.
async fn serve_http<S>(
    stream: S,
    remote: SocketAddr,
    router: Router,
    watcher: hyper_util::server::graceful::Watcher,
    limits: ConnectionLimits,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // As `into_make_service_with_connect_info::<SocketAddr>()` does for plain http.
    let service = router.map_request(move |mut request: axum::extract::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        request
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_buf_size)
        .max_headers(limits.max_headers)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

/// As axum's own accept loop: errors about one connection are skipped; others (such as running
/// out of file descriptors) are logged and retried after a pause.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Instant;

    use axum::routing::get;
    use tokio::sync::oneshot;

    use super::*;

    fn test_limits() -> ConnectionLimits {
        ConnectionLimits::of(&crate::ServerConfig::default())
    }

    /// A self-signed certificate for 127.0.0.1 made with the `openssl` command line.
    fn self_signed(dir: &Path, key_type: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", key_type, "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("the openssl command line is needed by these tests");
        assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
        (cert, key)
    }

    /// `curl -k` over HTTPS; returns the body, or the failure.
    fn curl(url: &str) -> Result<String, String> {
        let out = Command::new("curl")
            .args(["-sS", "-k", "--max-time", "20", url])
            .output()
            .expect("the curl command line is needed by these tests");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    #[test]
    fn loads_rsa_and_ec_keys_and_names_the_file_that_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        for key_type in ["rsa:2048", "ec", "ed25519"] {
            let sub = dir.path().join(key_type.replace(':', "-"));
            std::fs::create_dir(&sub).unwrap();
            let (cert, key) = if key_type == "ec" {
                // SEC1 ("BEGIN EC PRIVATE KEY") rather than openssl's default PKCS#8.
                let (cert, key) = (sub.join("cert.pem"), sub.join("key.pem"));
                let ok = |c: &mut Command| assert!(c.status().unwrap().success());
                ok(Command::new("openssl")
                    .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out"])
                    .arg(&key));
                ok(Command::new("openssl")
                    .args(["req", "-x509", "-key"])
                    .arg(&key)
                    .args(["-days", "2", "-subj", "/CN=127.0.0.1", "-out"])
                    .arg(&cert));
                assert!(std::fs::read_to_string(&key).unwrap().contains("BEGIN EC PRIVATE KEY"));
                (cert, key)
            } else {
                self_signed(&sub, key_type)
            };
            load_config(&cert, &key).unwrap_or_else(|e| panic!("{key_type}: {e}"));
        }
        let (cert, key) = self_signed(dir.path(), "rsa:2048");

        let missing = dir.path().join("missing-key.pem");
        let e = load_config(&cert, &missing).unwrap_err().to_string();
        assert!(e.contains("missing-key.pem") && e.contains("private key"), "{e}");

        let e = load_config(&key, &key).unwrap_err().to_string();
        assert!(e.starts_with("no certificate in") && e.contains("key.pem"), "{e}");

        let e = load_config(&cert, &cert).unwrap_err().to_string();
        assert!(e.starts_with("no private key in") && e.contains("cert.pem"), "{e}");

        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let (_, other_key) = self_signed(&other, "rsa:2048");
        let e = load_config(&cert, &other_key).unwrap_err().to_string();
        assert!(e.contains("cannot be used together"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_connect_info_finishes_in_flight_requests_and_drops_pending_handshakes() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "rsa:2048");
        let tls = load_config(&cert, &key).unwrap();
        // The slow handler says when it has started, so the stop comes mid-request.
        let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
        let router = Router::new()
            .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }))
            .route(
                "/slow",
                get(move || {
                    let entered_tx = entered_tx.clone();
                    async move {
                        let _ = entered_tx.send(());
                        tokio::time::sleep(Duration::from_millis(700)).await;
                        "finished"
                    }
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_router(listener, router, Some(tls), test_limits(), async move {
            let _ = stop_rx.await;
        }));

        // A client that connects and never starts the handshake holds up neither accepting nor
        // shutting down.
        let _stalled = TcpStream::connect(address).await.unwrap();

        let peer = tokio::task::spawn_blocking(move || curl(&format!("https://{address}/peer"))).await.unwrap();
        let peer = peer.unwrap();
        assert!(peer.starts_with("127.0.0.1:") && peer != address.to_string(), "{peer}");

        let slow = tokio::task::spawn_blocking(move || curl(&format!("https://{address}/slow")));
        tokio::task::spawn_blocking(move || entered_rx.recv_timeout(Duration::from_secs(20)).unwrap()).await.unwrap();
        let stopping = Instant::now();
        stop_tx.send(()).unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), "finished", "the request in flight completes");
        tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns").unwrap().unwrap();
        assert!(stopping.elapsed() < HANDSHAKE_TIMEOUT, "the stalled handshake did not delay the stop");
        assert!(TcpStream::connect(address).await.is_err(), "no longer accepting");
    }
}
