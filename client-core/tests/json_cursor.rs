//! The JSON cursor scanner agrees with a full JSON parser on random documents.
#![cfg(feature = "json")]

use proptest::prelude::*;
use resilient_ws_core::{Payload, json_cursor};
use serde_json::{Map, Value};

/// What a full parser says the cursor at `path` is.
fn oracle(document: &Value, path: &[&str]) -> Option<u64> {
    let mut value = document;
    for segment in path {
        value = match value {
            Value::Object(map) => map.get(*segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9 \"\\\\/\u{e9}\u{1f600}\n]{0,8}".prop_map(Value::String),
        (0u64..1000).prop_map(|n| Value::String(n.to_string())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("seq".to_owned()),
        Just("meta".to_owned()),
        "[a-z\"\u{e9}]{1,4}"
    ]
}

fn document() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn scanner_matches_a_full_parser(doc in document(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&doc).unwrap()
        } else {
            serde_json::to_string(&doc).unwrap()
        };
        let payload = Payload::from(text.clone());
        for (spec, path) in [
            ("seq", vec!["seq"]),
            ("/meta/seq", vec!["meta", "seq"]),
            ("/meta/1", vec!["meta", "1"]),
            ("/0/seq", vec!["0", "seq"]),
        ] {
            let scanned = json_cursor(spec)(&payload).map(|cursor| cursor.0);
            prop_assert_eq!(scanned, oracle(&doc, &path), "spec {} in {}", spec, text);
        }
    }
}
