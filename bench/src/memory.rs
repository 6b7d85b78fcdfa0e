//! Idle memory per connection: many idle connections in a child process of their own, its
//! resident set (VmRSS) measured before and after, divided by the connections.
//!
//! Each client kind runs in a fresh process (this binary with `--mem-client`), so memory
//! one kind freed but the allocator kept cannot count against the next, and the server's
//! share is in another process altogether.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use resilient_ws::{Client, Event, State, TlsRoots};
use tokio::sync::{Notify, Semaphore};

use crate::Scale;
use crate::clients::{BenchResult, bare_config_like_resilient, bare_connect, runtime};
use crate::report::{Table, thousands};
use crate::servers::ServerProcess;
use crate::system::{rss_kib, scale_to_fd_limit};

/// resilient-ws's target, per idle connection.
const TARGET_BYTES: f64 = 16_000.0;
/// Connections opened at once while setting up.
const CONNECT_BATCH: usize = 250;
/// Pause after the last connection opened, before measuring.
const SETTLE: Duration = Duration::from_millis(1_500);

#[derive(Clone, Copy)]
struct Kind {
    arg: &'static str,
    label: &'static str,
    target: bool,
}

const KINDS: [Kind; 7] = [
    Kind {
        arg: "bare",
        label: "tokio-tungstenite, default config (baseline)",
        target: false,
    },
    Kind {
        arg: "resilient",
        label: "resilient-ws, default builder",
        target: true,
    },
    Kind {
        arg: "resilient-no-roots",
        label: "resilient-ws, `tls_roots(Custom(vec![]))`",
        target: false,
    },
    Kind {
        arg: "resilient-16k",
        label: "resilient-ws, `io_buffer_size(16 * 1024)` (the former default)",
        target: false,
    },
    Kind {
        arg: "resilient-offline",
        label: "resilient-ws, default builder, `set_online(false)`: no socket",
        target: false,
    },
    Kind {
        arg: "tls-config",
        label: "only a rustls `ClientConfig` per client (resilient-ws shares one per process)",
        target: false,
    },
    Kind {
        arg: "bare-small",
        label: "tokio-tungstenite, 4 KiB buffers (as resilient-ws)",
        target: false,
    },
];

/// Suite 4.
pub(crate) fn memory(scale: &Scale) -> Table {
    let (connections, scaled) = scale_to_fd_limit(scale.memory_connections);
    let mut table = Table::new(
        "4. Idle memory per connection",
        format!(
            "{} idle connections to a local server (another process), each client kind in a \
             fresh process with an application task reading each connection (`ws.next()` / \
             `events.recv()`); (VmRSS after all opened and {} s settled − VmRSS before) ÷ \
             connections. Target for resilient-ws's default builder: ≤ 16 KB.",
            thousands(connections as f64),
            SETTLE.as_secs_f64()
        ),
        &[
            "client",
            "per connection",
            "ratio",
            "RSS before",
            "RSS after",
            "open",
        ],
    );
    table.notes.extend(scaled);
    let server = match ServerProcess::spawn(0, false) {
        Ok(server) => server,
        Err(error) => return Table::failed(&table.title, &format!("server: {error}")),
    };
    let url = server.url("/idle");
    let mut baseline = f64::NAN;
    for kind in KINDS {
        match measure_in_child(kind.arg, connections, &url) {
            Ok((before, after, open)) => {
                let per = (after.saturating_sub(before) * 1024) as f64 / open.max(1) as f64;
                if kind.arg == "bare" {
                    baseline = per;
                }
                let meets = !kind.target || per <= TARGET_BYTES;
                table.row(vec![
                    kind.label.into(),
                    format!(
                        "{} B{}",
                        thousands(per),
                        if meets { "" } else { " (missed)" }
                    ),
                    format!("{:.2}", per / baseline),
                    format!("{:.1} MiB", before as f64 / 1024.0),
                    format!("{:.1} MiB", after as f64 / 1024.0),
                    thousands(open as f64),
                ]);
            }
            Err(error) => table.note(format!("{}: {error}", kind.label)),
        }
    }
    table.note(
        "the extra rows isolate costs: custom TLS roots (one configuration shared by the \
         clients with the same roots), what a rustls configuration per client would cost, the \
         socket buffer size (tungstenite zero-fills its whole \
         read buffer on the first read, so all of it is resident), and everything but the \
         socket (offline: session, driver task, queues, TLS config); `open` counts the \
         offline sessions waiting for the network",
    );
    drop(server);
    table
}

