//! Cursor extraction from JSON messages (feature `json`).
//!
//! A scanner walks only the path to the cursor and skips everything else without building
//! a document: one pass, no allocation for ordinary keys, and no JSON library, which keeps
//! the browser build small.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use crate::epoch::{Welcome, WelcomeReader};
use crate::payload::Payload;
use crate::resume::{Cursor, CursorExtractor};

/// An extractor for `spec`: a JSON pointer when it starts with `/` (`/meta/seq`),
/// otherwise the name of a top-level field (`seq`). The value must be a non-negative
/// integer, or a string of one. Anything else, or a message that is not JSON, has no
/// cursor.
pub fn json_cursor(spec: &str) -> CursorExtractor {
    let path = if spec.starts_with('/') {
        pointer_segments(spec)
    } else {
        vec![spec.to_owned()]
    };
    Arc::new(move |payload: &Payload| {
        let bytes = match payload {
            Payload::Text(text) => text.as_bytes(),
            Payload::Binary(bytes) => bytes.as_slice(),
        };
        Scanner { bytes, pos: 0 }.find(&path)
    })
}

/// Reads the welcome of `resilient-ws-server`'s hub: a JSON object that opens with
/// `{"type":"welcome",` and has an ASCII string `epoch`, a boolean `resumed` and an ASCII
/// string `reason` (other fields are skipped). Anything else is not a welcome.
pub fn json_welcome() -> WelcomeReader {
    Arc::new(|payload: &Payload| {
        Scanner {
            bytes: payload.as_bytes(),
            pos: 0,
        }
        .welcome()
    })
}

/// Splits a JSON pointer (RFC 6901) into unescaped segments.
fn pointer_segments(pointer: &str) -> Vec<String> {
    let mut segments = Vec::new();
    // The pointer starts with `/`; each segment runs to the next one.
    let mut start = 1;
    for (at, byte) in pointer.bytes().enumerate().skip(1) {
        if byte == b'/' {
            segments.push(unescape_segment(&pointer[start..at]));
            start = at + 1;
        }
    }
    segments.push(unescape_segment(&pointer[start..]));
    segments
}

/// `~1` is `/` and `~0` is `~`. By hand: `str::replace` brings a substring searcher into
/// the browser build for two fixed two-byte patterns.
fn unescape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.clone().next() {
            Some('1') => {
                out.push('/');
                chars.next();
            }
            Some('0') => {
                out.push('~');
                chars.next();
            }
            _ => out.push('~'),
        }
    }
    out
}

