//! The native client against a TLS WebSocket server made here: certificate verification is
//! on, the default (webpki) roots refuse a self-signed certificate without retrying, and
//! custom roots trust exactly the authorities they name.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use resilient_ws::{Client, Disconnect, Failure, State, TlsRoots};
use resilient_ws_tests::Recorder;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

/// Bound of every wait on the client or the server.
const LIMIT: Duration = Duration::from_secs(10);
/// Bound of the server's TLS handshake and WebSocket upgrade.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);
/// Feed messages the server sends before echoing.
const FEED: u64 = 3;

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// A certificate chain and its key, as the server presents them.
struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

/// A self-signed certificate for `names` (DNS names or IP addresses).
fn self_signed(names: &[&str]) -> (ServerIdentity, Vec<u8>) {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("self-signed certificate");
    let der = certified.cert.der().clone();
    let root = der.to_vec();
    let identity = ServerIdentity {
        chain: vec![der],
        key: certified.key_pair.serialize_der(),
    };
    (identity, root)
}

/// A certificate authority: its certificate and key, for signing leaves.
struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).expect("CA certificate");
        Self { cert, key }
    }

    /// The CA certificate (DER), to trust it.
    fn root(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A leaf for `names` signed by this authority, presented with the CA certificate.
    fn issue(&self, names: &[&str]) -> ServerIdentity {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate");
        ServerIdentity {
            chain: vec![leaf.der().clone(), self.cert.der().clone()],
            key: key.serialize_der(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// A TLS WebSocket server on 127.0.0.1
// ---------------------------------------------------------------------------------------

/// What the server tasks share.
#[derive(Default)]
struct Counters {
    tcp: AtomicUsize,
    tls_ok: AtomicUsize,
    tls_failed: AtomicUsize,
    upgraded: AtomicUsize,
    tls_errors: Mutex<Vec<String>>,
    echoed: Mutex<Vec<String>>,
}

/// `wss://` on 127.0.0.1: TLS with the given identity, then a WebSocket upgrade; each
/// connection gets `{"seq":1..=FEED}` and then an echo of what it sends.
struct TlsServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TlsServer {
    async fn start(identity: ServerIdentity) -> Self {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(identity.chain, key)
        .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let counters = Arc::new(Counters::default());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let shared = Arc::clone(&counters);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    accepted = listener.accept() => {
                        let Ok((tcp, _peer)) = accepted else {
                            sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        shared.tcp.fetch_add(1, Ordering::SeqCst);
                        connections.spawn(serve(tcp, acceptor.clone(), Arc::clone(&shared)));
                    }
                }
            }
            connections.shutdown().await;
        });
        Self {
            addr,
            counters,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, host: &str) -> String {
        format!("wss://{host}:{}/", self.addr.port())
    }

    fn tcp(&self) -> usize {
        self.counters.tcp.load(Ordering::SeqCst)
    }

    fn tls_ok(&self) -> usize {
        self.counters.tls_ok.load(Ordering::SeqCst)
    }

    fn tls_failed(&self) -> usize {
        self.counters.tls_failed.load(Ordering::SeqCst)
    }

    fn upgraded(&self) -> usize {
        self.counters.upgraded.load(Ordering::SeqCst)
    }

    fn tls_errors(&self) -> Vec<String> {
        self.counters
            .tls_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn echoed(&self) -> Vec<String> {
        self.counters
            .echoed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (bounded) until the server has seen `n` failed TLS handshakes.
    async fn wait_tls_failed(&self, n: usize) {
        let deadline = Instant::now() + LIMIT;
        while self.tls_failed() < n {
            assert!(
                Instant::now() < deadline,
                "server saw {} failed TLS handshakes, expected {n}",
                self.tls_failed()
            );
            sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops accepting, ends every connection and waits until all server tasks are gone.
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        timeout(LIMIT, &mut self.task)
            .await
            .expect("TLS server shut down in time")
            .expect("TLS server task did not panic");
    }
}

async fn serve(tcp: TcpStream, acceptor: TlsAcceptor, counters: Arc<Counters>) {
    let tls = match timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            counters.tls_failed.fetch_add(1, Ordering::SeqCst);
            counters
                .tls_errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(error.to_string());
            return;
        }
        Err(_) => {
            counters.tls_failed.fetch_add(1, Ordering::SeqCst);
            counters
                .tls_errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push("TLS handshake timed out".into());
            return;
        }
    };
    counters.tls_ok.fetch_add(1, Ordering::SeqCst);
    let Ok(Ok(mut ws)) = timeout(HANDSHAKE_LIMIT, tokio_tungstenite::accept_async(tls)).await
    else {
        return;
    };
    counters.upgraded.fetch_add(1, Ordering::SeqCst);
    for seq in 1..=FEED {
        if ws
            .feed(Message::text(format!(r#"{{"seq":{seq}}}"#)))
            .await
            .is_err()
        {
            return;
        }
    }
    if ws.flush().await.is_err() {
        return;
    }
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            Message::Text(text) => {
                counters
                    .echoed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(text.to_string());
                Message::Text(text)
            }
            Message::Binary(bytes) => Message::Binary(bytes),
            // tungstenite answers pings and close frames itself while reading.
            Message::Close(_) => break,
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
    // Let tungstenite finish the close handshake (bounded).
    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A builder with fast retries, so a retry that should not happen would show at once.
fn builder(url: String) -> resilient_ws::ClientBuilder {
    Client::builder(url)
        .cursor_field("seq")
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(5))
}

/// Runs a client that must be refused at TLS: returns the TLS error detail after checking
/// the session failed fatally on the first attempt, without a retry.
async fn expect_tls_refusal(server: &TlsServer, url: String, roots: TlsRoots) -> String {
    let (client, events) = builder(url).tls_roots(roots).connect().expect("client");
    let recorder = Recorder::spawn(events);
    let state = recorder.wait_terminal(LIMIT).await;
    let detail = match &state {
        State::Failed(Failure::Fatal(Disconnect::Tls { detail })) => detail.clone(),
        other => panic!("expected Failed(Fatal(Tls)), got {other:?}"),
    };
    // The client refused the certificate, the server did not refuse the client.
    server.wait_tls_failed(1).await;
    // Room for a retry that must not come (the backoff is at most 100 ms).
    sleep(Duration::from_millis(400)).await;
    assert_eq!(server.tcp(), 1, "the session retried a fatal TLS failure");
    assert_eq!(server.tls_ok(), 0);
    assert_eq!(server.upgraded(), 0);
    assert_eq!(client.stats().attempts, 1);
    assert_eq!(client.stats().messages_delivered, 0);
    let states = recorder.states();
    assert!(
        !states
            .iter()
            .any(|(_, state, _)| matches!(state, State::Reconnecting { .. } | State::Open)),
        "no reconnect and no open expected: {states:?}"
    );
    assert_eq!(client.state(), state);
    drop(client);
    detail
}

/// Runs a client that must connect: the feed arrives, an echo comes back, close is clean.
async fn expect_session(server: &TlsServer, url: String, roots: TlsRoots) {
    let (client, events) = builder(url).tls_roots(roots).connect().expect("client");
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(FEED as usize, LIMIT).await;
    assert_eq!(
        recorder.texts(),
        (1..=FEED)
            .map(|seq| format!(r#"{{"seq":{seq}}}"#))
            .collect::<Vec<_>>()
    );
    assert_eq!(recorder.delivered(), (1..=FEED).collect::<Vec<_>>());
    client.send_text("echo over tls").expect("send");
    recorder
        .wait_for("the echo", LIMIT, |r| {
            r.texts().iter().any(|text| text == "echo over tls")
        })
        .await;
    assert_eq!(server.echoed(), vec!["echo over tls".to_owned()]);
    timeout(LIMIT, client.close(1000, "done"))
        .await
        .expect("close in time")
        .expect("close accepted");
    assert_eq!(client.state(), State::Closed);
    assert_eq!(server.tcp(), 1);
    assert_eq!(server.tls_ok(), 1);
    assert_eq!(server.tls_failed(), 0, "{:?}", server.tls_errors());
    assert_eq!(server.upgraded(), 1);
    assert_eq!(recorder.opens(), 1);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn default_roots_refuse_a_self_signed_certificate_without_retrying() {
    let (identity, _root) = self_signed(&["localhost", "127.0.0.1"]);
    let server = TlsServer::start(identity).await;
    let detail = expect_tls_refusal(&server, server.url("localhost"), TlsRoots::Default).await;
    let lower = detail.to_lowercase();
    assert!(
        detail.contains("UnknownIssuer") || lower.contains("certificate"),
        "the TLS error should name the certificate problem: {detail}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_custom_root_trusts_the_self_signed_certificate() {
    let (identity, root) = self_signed(&["localhost", "127.0.0.1"]);
    let server = TlsServer::start(identity).await;
    expect_session(
        &server,
        server.url("localhost"),
        TlsRoots::Custom(vec![root]),
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_custom_root_trusts_an_ip_address_certificate() {
    let (identity, root) = self_signed(&["127.0.0.1"]);
    let server = TlsServer::start(identity).await;
    expect_session(
        &server,
        server.url("127.0.0.1"),
        TlsRoots::Custom(vec![root]),
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_private_ca_root_trusts_the_leaves_it_signed() {
    let authority = Authority::new("resilient-ws test CA");
    let server = TlsServer::start(authority.issue(&["localhost"])).await;
    expect_session(
        &server,
        server.url("localhost"),
        TlsRoots::Custom(vec![authority.root()]),
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_root_for_a_different_ca_still_rejects_the_server() {
    let trusted = Authority::new("the CA the client trusts");
    let other = Authority::new("the CA that signed the server");
    let server = TlsServer::start(other.issue(&["localhost"])).await;
    let detail = expect_tls_refusal(
        &server,
        server.url("localhost"),
        TlsRoots::Custom(vec![trusted.root()]),
    )
    .await;
    assert!(
        detail.contains("UnknownIssuer") || detail.to_lowercase().contains("certificate"),
        "the TLS error should name the certificate problem: {detail}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_different_self_signed_root_still_rejects_the_server() {
    let (identity, _root) = self_signed(&["localhost"]);
    let (_unrelated, unrelated_root) = self_signed(&["localhost"]);
    let server = TlsServer::start(identity).await;
    let detail = expect_tls_refusal(
        &server,
        server.url("localhost"),
        TlsRoots::Custom(vec![unrelated_root]),
    )
    .await;
    assert!(
        detail.to_lowercase().contains("certificate"),
        "the TLS error should name the certificate problem: {detail}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_trusted_certificate_for_another_name_is_rejected() {
    let authority = Authority::new("resilient-ws test CA");
    let server = TlsServer::start(authority.issue(&["feed.example"])).await;
    let detail = expect_tls_refusal(
        &server,
        server.url("localhost"),
        TlsRoots::Custom(vec![authority.root()]),
    )
    .await;
    assert!(
        detail.contains("NotValidForName") || detail.to_lowercase().contains("certificate"),
        "the TLS error should name the certificate problem: {detail}"
    );
    server.shutdown().await;
}
