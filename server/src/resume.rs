//! The resume decision: what a client asked for, and the welcome that answers it.

use serde::Serialize;

use crate::config::StartPoint;
use crate::error::ResumeQueryError;

/// What a connecting client asked for: `?cursor=N&epoch=E`, both optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumeRequest {
    /// The last cursor the client has.
    pub cursor: Option<u64>,
    /// The epoch that cursor belongs to.
    pub epoch: Option<String>,
}

impl ResumeRequest {
    /// Parses the raw query values. An empty value counts as absent; a `cursor` that is not
    /// a decimal `u64` is an error.
    pub fn from_query(cursor: Option<&str>, epoch: Option<&str>) -> Result<Self, ResumeQueryError> {
        let cursor = match cursor.filter(|value| !value.is_empty()) {
            // `u64::from_str` accepts a leading `+`; a cursor is digits only.
            Some(value) if value.bytes().all(|b| b.is_ascii_digit()) => {
                Some(value.parse().map_err(|_| ResumeQueryError::InvalidCursor)?)
            }
            Some(_) => return Err(ResumeQueryError::InvalidCursor),
            None => None,
        };
        let epoch = epoch.filter(|value| !value.is_empty()).map(str::to_owned);
        Ok(Self { cursor, epoch })
    }
}

/// Why a connection starts where it does (the welcome's `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeReason {
    /// No cursor was given.
    Fresh,
    /// The cursor was honoured: the stream continues right after it.
    Resumed,
    /// The cursor belongs to another epoch (history was lost since).
    EpochChanged,
    /// The messages right after the cursor have left the replay buffer.
    CursorTooOld,
    /// The cursor is beyond the latest message of this epoch.
    CursorAhead,
}

impl ResumeReason {
    /// The wire name (`"fresh"`, `"resumed"`, `"epoch_changed"`, `"cursor_too_old"`,
    /// `"cursor_ahead"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Resumed => "resumed",
            Self::EpochChanged => "epoch_changed",
            Self::CursorTooOld => "cursor_too_old",
            Self::CursorAhead => "cursor_ahead",
        }
    }

    /// Whether a cursor was given and could not be honoured.
    pub fn is_discontinuity(self) -> bool {
        matches!(
            self,
            Self::EpochChanged | Self::CursorTooOld | Self::CursorAhead
        )
    }
}

/// The hub's answer to a [`ResumeRequest`], sent as the first frame of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The hub's current epoch.
    pub epoch: String,
    /// Whether the cursor was honoured.
    pub resumed: bool,
    /// Why the stream starts at [`from`](Self::from).
    pub reason: ResumeReason,
    /// The first cursor that will follow (later ones follow it in order, none skipped).
    pub from: u64,
    /// The latest cursor published when the connection was subscribed (0: none yet).
    pub head: u64,
}

impl Welcome {
    /// The welcome frame: `{"type":"welcome","epoch":..,"resumed":..,"reason":..,"from":..,
    /// "head":..}`, keys in this order.
    pub fn to_json(&self) -> String {
        // Field order is the wire order; serde_json writes struct fields as declared.
        #[derive(Serialize)]
        struct Frame<'a> {
            r#type: &'static str,
            epoch: &'a str,
            resumed: bool,
            reason: ResumeReason,
            from: u64,
            head: u64,
        }
        let frame = Frame {
            r#type: "welcome",
            epoch: &self.epoch,
            resumed: self.resumed,
            reason: self.reason,
            from: self.from,
            head: self.head,
        };
        serde_json::to_string(&frame).expect("a struct of plain fields serializes")
    }
}

/// What the hub holds when a client subscribes: `first..=head` is buffered (`first` is
/// `head + 1` when nothing is).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held<'a> {
    pub(crate) epoch: &'a str,
    pub(crate) head: u64,
    pub(crate) first: u64,
}

