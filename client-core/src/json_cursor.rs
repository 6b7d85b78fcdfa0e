//! Cursor extraction from JSON messages (feature `json`).
//!
//! The extractor walks only the path to the cursor and skips everything else without
//! building a document, so a large message costs one scan and no allocations.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::payload::Payload;
use crate::resume::{Cursor, CursorExtractor};

/// An extractor for `spec`: a JSON pointer when it starts with `/` (`/meta/seq`),
/// otherwise the name of a top-level field (`seq`). The value must be a non-negative
/// integer, or a string of one.
pub fn json_cursor(spec: &str) -> CursorExtractor {
    let path = if spec.starts_with('/') {
        pointer_segments(spec)
    } else {
        vec![spec.to_owned()]
    };
    Arc::new(move |payload: &Payload| cursor_at(payload, &path))
}

/// The cursor at `path` in `payload`, if the payload is JSON and holds one there.
fn cursor_at(payload: &Payload, path: &[String]) -> Option<Cursor> {
    let bytes = match payload {
        Payload::Text(text) => text.as_bytes(),
        Payload::Binary(bytes) => bytes,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    PathSeed { path }
        .deserialize(&mut deserializer)
        .ok()
        .flatten()
}

/// Splits a JSON pointer (RFC 6901) into unescaped segments.
fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Follows `path` through objects and arrays to the cursor value.
struct PathSeed<'p> {
    path: &'p [String],
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_> {
    type Value = Option<Cursor>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        match self.path.split_first() {
            None => deserializer.deserialize_any(CursorValue),
            Some((head, rest)) => deserializer.deserialize_any(Step { head, rest }),
        }
    }
}

/// One step of the path: a key in an object or an index in an array.
struct Step<'p> {
    head: &'p str,
    rest: &'p [String],
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<Cursor>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object or array holding {:?}", self.head)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_target) = map.next_key_seed(KeyIs(self.head))? {
            if is_target && found.is_none() {
                found = map.next_value_seed(PathSeed { path: self.rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let target = self.head.parse::<usize>().ok();
        let mut found = None;
        let mut index = 0;
        loop {
            let element = if Some(index) == target {
                seq.next_element_seed(PathSeed { path: self.rest })?
                    .map(|cursor| found = cursor)
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if element.is_none() {
                return Ok(found);
            }
            index += 1;
        }
    }
}

/// Compares an object key with the wanted one without allocating.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The cursor itself: a non-negative integer or a string of digits.
struct CursorValue;

impl<'de> Visitor<'de> for CursorValue {
    type Value = Option<Cursor>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer cursor")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(Cursor(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(value).ok().map(Cursor))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(value.parse().ok().map(Cursor))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(spec: &str, json: &str) -> Option<u64> {
        json_cursor(spec)(&Payload::Text(json.to_owned())).map(|c| c.0)
    }

    #[test]
    fn top_level_field() {
        assert_eq!(
            extract("seq", r#"{"data":[1,{"seq":9}],"seq":42}"#),
            Some(42)
        );
        assert_eq!(extract("seq", r#"{"seq":"17"}"#), Some(17));
        assert_eq!(extract("seq", r#"{"other":1}"#), None);
        assert_eq!(extract("seq", r#"{"seq":-1}"#), None);
        assert_eq!(extract("seq", r#"{"seq":1.5}"#), None);
        assert_eq!(extract("seq", "not json"), None);
        assert_eq!(extract("seq", "[1,2]"), None);
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
        assert_eq!(extract("/a~1b", r#"{"a/b":3}"#), Some(3));
        assert_eq!(extract("/missing/x", r#"{"meta":{}}"#), None);
    }

    #[test]
    fn escaped_keys_match() {
        assert_eq!(extract("s\"q", r#"{"s\"q":5}"#), Some(5));
    }

    #[test]
    fn binary_json_is_read_too() {
        let payload = Payload::Binary(br#"{"seq":3}"#.to_vec());
        assert_eq!(json_cursor("seq")(&payload), Some(Cursor(3)));
    }
}
