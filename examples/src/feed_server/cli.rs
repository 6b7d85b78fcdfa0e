//! Command-line arguments of the `feed-server` binary, parsed by hand to keep dependencies lean.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use super::config::FeedConfig;
use super::feed::{CloseAfter, Refusal};

/// Usage text printed by `feed-server --help` and after a usage error.
pub const USAGE: &str = "\
Usage: feed-server [OPTIONS]

Publishes a numbered feed into a resilient-ws-server hub and serves it at ws://ADDR/feed
(resume with ?cursor=N&epoch=E; the first frame is the hub's welcome), control endpoints at
http://ADDR/control/... (stats, faults, clear, drop, silence, close, refuse, restart), and,
with --static, files (e.g. the dashboard page) at every other path.

Options:
  --listen ADDR            address to listen on [default: 127.0.0.1:9001]
  --rate MSGS_PER_SEC      messages published per second; 0 = all of --total at once
                           (needs --total) [default: 10]
  --total N                end the feed after message N [default: never]
  --payload-bytes N        padding bytes in each message [default: 32]
  --start-live             a client without a cursor starts after the current head, not at
                           the oldest message kept
  --no-welcome             no welcome frame (a cursor that cannot be resumed gets close 4001)
  --history N              messages kept for replay [default: 1000000]
  --history-file PATH      keep the history in PATH, so a restarted process keeps its epoch
                           and clients resume exactly once [default: memory only]
  --static [PREFIX=]DIR    serve the files in DIR at URL PREFIX (default /); repeatable, e.g.
                           --static /=examples/dashboard --static /pkg=client-wasm/pkg

Faults:
  --drop-every N           drop a connection abruptly (no close frame) after N messages on it
  --silent-after N         after N messages stop sending and answering, keep the socket open
  --refuse STATUS[:K]      refuse the next K handshakes (all without K) with HTTP STATUS
  --retry-after SECS       add Retry-After: SECS to refusals (needs --refuse)
  --close-code C           close with code C after --close-after N messages (give both)
  --close-after N
  --replay-overlap K       resume with ?cursor=N starts at N+1-K
  -h, --help               print this help
";

const DEFAULT_PORT: u16 = 9001;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliCommand {
    /// Run a server with this configuration.
    Run(Box<FeedConfig>),
    /// Print [`USAGE`] and exit successfully.
    Help,
}

/// A command line that cannot be understood; the binary prints it with [`USAGE`] and exits 64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Parses the arguments after the program name. Values go after a space or an `=`.
pub fn parse_args<I>(args: I) -> Result<CliCommand, UsageError>
where
    I: IntoIterator<Item = String>,
{
    let mut config = FeedConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
        ..FeedConfig::default()
    };
    let mut retry_after = None;
    let mut close_code = None;
    let mut close_after = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| UsageError(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(CliCommand::Help),
            "--start-live" => config.start_live = true,
            "--no-welcome" => config.welcome = false,
            "--history" => config.history = parse(&flag, &value()?)?,
            "--history-file" => config.history_file = Some(PathBuf::from(value()?)),
            "--listen" => config.listen = parse(&flag, &value()?)?,
            "--rate" => config.rate = parse(&flag, &value()?)?,
            "--total" => config.total = Some(parse(&flag, &value()?)?),
            "--payload-bytes" => config.payload_bytes = parse(&flag, &value()?)?,
            "--static" => config.static_dirs.push(parse_static(&value()?)?),
            "--drop-every" => config.faults.drop_every = Some(parse(&flag, &value()?)?),
            "--silent-after" => config.faults.silent_after = Some(parse(&flag, &value()?)?),
            "--refuse" => config.faults.refuse = Some(parse_refusal(&value()?)?),
            "--retry-after" => retry_after = Some(parse(&flag, &value()?)?),
            "--close-code" => close_code = Some(parse(&flag, &value()?)?),
            "--close-after" => close_after = Some(parse(&flag, &value()?)?),
            "--replay-overlap" => config.faults.replay_overlap = parse(&flag, &value()?)?,
            _ => return Err(UsageError(format!("unknown argument '{flag}'"))),
        }
    }
    if let Some(seconds) = retry_after {
        let refusal = config
            .faults
            .refuse
            .as_mut()
            .ok_or_else(|| UsageError("--retry-after needs --refuse".into()))?;
        refusal.retry_after_secs = Some(seconds);
    }
    config.faults.close_after = match (close_code, close_after) {
        (Some(code), Some(after)) => Some(CloseAfter { code, after }),
        (None, None) => None,
        _ => {
            return Err(UsageError(
                "--close-code and --close-after go together".into(),
            ));
        }
    };
    config
        .validate()
        .map_err(|error| UsageError(error.to_string()))?;
    Ok(CliCommand::Run(Box::new(config)))
}

