//! Cursors: where the feed is, how to ask the server to resume from there, and which
//! inbound messages are replays of what was already delivered.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;

use crate::payload::Payload;

/// A position in the server's feed, taken from an inbound message. Cursors are ordered:
/// a message whose cursor is at or before the last delivered one is a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(pub u64);

impl Cursor {
    /// The cursor in decimal, as it goes into a URL or a header. Written by hand so the
    /// browser build carries no formatting machinery.
    pub fn to_decimal(self) -> String {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = self.0;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        digits[start..]
            .iter()
            .map(|&digit| char::from(digit))
            .collect()
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Finds the cursor in an inbound message; `None` for messages that carry none (they are
/// delivered without deduplication).
pub type CursorExtractor = Arc<dyn Fn(&Payload) -> Option<Cursor> + Send + Sync>;

/// Builds the first message of a connection from the last delivered cursor.
pub type ResumeMessage = Arc<dyn Fn(Cursor) -> Payload + Send + Sync>;

/// How the last delivered cursor is handed back to the server on each attempt.
/// Nothing is sent before the first cursor was delivered (or configured as the start).
#[derive(Clone, Default)]
pub enum ResumeMode {
    /// The server is not told; replays are still dropped.
    #[default]
    None,
    /// As a URL query parameter: `?NAME=<cursor>`, replacing one already there.
    QueryParam(String),
    /// As a request header `NAME: <cursor>` (native only: browsers cannot set headers).
    Header(String),
    /// As the first message on the new socket, before any queued message.
    FirstMessage(ResumeMessage),
}

impl fmt::Debug for ResumeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::QueryParam(name) => f.debug_tuple("QueryParam").field(name).finish(),
            Self::Header(name) => f.debug_tuple("Header").field(name).finish(),
            Self::FirstMessage(_) => f.write_str("FirstMessage(..)"),
        }
    }
}

impl ResumeMode {
    /// `url` with the resume query parameter set to `cursor`, when this mode uses one.
    pub fn apply_to_url(&self, url: &str, cursor: Option<Cursor>) -> String {
        match (self, cursor) {
            (Self::QueryParam(name), Some(cursor)) => {
                with_query_param(url, name, &cursor.to_decimal())
            }
            _ => url.to_owned(),
        }
    }

    /// The resume header for `cursor`, when this mode uses one.
    pub fn header(&self, cursor: Option<Cursor>) -> Option<(String, String)> {
        match (self, cursor) {
            (Self::Header(name), Some(cursor)) => Some((name.clone(), cursor.to_decimal())),
            _ => None,
        }
    }

    /// The first message for `cursor`, when this mode uses one.
    pub fn first_message(&self, cursor: Option<Cursor>) -> Option<Payload> {
        match (self, cursor) {
            (Self::FirstMessage(build), Some(cursor)) => Some(build(cursor)),
            _ => None,
        }
    }
}

/// `url` with the query parameter `name` set to `value` (an existing one is replaced; a
/// fragment stays last). `value` is percent-encoded where a URL needs it.
pub fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let (before_fragment, fragment) = split_at_byte(url, b'#');
    let (base, query) = split_at_byte(before_fragment, b'?');
    let mut out = String::with_capacity(url.len() + name.len() + value.len() + 2);
    out.push_str(base);
    let mut separator = '?';
    let mut rest = query.unwrap_or("");
    while !rest.is_empty() {
        let (pair, next) = split_at_byte(rest, b'&');
        let key = split_at_byte(pair, b'=').0;
        if !pair.is_empty() && key != name {
            out.push(separator);
            out.push_str(pair);
            separator = '&';
        }
        rest = next.unwrap_or("");
    }
    out.push(separator);
    out.push_str(name);
    out.push('=');
    percent_encode_into(value, &mut out);
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// `text` before and after the first `delimiter` (an ASCII byte), like `split_once`
/// without the pattern machinery it brings into the browser build.
fn split_at_byte(text: &str, delimiter: u8) -> (&str, Option<&str>) {
    match text.bytes().position(|byte| byte == delimiter) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    }
}

fn percent_encode_into(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
}

/// What to do with an inbound message, given its cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// New: deliver it.
    Deliver,
    /// New, but cursors are contiguous and some were skipped: deliver it and report the gap.
    DeliverAfterGap {
        /// The last cursor delivered before this one.
        last: Cursor,
    },
    /// At or before the last delivered cursor: drop it.
    Replay,
}

