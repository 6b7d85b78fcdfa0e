//! An axum server that publishes a counter with the `resilient-ws-server` hub: clients resume
//! from their cursor across reconnects, and, with `--history-file`, across restarts of this
//! process. Ctrl-C closes every client with 1012 (they resume) before exiting.
//!
//! ```text
//! cargo run -p resilient-ws-examples --example hub_server -- --history-file counter.history
//! cargo run -p resilient-ws-examples --example tail_feed -- ws://127.0.0.1:8080/feed
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use resilient_ws_server::{FileHistory, Hub, HubConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut history_file = None;
    let mut listen = "127.0.0.1:8080".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--history-file" => history_file = args.next(),
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            _ => return Err("usage: hub_server [--listen ADDR] [--history-file PATH]".into()),
        }
    }

    // Without a history file every start is a new epoch: clients are told (the welcome says
    // "epoch_changed") instead of resuming.
    let hub = match history_file {
        Some(path) => Hub::with_history(HubConfig::default(), FileHistory::open(path)?)?,
        None => Hub::new(HubConfig::default()),
    };

    // Publish a counter every 100 ms; the hub assigns the cursor (`seq`).
    let publisher = hub.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let count = publisher.head() + 1;
            // {"seq":N,"data":{"count":N}}; fails only once the hub is shut down.
            if publisher
                .publish(&serde_json::json!({ "count": count }))
                .is_err()
            {
                break;
            }
        }
    });

    let app = Router::new()
        .route("/", get(|| async { "the feed is at /feed" }))
        .merge(hub.router("/feed"));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on ws://{listen}/feed (epoch {})", hub.epoch());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            hub.shutdown().await; // 1012 to every client, resolves once all have closed
        })
        .await?;
    Ok(())
}