fn parse<T: FromStr>(flag: &str, value: &str) -> Result<T, UsageError> {
    value
        .parse()
        .map_err(|_| UsageError(format!("invalid value '{value}' for {flag}")))
}

/// `DIR` mounts DIR at `/`; `PREFIX=DIR` (PREFIX starting with `/`) mounts it at PREFIX.
fn parse_static(value: &str) -> Result<(String, PathBuf), UsageError> {
    let (prefix, dir) = match value.split_once('=') {
        Some((prefix, dir)) if prefix.starts_with('/') => (prefix, dir),
        _ => ("/", value),
    };
    if dir.is_empty() {
        return Err(UsageError(format!("--static '{value}' names no directory")));
    }
    Ok((prefix.to_owned(), PathBuf::from(dir)))
}

/// `STATUS` refuses every handshake, `STATUS:K` the next K.
fn parse_refusal(value: &str) -> Result<Refusal, UsageError> {
    let (status, count) = match value.split_once(':') {
        Some((status, count)) => (status, Some(parse("--refuse", count)?)),
        None => (value, None),
    };
    Ok(Refusal {
        status: parse("--refuse", status)?,
        remaining: count,
        retry_after_secs: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<FeedConfig, UsageError> {
        match parse_args(args.iter().map(|arg| (*arg).to_owned()))? {
            CliCommand::Run(config) => Ok(*config),
            CliCommand::Help => Err(UsageError("help".into())),
        }
    }

    #[test]
    fn defaults_listen_on_9001() {
        let config = run(&[]).expect("no arguments is fine");
        assert_eq!(config.listen.port(), 9001);
        assert_eq!(config.faults, Default::default());
        assert!(config.welcome);
        assert_eq!(config.history, FeedConfig::DEFAULT_HISTORY);
        assert_eq!(config.history_file, None);
    }

    #[test]
    fn parses_every_flag() {
        let config = run(&[
            "--listen=127.0.0.1:0",
            "--rate",
            "0",
            "--total",
            "100",
            "--payload-bytes",
            "8",
            "--start-live",
            "--drop-every",
            "5",
            "--silent-after",
            "7",
            "--refuse",
            "503:3",
            "--retry-after",
            "2",
            "--close-code",
            "4000",
            "--close-after",
            "9",
            "--replay-overlap",
            "4",
            "--no-welcome",
            "--history",
            "500",
            "--history-file=/tmp/feed.history",
        ])
        .expect("valid arguments");
        assert_eq!(config.listen.port(), 0);
        assert_eq!(
            (config.rate, config.total, config.payload_bytes),
            (0, Some(100), 8)
        );
        assert!(config.start_live);
        assert!(!config.welcome);
        assert_eq!(config.history, 500);
        assert_eq!(
            config.history_file,
            Some(PathBuf::from("/tmp/feed.history"))
        );
        assert_eq!(config.faults.drop_every, Some(5));
        assert_eq!(config.faults.silent_after, Some(7));
        assert_eq!(
            config.faults.refuse,
            Some(Refusal {
                status: 503,
                remaining: Some(3),
                retry_after_secs: Some(2)
            })
        );
        assert_eq!(
            config.faults.close_after,
            Some(CloseAfter {
                code: 4000,
                after: 9
            })
        );
        assert_eq!(config.faults.replay_overlap, 4);
        assert!(config.static_dirs.is_empty());
    }

    #[test]
    fn static_dirs_take_an_optional_prefix_and_repeat() {
        let config = run(&[
            "--static",
            "/=examples/dashboard",
            "--static=/pkg=client-wasm/pkg",
            "--static",
            "site",
        ])
        .expect("valid arguments");
        assert_eq!(
            config.static_dirs,
            vec![
                ("/".to_owned(), PathBuf::from("examples/dashboard")),
                ("/pkg".to_owned(), PathBuf::from("client-wasm/pkg")),
                ("/".to_owned(), PathBuf::from("site")),
            ]
        );
        assert!(run(&["--static", "/pkg="]).is_err());
        assert!(run(&["--static"]).is_err());
    }

    #[test]
    fn help_and_usage_errors() {
        let help = parse_args(["--help".to_owned()]);
        assert_eq!(help, Ok(CliCommand::Help));
        for bad in [
            &["--rate"][..],
            &["--rate", "fast"],
            &["--bogus"],
            &["--retry-after", "3"],
            &["--close-code", "4000"],
            &["--close-code", "1006", "--close-after", "1"],
            &["--refuse", "200"],
            &["--rate", "0"],
            &["--history", "-1"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }
}
