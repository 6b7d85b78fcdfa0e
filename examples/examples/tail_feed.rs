//! Tails a feed with resume: prints every message, every state change and every
//! discontinuity, and resumes from the last cursor after any break.
//!
//! ```text
//! cargo run -p resilient-ws-examples --example tail_feed -- ws://127.0.0.1:9001/feed
//! ```
//!
//! Try it against `feed-server`, then break things: `curl 127.0.0.1:9001/control/drop`,
//! `curl '127.0.0.1:9001/control/restart?down_ms=2000'` (resumes exactly once) or
//! `curl '127.0.0.1:9001/control/restart?down_ms=2000&forget=1'` (a new epoch: a discontinuity).
#![forbid(unsafe_code)]

use resilient_ws::{Client, Event, Payload};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/feed".to_owned());
    // Each message carries its cursor in "seq"; after a break the client reconnects with
    // ?cursor=<last seq> and the server sends what followed, nothing twice.
    let (client, mut events) = Client::builder(url)
        .cursor_field("seq")
        .resume_query("cursor")
        .connect()?;

    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Message { payload: Payload::Text(text), cursor }) => {
                    let cursor = cursor.map_or("-".to_owned(), |cursor| cursor.to_string());
                    println!("#{cursor} {text}");
                }
                Some(Event::Message { payload: Payload::Binary(bytes), .. }) => {
                    println!("({} binary bytes)", bytes.len());
                }
                Some(Event::StateChanged { state, reason }) => eprintln!("[{state}] {reason}"),
                Some(Event::CursorGap { last, received }) => {
                    eprintln!("[gap] nothing between #{last} and #{received}");
                }
                // The server lost its history, or no longer reaches back to our cursor:
                // what follows does not continue what came before.
                Some(Event::Discontinuity { epoch, reason, last_cursor, .. }) => {
                    eprintln!("[discontinuity] {reason} after {last_cursor:?}; epoch {epoch}");
                }
                Some(other) => eprintln!("[event] {other:?}"),
                None => break, // the session ended (failure cap reached, or closed)
            },
            _ = tokio::signal::ctrl_c() => {
                client.close(1000, "bye").await?;
                break;
            }
        }
    }
    eprintln!("last cursor: {:?}", client.last_cursor());
    Ok(())
}
