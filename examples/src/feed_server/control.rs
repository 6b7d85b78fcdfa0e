//! The plain-HTTP control endpoints under `/control/`: parsing their parameters and carrying them out.

use std::time::Duration;

use serde_json::json;

use super::error::FeedServerError;
use super::faults::{CloseAfter, Faults, Refusal};
use super::http::{RequestHead, Response};
use super::shared::{ConnectionCommand, ServerShared};

const DEFAULT_RESTART_DOWN: Duration = Duration::from_secs(1);
const MAX_RESTART_DOWN_MS: u64 = 10 * 60 * 1000;
/// The close code `close_after` uses when the request names none.
const DEFAULT_CLOSE_CODE: u16 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ControlRequest {
    Stats,
    Faults(FaultChanges),
    ClearFaults,
    Drop,
    Silence,
    Close {
        code: u16,
    },
    /// `None` stops refusing.
    Refuse(Option<Refusal>),
    Restart {
        down: Duration,
    },
}

/// Changes to some faults; `None` leaves a fault as it is, `Some(None)` turns it off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FaultChanges {
    drop_every: Option<Option<u64>>,
    silent_after: Option<Option<u64>>,
    close_after: Option<Option<CloseAfter>>,
    replay_overlap: Option<u64>,
}

impl FaultChanges {
    fn apply(&self, faults: &mut Faults) {
        if let Some(drop_every) = self.drop_every {
            faults.drop_every = drop_every;
        }
        if let Some(silent_after) = self.silent_after {
            faults.silent_after = silent_after;
        }
        if let Some(close_after) = self.close_after {
            faults.close_after = close_after;
        }
        if let Some(replay_overlap) = self.replay_overlap {
            faults.replay_overlap = replay_overlap;
        }
    }
}

/// What the connection must do after the answer has been written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterAnswer {
    Nothing,
    /// Restarting ends this very connection, so it happens only once the answer is out.
    Restart {
        down: Duration,
    },
}

impl ControlRequest {
    /// `Ok(None)` for an unknown action (404), `Err` for bad parameters (400).
    pub(crate) fn parse(action: &str, head: &RequestHead) -> Result<Option<Self>, String> {
        let request = match action {
            "stats" => Self::Stats,
            "faults" => Self::Faults(FaultChanges {
                drop_every: switchable_count(head, "drop_every")?,
                silent_after: switchable_count(head, "silent_after")?,
                close_after: close_after_change(head)?,
                replay_overlap: head.parse_query("replay_overlap")?,
            }),
            "clear" => Self::ClearFaults,
            "drop" => Self::Drop,
            "silence" => Self::Silence,
            "close" => Self::Close {
                code: head
                    .parse_query("code")?
                    .ok_or("missing parameter 'code'")?,
            },
            "refuse" => Self::Refuse(refusal(head)?),
            "restart" => Self::Restart {
                down: restart_down(head)?,
            },
            _ => return Ok(None),
        };
        Ok(Some(request))
    }
}

/// Carries out a control request and builds its answer.
pub(crate) fn answer(request: &ControlRequest, shared: &ServerShared) -> (Response, AfterAnswer) {
    let faults_answer = |result: Result<Faults, FeedServerError>| match result {
        Ok(faults) => ok(json!({ "ok": true, "faults": faults })),
        Err(error) => bad_request(&error.to_string()),
    };
    let response = match request {
        ControlRequest::Stats => ok(json!(shared.stats())),
        ControlRequest::Faults(changes) => {
            faults_answer(shared.update_faults(|faults| changes.apply(faults)))
        }
        ControlRequest::ClearFaults => {
            faults_answer(shared.update_faults(|faults| *faults = Faults::default()))
        }
        ControlRequest::Refuse(refusal) => {
            faults_answer(shared.update_faults(|faults| faults.refuse = *refusal))
        }
        ControlRequest::Drop => action_answer("drop", shared.command_all(ConnectionCommand::Drop)),
        ControlRequest::Silence => {
            action_answer("silence", shared.command_all(ConnectionCommand::Silence))
        }
        ControlRequest::Close { code } => match shared.close_all(*code) {
            Ok(reached) => action_answer("close", reached),
            Err(error) => bad_request(&error.to_string()),
        },
        ControlRequest::Restart { down } => {
            let down_ms = u64::try_from(down.as_millis()).unwrap_or(u64::MAX);
            let body = json!({ "ok": true, "action": "restart", "down_ms": down_ms });
            return (ok(body), AfterAnswer::Restart { down: *down });
        }
    };
    (response, AfterAnswer::Nothing)
}

