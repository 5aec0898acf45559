//! The envelope: one JSON object per line that says everything about a record. kpipe reads it
//! with `--format envelope` and writes it for `--dry-run`, the dead-letter file and the spool,
//! so one reader serves all of them.
//!
//! ```text
//! {"topic":"t","partition":0,"key":"k","value":"v","headers":{"h":"x"},"timestamp":1764061200000}
//! ```
//! `value_encoding`/`key_encoding`/`headers_encoding` = `"base64"` mark bytes that are not UTF-8;
//! `"value":null` is a tombstone; a value that is a JSON object or array is sent as its compact
//! text. Dead-letter and spool lines add `error` and `failed_at`, which readers ignore.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::timestamp;
use super::{Header, Record};

/// An envelope line as read, borrowing from the input where it can.
#[derive(Deserialize)]
pub struct Incoming<'a> {
    #[serde(borrow, default)]
    pub topic: Option<Cow<'a, str>>,
    #[serde(default)]
    pub partition: Option<i32>,
    #[serde(borrow, default, deserialize_with = "keep_null")]
    pub key: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "keep_null")]
    pub value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub headers: Option<BTreeMap<Cow<'a, str>, Option<Cow<'a, str>>>>,
    #[serde(borrow, default)]
    pub timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub key_encoding: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub value_encoding: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub headers_encoding: Option<Cow<'a, str>>,
}

/// Keeps an explicit `null` as a raw value, so a tombstone differs from an absent field.
fn keep_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl<'a> Incoming<'a> {
    /// Parses one envelope line.
    pub fn parse(line: &'a [u8]) -> Result<Incoming<'a>, String> {
        serde_json::from_slice(line).map_err(|e| format!("invalid envelope: {e}"))
    }

    /// The record timestamp, if one was given.
    pub fn timestamp_ms(&self) -> Result<Option<i64>, String> {
        match self.timestamp {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => timestamp::from_json(raw.get()).map(Some).ok_or_else(|| {
                format!(
                    "envelope timestamp {} is neither epoch milliseconds nor RFC 3339",
                    raw.get()
                )
            }),
        }
    }
}

/// Decodes a key or value field into `out`; `Ok(false)` means null (no key, or a tombstone).
pub fn decode_field(
    raw: &RawValue,
    encoding: Option<&str>,
    what: &str,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    out.clear();
    let text = raw.get();
    if text == "null" {
        return Ok(false);
    }
    if text.starts_with('"') {
        let s: Cow<str> =
            serde_json::from_str(text).map_err(|e| format!("envelope {what}: {e}"))?;
        match encoding {
            None | Some("utf-8" | "utf8" | "string") => out.extend_from_slice(s.as_bytes()),
            Some("base64") => BASE64
                .decode_vec(s.as_bytes(), out)
                .map_err(|e| format!("envelope {what} is not valid base64: {e}"))?,
            Some(other) => {
                return Err(format!(
                    "envelope {what}_encoding `{other}` is unknown; use base64"
                ))
            }
        }
    } else {
        // Objects, arrays and numbers travel as their JSON text.
        out.extend_from_slice(text.as_bytes());
    }
    Ok(true)
}

/// Why a record failed, for dead-letter and spool lines.
pub struct Failure<'a> {
    pub error: &'a str,
    pub failed_at_ms: i64,
}

/// Bytes as envelope text: UTF-8 as it is, anything else base64 (and the field says so).
enum Text<'a> {
    Utf8(&'a str),
    Base64(String),
}

impl<'a> Text<'a> {
    fn of(bytes: &'a [u8]) -> Text<'a> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Text::Utf8(s),
            Err(_) => Text::Base64(BASE64.encode(bytes)),
        }
    }

    fn encoding(&self) -> Option<&'static str> {
        matches!(self, Text::Base64(_)).then_some("base64")
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Text::Utf8(t) => s.serialize_str(t),
            Text::Base64(t) => s.serialize_str(t),
        }
    }
}

/// Headers as a JSON object; all values base64 when any one is not UTF-8.
struct HeaderMap<'r, 'a> {
    headers: &'r [Header<'a>],
    base64: bool,
}

impl Serialize for HeaderMap<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.headers.len()))?;
        for (name, value) in self.headers {
            match value {
                None => map.serialize_entry(name, &None::<&str>)?,
                Some(v) if self.base64 => map.serialize_entry(name, &BASE64.encode(v))?,
                Some(v) => map.serialize_entry(name, &String::from_utf8_lossy(v))?,
            }
        }
        map.end()
    }
}

