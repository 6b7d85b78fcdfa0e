//! rwscat: a resilient websocat. Stdin lines go out as text messages (queued while
//! disconnected), received text messages come out as stdout lines, and everything else
//! (state changes, errors) goes to stderr in plain words.
#![forbid(unsafe_code)]

mod args;

use std::process::ExitCode;
use std::time::Duration;

use args::{Args, Parsed};
use resilient_ws::{Client, ClientBuilder, Event, Failure, Payload, State, Unsent};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Exit codes: documented in the usage text.
const EXIT_DONE: u8 = 0;
const EXIT_GAVE_UP: u8 = 1;
const EXIT_REJECTED: u8 = 2;
const EXIT_USAGE: u8 = 64;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(reason) => {
            eprintln!("rwscat: {reason}\n\n{}", args::USAGE);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let quiet = args.quiet;
    let count = args.count;
    let exit_on_eof = args.exit_on_eof;
    let (client, events) = match builder(&args).connect() {
        Ok(started) => started,
        Err(error) => {
            eprintln!("rwscat: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let stdin = tokio::spawn(forward_stdin(client.clone(), exit_on_eof));
    let code = print_events(&client, events, quiet, count).await;
    stdin.abort();
    // Exit now: tokio's stdin read sits on a blocking thread that would hold the runtime's
    // shutdown until the next line arrives. Everything is flushed and closed by here.
    std::process::exit(i32::from(code));
}

fn builder(args: &Args) -> ClientBuilder {
    let mut builder = Client::builder(args.url.clone());
    if let Some(field) = &args.cursor_field {
        builder = builder.cursor_field(field);
    }
    if let Some(param) = &args.resume_param {
        builder = builder.resume_query(param.clone());
    }
    if let Some(max) = args.max_failures {
        builder = builder.max_failures((max > 0).then_some(max));
    }
    if let Some(timeout) = args.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    let heartbeat = builder.config_mut().heartbeat.clone().unwrap_or_default();
    match args.ping_interval {
        Some(Duration::ZERO) => builder = builder.no_heartbeat(),
        interval => {
            let interval = interval.unwrap_or(heartbeat.interval);
            builder = builder.heartbeat(interval, args.pong_timeout.unwrap_or(heartbeat.timeout));
        }
    }
    let backoff = builder.config_mut().backoff.clone();
    builder = builder.backoff(
        args.backoff_initial.unwrap_or(backoff.initial),
        args.backoff_max.unwrap_or(backoff.max),
    );
    for (name, value) in &args.headers {
        builder = builder.header(name.clone(), value.clone());
    }
    builder
}

/// Sends each stdin line; waits while the queue is full so no line is dropped.
async fn forward_stdin(client: Client, exit_on_eof: bool) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Err(error) = client.send_wait(Payload::from(line)).await {
            eprintln!("rwscat: line not sent: {error}");
            return;
        }
    }
    if exit_on_eof {
        let _ = client.close(1000, "end of input").await;
    }
}

/// Prints messages to stdout and state changes to stderr until the session ends or
/// `count` messages were printed; returns the exit code.
async fn print_events(
    client: &Client,
    mut events: resilient_ws::Events,
    quiet: bool,
    count: Option<u64>,
) -> u8 {
    let mut stdout = tokio::io::stdout();
    let mut printed = 0u64;
    while let Some(event) = events.recv().await {
        match event {
            Event::Message { payload, .. } => {
                let Payload::Text(text) = payload else {
                    if !quiet {
                        eprintln!(
                            "rwscat: skipped a binary message of {} bytes",
                            payload.len()
                        );
                    }
                    continue;
                };
                let line = format!("{text}\n");
                if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err()
                {
                    return EXIT_DONE; // stdout closed: nobody is listening any more
                }
                printed += 1;
                if count.is_some_and(|count| printed >= count) {
                    let _ = client.close(1000, "done").await;
                    return EXIT_DONE;
                }
            }
            Event::StateChanged { state, reason } => match state {
                State::Failed(failure) => {
                    eprintln!("rwscat: {}", describe_failure(&failure));
                    return match failure {
                        Failure::Fatal(_) => EXIT_REJECTED,
                        _ => EXIT_GAVE_UP,
                    };
                }
                State::Closed => return EXIT_DONE,
                State::Open if !quiet => eprintln!("rwscat: connected"),
                State::Connecting { attempt } if !quiet => {
                    eprintln!("rwscat: connecting (attempt {attempt})");
                }
                State::Reconnecting { .. } if !quiet => eprintln!("rwscat: {state}: {reason}"),
                _ => {}
            },
            Event::CursorGap { last, received } => {
                eprintln!("rwscat: the server skipped from cursor {last} to {received}");
            }
            Event::Discontinuity {
                epoch,
                reason,
                last_cursor,
                ..
            } => {
                let after =
                    last_cursor.map_or_else(|| "the start".into(), |c| format!("cursor {c}"));
                eprintln!(
                    "rwscat: the stream does not continue after {after} ({reason}); epoch {epoch}"
                );
            }
            Event::Unsent(unsent) => report_unsent(&unsent),
        }
    }
    EXIT_DONE
}

fn describe_failure(failure: &Failure) -> String {
    match failure {
        Failure::Fatal(error) => format!("rejected by the server: {error}"),
        other => other.to_string(),
    }
}

fn report_unsent(unsent: &[Unsent]) {
    eprintln!("rwscat: {} queued line(s) were not sent:", unsent.len());
    for message in unsent {
        if let Some(text) = message.payload.as_text() {
            eprintln!("  {text}");
        }
    }
}
