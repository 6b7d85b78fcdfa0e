//! The plain-HTTP control endpoints under `/control/`: parsing their parameters and carrying them out.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::connection::ConnectionContext;
use super::error::FeedServerError;
use super::feed::{CloseAfter, ConnectionCommand, Faults, Refusal};
use super::router::error_answer;
use super::shared::ServerShared;

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
        /// Also drop the history: a new epoch.
        forget: bool,
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

/// The query parameters of a request, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn new(query: HashMap<String, String>) -> Self {
        Self(query)
    }

    /// The value of a query parameter; `Some("")` for `?flag`.
    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A query parameter parsed as `T`; `Ok(None)` when absent. The error names the parameter
    /// but never echoes its value (query values stay out of answers and logs).
    pub(crate) fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.query(key)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| format!("invalid value for '{key}'"))
            })
            .transpose()
    }
}

/// `GET /control/{action}`.
pub(crate) async fn control(
    State(shared): State<Arc<ServerShared>>,
    Extension(connection): Extension<ConnectionContext>,
    Path(action): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match ControlRequest::parse(&action, &Params::new(query)) {
        Ok(Some(request)) => answer(&request, &shared, &connection),
        Ok(None) => error_answer(StatusCode::NOT_FOUND, "not found"),
        Err(message) => bad_request(&message),
    }
}

impl ControlRequest {
    /// `Ok(None)` for an unknown action (404), `Err` for bad parameters (400).
    pub(crate) fn parse(action: &str, params: &Params) -> Result<Option<Self>, String> {
        let request = match action {
            "stats" => Self::Stats,
            "faults" => Self::Faults(FaultChanges {
                drop_every: switchable_count(params, "drop_every")?,
                silent_after: switchable_count(params, "silent_after")?,
                close_after: close_after_change(params)?,
                replay_overlap: params.parse("replay_overlap")?,
            }),
            "clear" => Self::ClearFaults,
            "drop" => Self::Drop,
            "silence" => Self::Silence,
            "close" => Self::Close {
                code: params.parse("code")?.ok_or("missing parameter 'code'")?,
            },
            "refuse" => Self::Refuse(refusal(params)?),
            "restart" => Self::Restart {
                down: restart_down(params)?,
                forget: flag(params, "forget")?,
            },
            _ => return Ok(None),
        };
        Ok(Some(request))
    }
}

/// Carries out a control request and builds its answer. A restart is left to the connection,
/// which carries it out once the answer is out (restarting ends this very connection).
fn answer(
    request: &ControlRequest,
    shared: &ServerShared,
    connection: &ConnectionContext,
) -> Response {
    let faults_answer = |result: Result<Faults, FeedServerError>| match result {
        Ok(faults) => ok(json!({ "ok": true, "faults": faults })),
        Err(error) => bad_request(&error.to_string()),
    };
    match request {
        ControlRequest::Stats => {
            let mut stats = json!(shared.stats());
            stats["epoch"] = json!(shared.hub().epoch());
            ok(stats)
        }
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
        ControlRequest::Restart { down, forget } => {
            let down_ms = u64::try_from(down.as_millis()).unwrap_or(u64::MAX);
            connection.restart_after_answer(*down, *forget);
            ok(json!({ "ok": true, "action": "restart", "down_ms": down_ms, "forget": forget }))
        }
    }
}

fn bad_request(message: &str) -> Response {
    error_answer(StatusCode::BAD_REQUEST, message)
}

fn ok(body: serde_json::Value) -> Response {
    Json(body).into_response()
}

fn action_answer(action: &str, connections: usize) -> Response {
    ok(json!({ "ok": true, "action": action, "connections": connections }))
}

/// `key=N` sets a count, `key=off` (or `none`) turns it off, no `key` leaves it alone.
fn switchable_count(params: &Params, key: &str) -> Result<Option<Option<u64>>, String> {
    match params.query(key) {
        None => Ok(None),
        Some("off" | "none") => Ok(Some(None)),
        Some(_) => Ok(Some(params.parse(key)?)),
    }
}

fn close_after_change(params: &Params) -> Result<Option<Option<CloseAfter>>, String> {
    let Some(after) = switchable_count(params, "close_after")? else {
        return Ok(None);
    };
    let code = params.parse("close_code")?.unwrap_or(DEFAULT_CLOSE_CODE);
    Ok(Some(after.map(|after| CloseAfter { code, after })))
}

fn refusal(params: &Params) -> Result<Option<Refusal>, String> {
    let status = match params.query("status") {
        None => return Err("missing parameter 'status'".into()),
        Some("off" | "none") => return Ok(None),
        Some(_) => params.parse("status")?.unwrap_or_default(),
    };
    Ok(Some(Refusal {
        status,
        remaining: params.parse("count")?,
        retry_after_secs: params.parse("retry_after")?,
    }))
}

/// `key=1` (or `true`, or a bare `key`) is on; `key=0` (or `false`) or no `key` is off.
fn flag(params: &Params, key: &str) -> Result<bool, String> {
    match params.query(key) {
        None | Some("0" | "false") => Ok(false),
        Some("" | "1" | "true") => Ok(true),
        Some(_) => Err(format!("invalid value for '{key}' (use 1 or 0)")),
    }
}

fn restart_down(params: &Params) -> Result<Duration, String> {
    match params.parse::<u64>("down_ms")? {
        None => Ok(DEFAULT_RESTART_DOWN),
        Some(millis) if millis <= MAX_RESTART_DOWN_MS => Ok(Duration::from_millis(millis)),
        Some(_) => Err(format!("'down_ms' must be at most {MAX_RESTART_DOWN_MS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `/control/ACTION?k=v&...` (query values need no decoding here).
    fn parse(target: &str) -> Result<Option<ControlRequest>, String> {
        let target = target.strip_prefix("/control/").expect("a control path");
        let (action, query) = target.split_once('?').unwrap_or((target, ""));
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key.to_owned(), value.to_owned())
            })
            .collect();
        ControlRequest::parse(action, &Params::new(query))
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
    fn restart_may_forget_the_history() {
        assert_eq!(
            parse("/control/restart?down_ms=50&forget=1"),
            Ok(Some(ControlRequest::Restart {
                down: Duration::from_millis(50),
                forget: true
            }))
        );
        assert_eq!(
            parse("/control/restart"),
            Ok(Some(ControlRequest::Restart {
                down: DEFAULT_RESTART_DOWN,
                forget: false
            }))
        );
        assert!(parse("/control/restart?forget=maybe").is_err());
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(parse("/control/close").is_err());
        assert!(parse("/control/close?code=abc").is_err());
        assert!(parse("/control/restart?down_ms=999999999").is_err());
        assert_eq!(parse("/control/unknown"), Ok(None));
    }
}