/// One envelope line, field by field in the order readers see them.
#[derive(Serialize)]
struct Line<'r, 'a> {
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_encoding: Option<&'static str>,
    /// Always written: `null` is a tombstone.
    value: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<HeaderMap<'r, 'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers_encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_at: Option<i64>,
}

/// Appends one envelope line (with its newline) to `out`.
pub fn write_line(out: &mut Vec<u8>, rec: &Record, failure: Option<&Failure>) {
    let key = rec.key.map(Text::of);
    let value = rec.value.map(Text::of);
    let base64_headers = rec
        .headers
        .iter()
        .any(|(_, v)| v.is_some_and(|v| std::str::from_utf8(v).is_err()));
    let line = Line {
        topic: rec.topic,
        partition: rec.partition,
        key_encoding: key.as_ref().and_then(Text::encoding),
        key,
        value_encoding: value.as_ref().and_then(Text::encoding),
        value,
        headers: (!rec.headers.is_empty()).then_some(HeaderMap {
            headers: &rec.headers,
            base64: base64_headers,
        }),
        headers_encoding: base64_headers.then_some("base64"),
        timestamp: rec.timestamp,
        error: failure.map(|f| f.error),
        failed_at: failure.map(|f| f.failed_at_ms),
    };
    // Serialising plain strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_binary_and_tombstone() {
        let rec = Record {
            topic: "t",
            partition: Some(2),
            key: Some(b"k\xff"),
            value: None,
            headers: vec![("a", Some(b"x")), ("b", None)],
            timestamp: Some(5),
        };
        let mut line = Vec::new();
        write_line(
            &mut line,
            &rec,
            Some(&Failure {
                error: "boom",
                failed_at_ms: 9,
            }),
        );
        let back = Incoming::parse(&line[..line.len() - 1]).unwrap();
        assert_eq!(back.topic.as_deref(), Some("t"));
        assert_eq!(back.partition, Some(2));
        let mut key = Vec::new();
        assert!(decode_field(
            back.key.unwrap(),
            back.key_encoding.as_deref(),
            "key",
            &mut key
        )
        .unwrap());
        assert_eq!(key, b"k\xff");
        let mut value = Vec::new();
        assert!(!decode_field(back.value.unwrap(), None, "value", &mut value).unwrap());
        assert_eq!(back.timestamp_ms().unwrap(), Some(5));
        let headers = back.headers.unwrap();
        assert_eq!(headers.get("a").cloned().flatten().as_deref(), Some("x"));
        assert_eq!(headers.get("b").cloned(), Some(None));
    }

    #[test]
    fn writes_one_line_with_fields_in_a_fixed_order() {
        let rec = Record {
            topic: "t",
            partition: Some(2),
            key: Some(b"k\xff"),
            value: Some(b"v\"1"),
            headers: vec![("a", Some(b"x")), ("b", None)],
            timestamp: Some(5),
        };
        let mut line = Vec::new();
        write_line(
            &mut line,
            &rec,
            Some(&Failure {
                error: "boom",
                failed_at_ms: 9,
            }),
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"topic\":\"t\",\"partition\":2,\"key\":\"a/8=\",\"key_encoding\":\"base64\",\"value\":\"v\\\"1\",\"headers\":{\"a\":\"x\",\"b\":null},\"timestamp\":5,\"error\":\"boom\",\"failed_at\":9}\n"
        );
    }

    #[test]
    fn a_tombstone_without_key_or_headers_is_short() {
        let rec = Record {
            topic: "t",
            ..Record::default()
        };
        let mut line = Vec::new();
        write_line(&mut line, &rec, None);
        assert_eq!(line, b"{\"topic\":\"t\",\"value\":null}\n");
    }

    #[test]
    fn one_binary_header_makes_every_header_base64() {
        let rec = Record {
            topic: "t",
            value: Some(b"v"),
            headers: vec![("a", Some(b"x")), ("b", Some(b"\xff"))],
            ..Record::default()
        };
        let mut line = Vec::new();
        write_line(&mut line, &rec, None);
        let back = Incoming::parse(&line[..line.len() - 1]).unwrap();
        assert_eq!(back.headers_encoding.as_deref(), Some("base64"));
        let h = back.headers.unwrap();
        assert_eq!(h.get("a").cloned().flatten().as_deref(), Some("eA=="));
        assert_eq!(h.get("b").cloned().flatten().as_deref(), Some("/w=="));
    }

    #[test]
    fn absent_value_differs_from_null() {
        let e = Incoming::parse(br#"{"topic":"t"}"#).unwrap();
        assert!(e.value.is_none());
        let e = Incoming::parse(br#"{"topic":"t","value":null}"#).unwrap();
        assert_eq!(e.value.unwrap().get(), "null");
    }
}