pub(crate) fn bad_request(message: &str) -> Response {
    Response::json(400, json!({ "ok": false, "error": message }).to_string())
}

fn ok(body: serde_json::Value) -> Response {
    Response::json(200, body.to_string())
}

fn action_answer(action: &str, connections: usize) -> Response {
    ok(json!({ "ok": true, "action": action, "connections": connections }))
}

/// `key=N` sets a count, `key=off` (or `none`) turns it off, no `key` leaves it alone.
fn switchable_count(head: &RequestHead, key: &str) -> Result<Option<Option<u64>>, String> {
    match head.query(key) {
        None => Ok(None),
        Some("off" | "none") => Ok(Some(None)),
        Some(_) => Ok(Some(head.parse_query(key)?)),
    }
}

fn close_after_change(head: &RequestHead) -> Result<Option<Option<CloseAfter>>, String> {
    let Some(after) = switchable_count(head, "close_after")? else {
        return Ok(None);
    };
    let code = head
        .parse_query("close_code")?
        .unwrap_or(DEFAULT_CLOSE_CODE);
    Ok(Some(after.map(|after| CloseAfter { code, after })))
}

fn refusal(head: &RequestHead) -> Result<Option<Refusal>, String> {
    let status = match head.query("status") {
        None => return Err("missing parameter 'status'".into()),
        Some("off" | "none") => return Ok(None),
        Some(_) => head.parse_query("status")?.unwrap_or_default(),
    };
    Ok(Some(Refusal {
        status,
        remaining: head.parse_query("count")?,
        retry_after_secs: head.parse_query("retry_after")?,
    }))
}

fn restart_down(head: &RequestHead) -> Result<Duration, String> {
    match head.parse_query::<u64>("down_ms")? {
        None => Ok(DEFAULT_RESTART_DOWN),
        Some(millis) if millis <= MAX_RESTART_DOWN_MS => Ok(Duration::from_millis(millis)),
        Some(_) => Err(format!("'down_ms' must be at most {MAX_RESTART_DOWN_MS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed_server::http::parse_request_head;

    fn parse(target: &str) -> Result<Option<ControlRequest>, String> {
        let head = parse_request_head(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes())
            .expect("valid head");
        let action = head.path.trim_start_matches("/control/").to_owned();
        ControlRequest::parse(&action, &head)
    }

    #[test]
    fn parses_refusal_with_count_and_retry_after() {
        let expected = ControlRequest::Refuse(Some(Refusal {
            status: 503,
            remaining: Some(3),
            retry_after_secs: Some(5),
        }));
        assert_eq!(
            parse("/control/refuse?status=503&count=3&retry_after=5"),
            Ok(Some(expected))
        );
        assert_eq!(
            parse("/control/refuse?status=off"),
            Ok(Some(ControlRequest::Refuse(None)))
        );
        assert!(parse("/control/refuse").is_err());
    }

    #[test]
    fn fault_changes_set_clear_and_keep() {
        let Ok(Some(ControlRequest::Faults(changes))) =
            parse("/control/faults?drop_every=5&silent_after=off&close_after=2&close_code=4001")
        else {
            panic!("faults request expected");
        };
        let mut faults = Faults {
            silent_after: Some(1),
            replay_overlap: 4,
            ..Faults::default()
        };
        changes.apply(&mut faults);
        assert_eq!(faults.drop_every, Some(5));
        assert_eq!(faults.silent_after, None);
        assert_eq!(
            faults.close_after,
            Some(CloseAfter {
                code: 4001,
                after: 2
            })
        );
        assert_eq!(faults.replay_overlap, 4);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(parse("/control/close").is_err());
        assert!(parse("/control/close?code=abc").is_err());
        assert!(parse("/control/restart?down_ms=999999999").is_err());
        assert_eq!(parse("/control/unknown"), Ok(None));
    }
}