/// The value of a non-empty run of ASCII digits, or `None` on anything else or overflow.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &byte| {
        let digit = char::from(byte).to_digit(10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A position in a JSON text. Every method returns `None` on malformed input.
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(&byte) = self.bytes.get(self.pos) {
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(byte);
            }
            self.pos += 1;
        }
        None
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.peek()? == wanted).then(|| self.pos += 1)
    }

    /// The cursor at `path` below the value that starts here.
    fn find(&mut self, path: &[String]) -> Option<Cursor> {
        let Some((head, rest)) = path.split_first() else {
            return self.cursor_value();
        };
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                if self.peek()? == b'}' {
                    return None;
                }
                loop {
                    let is_target = self.string_equals(head)?;
                    self.expect(b':')?;
                    if is_target {
                        return self.find(rest);
                    }
                    self.skip_value()?;
                    if self.peek()? != b',' {
                        return None; // `}`: not found, or malformed
                    }
                    self.pos += 1;
                }
            }
            b'[' => {
                let index = usize::try_from(decimal(head.as_bytes())?).ok()?;
                self.pos += 1;
                if self.peek()? == b']' {
                    return None;
                }
                for _ in 0..index {
                    self.skip_value()?;
                    self.expect(b',')?;
                }
                self.find(rest)
            }
            _ => None,
        }
    }

    /// The hub's welcome: an object that opens with `"type":"welcome"` (the hub writes
    /// it first), then an ASCII string `epoch` and `reason` and a boolean `resumed`.
    fn welcome(&mut self) -> Option<Welcome> {
        const OPENING: &[u8] = br#"{"type":"welcome","#;
        self.pos = OPENING.len();
        self.bytes.starts_with(OPENING).then_some(())?;
        let (mut epoch, mut resumed, mut reason) = (None, None, None);
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            match key.as_slice() {
                b"epoch" => epoch = Some(self.ascii()?),
                b"reason" => reason = Some(self.ascii()?),
                b"resumed" => {
                    resumed = Some(self.peek()? == b't');
                    self.skip_value()?;
                }
                _ => self.skip_value()?,
            }
            if self.expect(b',').is_none() {
                break;
            }
        }
        Some(Welcome {
            epoch: epoch?,
            resumed: resumed?,
            reason: reason?,
        })
    }

    /// A string of ASCII characters: epochs and reasons are tokens, and reading them byte
    /// by byte spares the browser build a UTF-8 validator.
    fn ascii(&mut self) -> Option<String> {
        let bytes = self.string()?;
        bytes
            .is_ascii()
            .then(|| bytes.iter().map(|&byte| char::from(byte)).collect())
    }

    /// A non-negative integer, or a string holding one.
    fn cursor_value(&mut self) -> Option<Cursor> {
        match self.peek()? {
            b'"' => {
                let text = self.string()?;
                decimal(&text).map(Cursor)
            }
            b'0'..=b'9' => {
                let start = self.pos;
                while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    self.pos += 1;
                }
                if matches!(self.bytes.get(self.pos), Some(b'.' | b'e' | b'E')) {
                    return None; // not an integer
                }
                decimal(&self.bytes[start..self.pos]).map(Cursor)
            }
            _ => None,
        }
    }

    /// Reads a string and says whether it equals `wanted`, decoding escapes only when
    /// the string has any.
    fn string_equals(&mut self, wanted: &str) -> Option<bool> {
        self.expect(b'"')?;
        let start = self.pos;
        let raw_end = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?
            + start;
        if self.bytes[raw_end] == b'"' {
            self.pos = raw_end + 1;
            return Some(&self.bytes[start..raw_end] == wanted.as_bytes());
        }
        self.pos = start - 1;
        Some(self.string()? == wanted.as_bytes())
    }

    /// Reads a string, decoding its escapes, as UTF-8 bytes. Only compared with keys and
    /// read as digits, so it is never checked as UTF-8 (which would link a validator).
    fn string(&mut self) -> Option<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let byte = *self.bytes.get(self.pos)?;
            self.pos += 1;
            match byte {
                b'"' => return Some(out),
                b'\\' => {
                    let escaped = *self.bytes.get(self.pos)?;
                    self.pos += 1;
                    let decoded = match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    let mut utf8 = [0; 4];
                    out.extend_from_slice(decoded.encode_utf8(&mut utf8).as_bytes());
                }
                control if control < 0x20 => return None,
                other => out.push(other),
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already read), pairing surrogates.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if !(0xD800..0xDC00).contains(&first) {
            return char::from_u32(first);
        }
        if self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
            return None;
        }
        self.pos += 2;
        let second = self.hex4()?;
        if !(0xDC00..0xE000).contains(&second) {
            return None;
        }
        char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        digits.iter().try_fold(0u32, |value, &byte| {
            Some(value << 4 | char::from(byte).to_digit(16)?)
        })
    }

    /// Skips one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => self.skip_container(),
            _ => {
                // A number or a literal: runs to the next delimiter.
                let start = self.pos;
                while self.bytes.get(self.pos).is_some_and(|b| {
                    !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        self.pos += 1; // the opening quote
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
    }

    /// Skips an object or array, counting nesting and stepping over strings.
    fn skip_container(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.skip_string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    fn extract(spec: &str, json: &str) -> Option<u64> {
        json_cursor(spec)(&Payload::from(json)).map(|c| c.0)
    }

    #[test]
    fn top_level_field() {
        assert_eq!(
            extract("seq", r#"{"data":[1,{"seq":9}],"seq":42}"#),
            Some(42)
        );
        assert_eq!(extract("seq", r#" { "seq" : 7 } "#), Some(7));
        assert_eq!(extract("seq", r#"{"seq":"17"}"#), Some(17));
        assert_eq!(extract("seq", r#"{"other":1}"#), None);
        assert_eq!(extract("seq", r#"{}"#), None);
        assert_eq!(extract("seq", r#"{"seq":-1}"#), None);
        assert_eq!(extract("seq", r#"{"seq":1.5}"#), None);
        assert_eq!(extract("seq", r#"{"seq":1e3}"#), None);
        assert_eq!(extract("seq", r#"{"seq":null}"#), None);
        assert_eq!(extract("seq", r#"{"seq":18446744073709551616}"#), None);
        assert_eq!(extract("seq", "not json"), None);
        assert_eq!(extract("seq", "[1,2]"), None);
        assert_eq!(extract("seq", r#"{"a":"x\"}seq","seq":3}"#), Some(3));
    }

    #[test]
    fn pointer() {
        assert_eq!(
            extract("/meta/offset", r#"{"meta":{"offset":7},"x":1}"#),
            Some(7)
        );
        assert_eq!(
            extract("/items/1/id", r#"{"items":[{"id":1},{"id":2}]}"#),
            Some(2)
        );
        assert_eq!(extract("/items/5/id", r#"{"items":[{"id":1}]}"#), None);
        assert_eq!(extract("/a~1b", r#"{"a/b":3}"#), Some(3));
        assert_eq!(extract("/a~0~01b", r#"{"a~~1b":4}"#), Some(4));
        assert_eq!(extract("/~2~", r#"{"~2~":9}"#), Some(9));
        assert_eq!(extract("/missing/x", r#"{"meta":{}}"#), None);
    }

    #[test]
    fn cursors_are_whole_numbers_that_fit() {
        assert_eq!(
            extract("seq", r#"{"seq":"18446744073709551615"}"#),
            Some(u64::MAX)
        );
        assert_eq!(extract("seq", r#"{"seq":18446744073709551616}"#), None);
        assert_eq!(extract("seq", r#"{"seq":""}"#), None);
        assert_eq!(extract("seq", r#"{"seq":"+5"}"#), None);
    }

    #[test]
    fn escaped_keys_match() {
        assert_eq!(extract("s\"q", r#"{"s\"q":5}"#), Some(5));
        assert_eq!(extract("séq", r#"{"s\u00e9q":6}"#), Some(6));
        assert_eq!(extract("😀", r#"{"\ud83d\ude00":8}"#), Some(8));
    }

    #[test]
    fn binary_json_is_read_too() {
        let payload = Payload::from(br#"{"seq":3}"#.to_vec());
        assert_eq!(json_cursor("seq")(&payload), Some(Cursor(3)));
    }
}