/// Runs `--mem-client KIND N URL` and reads its `RESULT before after open` (KiB, KiB, count).
fn measure_in_child(kind: &str, connections: usize, url: &str) -> BenchResult<(u64, u64, usize)> {
    let output = Command::new(std::env::current_exe()?)
        .args(["--mem-client", kind, &connections.to_string(), url])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .ok_or_else(|| format!("no result from the client process ({})", output.status))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    match fields[..] {
        [before, after, open] => Ok((before, after, usize::try_from(open)?)),
        _ => Err(format!("unreadable result {line:?}").into()),
    }
}

/// The child process's `main`: `--mem-client KIND N URL`.
pub(crate) fn client_main(args: &[String]) -> BenchResult<()> {
    let [kind, count, url] = args else {
        return Err("usage: --mem-client KIND N URL".into());
    };
    let count: usize = count.parse()?;
    runtime()?.block_on(open_idle(kind, count, url))
}

/// Opens the connections, measures, prints `RESULT`, and exits the process.
async fn open_idle(kind: &str, count: usize, url: &str) -> BenchResult<()> {
    let before = rss_kib().ok_or("no /proc/self/status")?;
    let opened = Arc::new(AtomicUsize::new(0));
    let changed = Arc::new(Notify::new());
    let mut handles: Vec<Client> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    match kind {
        "bare" | "bare-small" => {
            let config = (kind == "bare-small").then(bare_config_like_resilient);
            let permits = Arc::new(Semaphore::new(CONNECT_BATCH));
            for _ in 0..count {
                let (opened, changed, permits) = (
                    Arc::clone(&opened),
                    Arc::clone(&changed),
                    Arc::clone(&permits),
                );
                let url = url.to_owned();
                tokio::spawn(async move {
                    let permit = permits.acquire_owned().await;
                    let Ok(mut ws) = bare_connect(&url, config).await else {
                        return;
                    };
                    drop(permit);
                    opened.fetch_add(1, Ordering::AcqRel);
                    changed.notify_one();
                    while let Some(Ok(_)) = ws.next().await {}
                });
            }
            wait_for(&opened, &changed, count, deadline).await;
        }
        "resilient" | "resilient-no-roots" | "resilient-16k" | "resilient-offline" => {
            let offline = kind == "resilient-offline";
            for batch_start in (0..count).step_by(CONNECT_BATCH) {
                let batch_end = (batch_start + CONNECT_BATCH).min(count);
                for _ in batch_start..batch_end {
                    let mut builder = Client::builder(url);
                    if kind == "resilient-no-roots" {
                        builder = builder.tls_roots(TlsRoots::Custom(Vec::new()));
                    }
                    if kind == "resilient-16k" {
                        builder = builder.io_buffer_size(16 * 1024);
                    }
                    let (client, mut events) = builder.connect()?;
                    if offline {
                        client.set_online(false);
                    }
                    handles.push(client);
                    let (opened, changed) = (Arc::clone(&opened), Arc::clone(&changed));
                    tokio::spawn(async move {
                        while let Some(event) = events.recv().await {
                            let ready = match event {
                                Event::StateChanged {
                                    state: State::Open, ..
                                } => !offline,
                                Event::StateChanged {
                                    state: State::Reconnecting { retry_at: None, .. },
                                    ..
                                } => offline,
                                _ => false,
                            };
                            if ready {
                                opened.fetch_add(1, Ordering::AcqRel);
                                changed.notify_one();
                            }
                        }
                    });
                }
                wait_for(&opened, &changed, batch_end, deadline).await;
            }
        }
        "tls-config" => {
            let mut configs = Vec::with_capacity(count);
            for _ in 0..count {
                configs.push(tls_config_like_resilient()?);
            }
            opened.store(configs.len(), Ordering::Release);
            tokio::time::sleep(SETTLE).await;
            let after = rss_kib().ok_or("no /proc/self/status")?;
            println!("RESULT {before} {after} {}", configs.len());
            std::process::exit(0);
        }
        other => return Err(format!("unknown client kind {other}").into()),
    }
    tokio::time::sleep(SETTLE).await;
    let after = rss_kib().ok_or("no /proc/self/status")?;
    let open = opened.load(Ordering::Acquire);
    println!("RESULT {before} {after} {open}");
    // Exit with every handle still alive, without tearing the connections down one by one.
    std::process::exit(0);
}

async fn wait_for(opened: &AtomicUsize, changed: &Notify, target: usize, deadline: Instant) {
    while opened.load(Ordering::Acquire) < target && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(50), changed.notified()).await;
    }
}

/// What client-native's `TlsRoots::Default.client_config()` builds for every client: the
/// webpki roots, the ring provider, rustls's default in-memory session cache.
fn tls_config_like_resilient() -> BenchResult<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
