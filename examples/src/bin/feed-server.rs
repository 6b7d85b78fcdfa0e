//! `feed-server`: runs the reference feed server until Ctrl-C (or SIGTERM).
//!
//! The first line on stdout is `listening on ws://ADDR/feed`. Usage errors exit with 64 (EX_USAGE).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use resilient_ws_examples::feed_server::{CliCommand, FeedServer, USAGE, parse_args};

/// sysexits.h EX_USAGE.
const EXIT_USAGE: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(CliCommand::Run(config)) => *config,
        Ok(CliCommand::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("feed-server: {error}\n\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let server = match FeedServer::start(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("feed-server: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", server.url());
    if let Err(error) = stop_requested().await {
        eprintln!("feed-server: cannot wait for a stop signal: {error}");
    }
    match server.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("feed-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn stop_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
