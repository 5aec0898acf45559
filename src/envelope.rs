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
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::route::timestamp;

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

/// A record to write as an envelope line.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    pub timestamp: Option<i64>,
}

/// A record's headers as (name, value) pairs, for an envelope line.
pub fn header_list<H: rdkafka::message::Headers>(
    headers: Option<&H>,
) -> Vec<(&str, Option<&[u8]>)> {
    headers
        .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
        .unwrap_or_default()
}

/// Why a record failed, for dead-letter and spool lines.
pub struct Failure<'a> {
    pub error: &'a str,
    pub failed_at_ms: i64,
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn push_bytes(out: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    match std::str::from_utf8(bytes) {
        Ok(s) => push_str(out, s),
        Err(_) => {
            out.push(b'"');
            out.extend_from_slice(BASE64.encode(bytes).as_bytes());
            out.push(b'"');
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"_encoding\":\"base64\"");
        }
    }
}

/// Appends one envelope line (with its newline) to `out`.
pub fn write_line(out: &mut Vec<u8>, rec: &Outgoing, failure: Option<&Failure>) {
    out.extend_from_slice(b"{\"topic\":");
    push_str(out, rec.topic);
    if let Some(p) = rec.partition {
        out.extend_from_slice(format!(",\"partition\":{p}").as_bytes());
    }
    if let Some(k) = rec.key {
        push_bytes(out, "key", k);
    }
    match rec.value {
        Some(v) => push_bytes(out, "value", v),
        None => out.extend_from_slice(b",\"value\":null"),
    }
    if !rec.headers.is_empty() {
        let binary = rec
            .headers
            .iter()
            .any(|(_, v)| v.is_some_and(|v| std::str::from_utf8(v).is_err()));
        out.extend_from_slice(b",\"headers\":{");
        for (i, (name, value)) in rec.headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, name);
            out.push(b':');
            match value {
                None => out.extend_from_slice(b"null"),
                Some(v) if binary => push_str(out, &BASE64.encode(v)),
                Some(v) => push_str(out, &String::from_utf8_lossy(v)),
            }
        }
        out.push(b'}');
        if binary {
            out.extend_from_slice(b",\"headers_encoding\":\"base64\"");
        }
    }
    if let Some(ts) = rec.timestamp {
        out.extend_from_slice(format!(",\"timestamp\":{ts}").as_bytes());
    }
    if let Some(f) = failure {
        out.extend_from_slice(b",\"error\":");
        push_str(out, f.error);
        out.extend_from_slice(format!(",\"failed_at\":{}", f.failed_at_ms).as_bytes());
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_binary_and_tombstone() {
        let rec = Outgoing {
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
    fn absent_value_differs_from_null() {
        let e = Incoming::parse(br#"{"topic":"t"}"#).unwrap();
        assert!(e.value.is_none());
        let e = Incoming::parse(br#"{"topic":"t","value":null}"#).unwrap();
        assert_eq!(e.value.unwrap().get(), "null");
    }
}
