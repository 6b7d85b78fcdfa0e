//! Command-line flags of rwscat, parsed by hand to keep the example's dependencies small.

use std::time::Duration;

pub(crate) const USAGE: &str = "\
usage: rwscat URL [flags]

A resilient websocat: each stdin line is sent as a text message (queued while
disconnected); each received text message is printed as one stdout line. State
changes and errors go to stderr.

flags:
  --cursor-field NAME|/json/pointer  take each message's cursor from this JSON field
  --resume-param NAME                reconnect with ?NAME=<last cursor>
  --count N                          exit 0 after N messages (flushing queued lines first)
  --exit-on-eof                      at end of stdin, flush, close and exit 0
  --max-failures N                   give up after N failed attempts in a row (default 10; 0 = never)
  --connect-timeout MS               handshake deadline (default 10000)
  --ping-interval MS                 ping after this much silence (default 15000; 0 = no heartbeat)
  --pong-timeout MS                  dead if nothing arrives this long after a ping (default 10000)
  --backoff-initial MS               first backoff window (default 250)
  --backoff-max MS                   largest backoff window (default 30000)
  -H, --header 'Name: value'         add a request header (repeatable)
  --quiet                            print errors only on stderr
  -h, --help                         print this help

exit codes: 0 done, 1 gave up after the failure cap, 2 rejected by the server, 64 usage error";

/// What the command line asked for.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub(crate) url: String,
    pub(crate) cursor_field: Option<String>,
    pub(crate) resume_param: Option<String>,
    pub(crate) count: Option<u64>,
    pub(crate) exit_on_eof: bool,
    pub(crate) max_failures: Option<u32>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Option<Duration>,
    pub(crate) backoff_initial: Option<Duration>,
    pub(crate) backoff_max: Option<Duration>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) quiet: bool,
}

/// What parsing decided.
#[derive(Debug)]
pub(crate) enum Parsed {
    Run(Box<Args>),
    Help,
}

/// Parses the arguments after the program name; the error is a one-line reason.
pub(crate) fn parse(mut argv: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut args = Args::default();
    let mut url = None;
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--cursor-field" => args.cursor_field = Some(value(&arg)?),
            "--resume-param" => args.resume_param = Some(value(&arg)?),
            "--count" => args.count = Some(number(&arg, &value(&arg)?)?),
            "--exit-on-eof" => args.exit_on_eof = true,
            "--max-failures" => {
                let n = number(&arg, &value(&arg)?)?;
                args.max_failures =
                    Some(u32::try_from(n).map_err(|_| format!("{arg} is too large"))?);
            }
            "--connect-timeout" => args.connect_timeout = Some(millis(&arg, &value(&arg)?)?),
            "--ping-interval" => args.ping_interval = Some(millis(&arg, &value(&arg)?)?),
            "--pong-timeout" => args.pong_timeout = Some(millis(&arg, &value(&arg)?)?),
            "--backoff-initial" => args.backoff_initial = Some(millis(&arg, &value(&arg)?)?),
            "--backoff-max" => args.backoff_max = Some(millis(&arg, &value(&arg)?)?),
            "-H" | "--header" => args.headers.push(header(&value(&arg)?)?),
            "--quiet" => args.quiet = true,
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            positional => {
                if url.replace(positional.to_owned()).is_some() {
                    return Err(format!("unexpected argument {positional:?}"));
                }
            }
        }
    }
    args.url = url.ok_or("missing URL")?;
    Ok(Parsed::Run(Box::new(args)))
}

fn number(flag: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} takes a whole number, not {value:?}"))
}

fn millis(flag: &str, value: &str) -> Result<Duration, String> {
    number(flag, value).map(Duration::from_millis)
}

fn header(value: &str) -> Result<(String, String), String> {
    let (name, content) = value
        .split_once(':')
        .ok_or_else(|| "a header looks like 'Name: value'".to_owned())?;
    let name = name.trim();
    if name.is_empty() {
        return Err("a header needs a name".into());
    }
    Ok((name.to_owned(), content.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn every_flag() {
        let Ok(Parsed::Run(args)) = parse_all(&[
            "ws://h/feed",
            "--cursor-field",
            "/a/seq",
            "--resume-param",
            "cursor",
            "--count",
            "5",
            "--max-failures",
            "3",
            "--connect-timeout",
            "100",
            "--ping-interval",
            "200",
            "--pong-timeout",
            "300",
            "--backoff-initial",
            "10",
            "--backoff-max",
            "20",
            "-H",
            "Authorization: Bearer x",
            "--quiet",
            "--exit-on-eof",
        ]) else {
            panic!("valid arguments");
        };
        assert_eq!(args.url, "ws://h/feed");
        assert_eq!(args.cursor_field.as_deref(), Some("/a/seq"));
        assert_eq!(args.count, Some(5));
        assert_eq!(args.max_failures, Some(3));
        assert_eq!(args.pong_timeout, Some(Duration::from_millis(300)));
        assert_eq!(
            args.headers,
            [("Authorization".to_owned(), "Bearer x".to_owned())]
        );
        assert!(args.quiet && args.exit_on_eof);
    }

    #[test]
    fn usage_errors_name_the_problem() {
        assert_eq!(parse_all(&[]).unwrap_err(), "missing URL");
        assert_eq!(
            parse_all(&["ws://h", "--count"]).unwrap_err(),
            "--count needs a value"
        );
        assert!(
            parse_all(&["ws://h", "--count", "x"])
                .unwrap_err()
                .contains("whole number")
        );
        assert_eq!(
            parse_all(&["ws://h", "--bogus"]).unwrap_err(),
            "unknown flag --bogus"
        );
        assert!(parse_all(&["ws://h", "-H", "novalue"]).is_err());
        assert!(matches!(parse_all(&["--help"]), Ok(Parsed::Help)));
    }
}