/// Remembers the last delivered cursor and recognises replays.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReplayFilter {
    last_delivered: Option<Cursor>,
    contiguous: bool,
}

impl ReplayFilter {
    pub(crate) fn new(start: Option<Cursor>, contiguous: bool) -> Self {
        Self {
            last_delivered: start,
            contiguous,
        }
    }

    /// The server's stream does not continue the delivered one: every cursor is new again.
    pub(crate) fn restart(&mut self) {
        self.last_delivered = None;
    }

    pub(crate) fn last_delivered(&self) -> Option<Cursor> {
        self.last_delivered
    }

    /// Decides on a message with `cursor` and, when it is delivered, remembers the cursor.
    pub(crate) fn admit(&mut self, cursor: Option<Cursor>) -> Admission {
        let Some(cursor) = cursor else {
            return Admission::Deliver;
        };
        let admission = match self.last_delivered {
            Some(last) if cursor <= last => return Admission::Replay,
            Some(last) if self.contiguous && cursor.0 > last.0.saturating_add(1) => {
                Admission::DeliverAfterGap { last }
            }
            _ => Admission::Deliver,
        };
        self.last_delivered = Some(cursor);
        admission
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_written_in_decimal() {
        assert_eq!(Cursor(0).to_decimal(), "0");
        assert_eq!(Cursor(4_207).to_decimal(), "4207");
        assert_eq!(Cursor(u64::MAX).to_decimal(), u64::MAX.to_string());
    }
    use std::format;
    use std::prelude::rust_2024::*;

    #[test]
    fn query_param_is_added_replaced_and_kept_before_the_fragment() {
        assert_eq!(
            with_query_param("ws://h/feed", "cursor", "5"),
            "ws://h/feed?cursor=5"
        );
        assert_eq!(
            with_query_param("ws://h/feed?token=a&cursor=1", "cursor", "5"),
            "ws://h/feed?token=a&cursor=5"
        );
        assert_eq!(
            with_query_param("ws://h/feed?a=1#frag", "cursor", "9"),
            "ws://h/feed?a=1&cursor=9#frag"
        );
        assert_eq!(with_query_param("ws://h/?", "c", "a b"), "ws://h/?c=a%20b");
    }

    #[test]
    fn replays_are_recognised() {
        let mut filter = ReplayFilter::new(None, false);
        assert_eq!(filter.admit(Some(Cursor(1))), Admission::Deliver);
        assert_eq!(filter.admit(Some(Cursor(3))), Admission::Deliver);
        assert_eq!(filter.admit(Some(Cursor(3))), Admission::Replay);
        assert_eq!(filter.admit(Some(Cursor(2))), Admission::Replay);
        assert_eq!(filter.admit(None), Admission::Deliver);
        assert_eq!(filter.last_delivered(), Some(Cursor(3)));
    }

    #[test]
    fn gaps_are_reported_when_cursors_are_contiguous() {
        let mut filter = ReplayFilter::new(Some(Cursor(10)), true);
        assert_eq!(filter.admit(Some(Cursor(11))), Admission::Deliver);
        assert_eq!(
            filter.admit(Some(Cursor(14))),
            Admission::DeliverAfterGap { last: Cursor(11) }
        );
        assert_eq!(filter.last_delivered(), Some(Cursor(14)));
    }

    #[test]
    fn resume_modes_build_their_parts() {
        let query = ResumeMode::QueryParam("cursor".into());
        assert_eq!(query.apply_to_url("ws://h/f", None), "ws://h/f");
        assert_eq!(
            query.apply_to_url("ws://h/f", Some(Cursor(4))),
            "ws://h/f?cursor=4"
        );
        let header = ResumeMode::Header("Last-Event-Id".into());
        assert_eq!(
            header.header(Some(Cursor(4))),
            Some(("Last-Event-Id".into(), "4".into()))
        );
        let first = ResumeMode::FirstMessage(Arc::new(|c| Payload::from(format!("from {c}"))));
        assert_eq!(first.first_message(Some(Cursor(4))), Some("from 4".into()));
        assert_eq!(first.first_message(None), None);
    }
}