/// Decides where a connection starts.
pub(crate) fn decide(
    request: &ResumeRequest,
    held: Held<'_>,
    start: StartPoint,
    on_discontinuity: StartPoint,
) -> Welcome {
    let from_point = |point| match point {
        StartPoint::Oldest => held.first,
        StartPoint::Live => held.head + 1,
    };
    let (reason, from) = match request.cursor {
        None => (ResumeReason::Fresh, from_point(start)),
        Some(_) if request.epoch.as_deref().is_some_and(|e| e != held.epoch) => {
            (ResumeReason::EpochChanged, from_point(on_discontinuity))
        }
        Some(cursor) if cursor > held.head => {
            (ResumeReason::CursorAhead, from_point(on_discontinuity))
        }
        // N + 1 is buffered, or N is the head (then nothing needs replaying).
        Some(cursor) if cursor >= held.first - 1 => (ResumeReason::Resumed, cursor + 1),
        Some(_) => (ResumeReason::CursorTooOld, from_point(on_discontinuity)),
    };
    Welcome {
        epoch: held.epoch.to_owned(),
        resumed: reason == ResumeReason::Resumed,
        reason,
        from,
        head: held.head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELD: Held<'static> = Held {
        epoch: "e1",
        head: 100,
        first: 41,
    };

    fn ask(cursor: Option<u64>, epoch: Option<&str>) -> ResumeRequest {
        ResumeRequest {
            cursor,
            epoch: epoch.map(str::to_owned),
        }
    }

    fn decide_default(request: &ResumeRequest, held: Held<'_>) -> (ResumeReason, u64) {
        let welcome = decide(request, held, StartPoint::Oldest, StartPoint::Oldest);
        assert_eq!(welcome.resumed, welcome.reason == ResumeReason::Resumed);
        assert_eq!(welcome.head, held.head);
        (welcome.reason, welcome.from)
    }

    #[test]
    fn resumes_inside_the_buffer() {
        use ResumeReason::*;
        assert_eq!(
            decide_default(&ask(Some(40), Some("e1")), HELD),
            (Resumed, 41)
        );
        assert_eq!(decide_default(&ask(Some(70), None), HELD), (Resumed, 71));
        assert_eq!(
            decide_default(&ask(Some(100), Some("e1")), HELD),
            (Resumed, 101)
        );
    }

    #[test]
    fn says_why_it_cannot_resume() {
        use ResumeReason::*;
        assert_eq!(
            decide_default(&ask(Some(39), Some("e1")), HELD),
            (CursorTooOld, 41)
        );
        assert_eq!(
            decide_default(&ask(Some(50), Some("e0")), HELD),
            (EpochChanged, 41)
        );
        assert_eq!(
            decide_default(&ask(Some(101), Some("e1")), HELD),
            (CursorAhead, 41)
        );
        assert_eq!(
            decide_default(&ask(Some(101), None), HELD),
            (CursorAhead, 41)
        );
        assert_eq!(decide_default(&ask(None, Some("e0")), HELD), (Fresh, 41));
    }

    #[test]
    fn head_resumes_even_with_an_empty_buffer() {
        let empty = Held {
            epoch: "e1",
            head: 7,
            first: 8,
        };
        let resumed = (ResumeReason::Resumed, 8);
        assert_eq!(decide_default(&ask(Some(7), Some("e1")), empty), resumed);
        let too_old = (ResumeReason::CursorTooOld, 8);
        assert_eq!(decide_default(&ask(Some(6), Some("e1")), empty), too_old);
        let nothing = Held {
            epoch: "e1",
            head: 0,
            first: 1,
        };
        let at_start = (ResumeReason::Resumed, 1);
        assert_eq!(decide_default(&ask(Some(0), Some("e1")), nothing), at_start);
    }

    #[test]
    fn start_points_choose_from() {
        let live = decide(&ask(None, None), HELD, StartPoint::Live, StartPoint::Oldest);
        assert_eq!((live.reason, live.from), (ResumeReason::Fresh, 101));
        let old = ask(Some(1), Some("e1"));
        let skip = decide(&old, HELD, StartPoint::Oldest, StartPoint::Live);
        assert_eq!((skip.reason, skip.from), (ResumeReason::CursorTooOld, 101));
        assert!(!skip.resumed);
    }

    #[test]
    fn welcome_json_has_the_wire_shape() {
        let welcome = decide(
            &ask(Some(40), Some("e1")),
            HELD,
            StartPoint::Oldest,
            StartPoint::Oldest,
        );
        assert_eq!(
            welcome.to_json(),
            r#"{"type":"welcome","epoch":"e1","resumed":true,"reason":"resumed","from":41,"head":100}"#
        );
        let old = decide(
            &ask(Some(1), None),
            HELD,
            StartPoint::Oldest,
            StartPoint::Oldest,
        );
        assert!(
            old.to_json()
                .contains(r#""resumed":false,"reason":"cursor_too_old""#)
        );
        for reason in [
            ResumeReason::Fresh,
            ResumeReason::EpochChanged,
            ResumeReason::CursorAhead,
        ] {
            let json = serde_json::to_string(&reason).expect("serializes");
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }

    #[test]
    fn parses_query_values() {
        let parsed = ResumeRequest::from_query(Some("42"), Some("abc")).expect("valid");
        assert_eq!(parsed, ask(Some(42), Some("abc")));
        let empty = ResumeRequest::from_query(Some(""), Some("")).expect("empty is absent");
        assert_eq!(empty, ResumeRequest::default());
        for bad in ["-1", "+1", "1.5", "x", "18446744073709551616", " 1"] {
            assert_eq!(
                ResumeRequest::from_query(Some(bad), None),
                Err(ResumeQueryError::InvalidCursor),
                "{bad:?} must be refused"
            );
        }
        let max = ResumeRequest::from_query(Some("18446744073709551615"), None).expect("u64::MAX");
        assert_eq!(max.cursor, Some(u64::MAX));
    }
}
