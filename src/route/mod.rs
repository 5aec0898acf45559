//! Turns a framed record into a wire record: topic, key, headers, partition and timestamp from
//! templates over the record's JSON fields, or from its envelope.
//!
//! Routing is two calls: `route` works everything out into the router's reused buffers (and
//! says what is wrong, if anything), then `record` or `fallback` lends the result out. Keeping
//! the decision apart from the borrow lets the caller decide what to do with a record that
//! failed to route, with no copy of the one that did not.

mod envelope;
pub mod fields;
mod scan;
pub mod template;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use anyhow::{bail, Result};
use memchr::memmem;

use crate::options::Format;
use crate::reason::Problem;
use crate::wire::compact::compact_into;
use crate::wire::{timestamp, topic};
use crate::wire::{HeaderBuf, Record};
use fields::{FieldSet, Found};
use template::Template;

/// The header that carries what was wrong with a record sent under fallback-to-string.
pub const ERROR_HEADER: &str = "kpipe.error";

/// The routing flags, as given.
#[derive(Debug, Default, Clone)]
pub struct Rules<'a> {
    pub topic: Option<&'a str>,
    pub key: Option<&'a str>,
    pub headers: &'a [String],
    pub fallback_topic: Option<&'a str>,
    pub timestamp_field: Option<&'a str>,
    pub partition: Option<i32>,
    pub key_delimiter: Option<Vec<u8>>,
    /// `--topic-allow`: what a topic from the input (a template, an envelope) must match.
    pub topic_allow: Option<&'a str>,
}

/// Where one routed record's bytes are: in the input, or in one of the router's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bytes {
    Absent,
    Input(usize, usize),
    StaticKey,
    KeyBuf,
    ValueBuf,
}

/// Which topic the routed record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicAt {
    Static,
    Rendered,
    Fallback,
}

/// What `route` worked out for the current record.
#[derive(Debug, Clone, Copy)]
struct Routed {
    topic: TopicAt,
    key: Bytes,
    value: Bytes,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

/// Routing rules, parsed once, with scratch buffers reused for every record.
pub struct Router {
    format: Format,
    topic: Option<Template>,
    key: Option<Template>,
    header_templates: Vec<(String, Template)>,
    static_headers: HeaderBuf,
    fallback_topic: Option<String>,
    topic_allow: Option<regex::Regex>,
    timestamp_field: Option<usize>,
    partition: Option<i32>,
    key_delimiter: Option<memmem::Finder<'static>>,
    fields: FieldSet,
    found: Found,
    routed: Routed,
    /// Whether `topic_buf` holds a fully rendered topic for the current record.
    topic_rendered: bool,
    /// Topics from the input that `--topic-allow` let through: each is matched once rather than
    /// for every record (the regex was 3-6 % of kpipe's samples for `ndjson` to 100 topics).
    accepted: HashSet<Box<str>>,
    topic_buf: String,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    headers: HeaderBuf,
    scratch: String,
    scratch_bytes: Vec<u8>,
}

impl Router {
    /// Builds the router from the routing flags.
    pub fn new(format: Format, rules: &Rules) -> Result<Router> {
        let mut fields = FieldSet::default();
        let topic = rules
            .topic
            .map(|t| Template::parse(t, &mut fields))
            .transpose()?;
        let key = rules
            .key
            .map(|k| Template::parse(k, &mut fields))
            .transpose()?;
        let header_templates = rules
            .headers
            .iter()
            .map(|h| match h.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    Ok((name.to_string(), Template::parse(value, &mut fields)?))
                }
                _ => bail!("-H {h}: expected NAME=TEMPLATE, e.g. -H 'source=${{HOST}}'"),
            })
            .collect::<Result<Vec<_>>>()?;
        let timestamp_field = rules.timestamp_field.map(|f| fields.add(f));
        if !fields.is_empty() && matches!(format, Format::Lines | Format::Envelope) {
            bail!("templates read JSON fields, which --format lines and envelope do not have; use -f ndjson or -f json");
        }
        if let Some(t) = topic.as_ref().and_then(Template::as_static) {
            if let Err(why) = topic::check(t) {
                bail!("-t {t:?}: {why}");
            }
        }
        if let Some(t) = rules.fallback_topic {
            if let Err(why) = topic::check(t) {
                bail!("--fallback-topic {t:?}: {why}");
            }
        }
        let mut static_headers = HeaderBuf::default();
        push_static_headers(&header_templates, &mut static_headers);
        Ok(Router {
            format,
            topic,
            key,
            header_templates,
            static_headers,
            fallback_topic: rules.fallback_topic.map(str::to_string),
            topic_allow: rules
                .topic_allow
                .map(|r| regex::Regex::new(&format!("^(?:{r})$")))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--topic-allow: {e}"))?,
            timestamp_field,
            partition: rules.partition,
            key_delimiter: rules
                .key_delimiter
                .as_ref()
                .map(|d| memmem::Finder::new(d).into_owned()),
            fields,
            found: Vec::new(),
            routed: Routed {
                topic: TopicAt::Static,
                key: Bytes::Absent,
                value: Bytes::Absent,
                partition: None,
                timestamp: None,
            },
            topic_rendered: false,
            accepted: HashSet::new(),
            topic_buf: String::new(),
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            headers: HeaderBuf::default(),
            scratch: String::new(),
            scratch_bytes: Vec::new(),
        })
    }

    /// Works out where `rec` goes, as its format says; `record` then lends the result.
    pub fn route(&mut self, rec: &[u8]) -> Result<(), Problem> {
        self.topic_rendered = false;
        self.routed = match self.format {
            Format::Lines => self.route_line(rec),
            Format::Ndjson => self.route_json(rec, false)?,
            Format::Json => self.route_json(rec, true)?,
            Format::Envelope => self.route_envelope(rec)?,
        };
        Ok(())
    }

    /// The record `route` worked out; `rec` must be the bytes it was given.
    pub fn record<'a>(&'a self, rec: &'a [u8]) -> Record<'a> {
        let r = self.routed;
        let topic = match r.topic {
            TopicAt::Static => self.static_topic().unwrap_or_default(),
            TopicAt::Rendered => self.topic_buf.as_str(),
            TopicAt::Fallback => self.fallback_topic.as_deref().unwrap_or_default(),
        };
        let headers = match self.format {
            Format::Lines => &self.static_headers,
            _ => &self.headers,
        };
        Record {
            topic,
            partition: r.partition,
            key: self.bytes(r.key, rec),
            value: self.bytes(r.value, rec),
            // An empty list does not allocate.
            headers: headers.list(),
            timestamp: r.timestamp,
        }
    }

    fn bytes<'a>(&'a self, at: Bytes, rec: &'a [u8]) -> Option<&'a [u8]> {
        match at {
            Bytes::Absent => None,
            Bytes::Input(a, b) => rec.get(a..b),
            Bytes::StaticKey => self
                .key
                .as_ref()
                .and_then(Template::as_static)
                .map(str::as_bytes),
            Bytes::KeyBuf => Some(&self.key_buf),
            Bytes::ValueBuf => Some(&self.value_buf),
        }
    }

    /// Checks a topic taken from the input (`from_input`), in `topic_buf`, against Kafka's rules
    /// and `--topic-allow`. A static topic was checked in `new`; a topic `--topic-allow` let
    /// through once is not matched again.
    fn accept_topic(&mut self, from_input: bool) -> Result<(), &'static str> {
        if !from_input {
            return Ok(());
        }
        let Some(allow) = &self.topic_allow else {
            return topic::check(&self.topic_buf);
        };
        if self.accepted.contains(self.topic_buf.as_str()) {
            return Ok(());
        }
        topic::check(&self.topic_buf)?;
        if !allow.is_match(&self.topic_buf) {
            return Err("not allowed by --topic-allow");
        }
        // A template can name topics without bound; forgetting them costs only a match again.
        if self.accepted.len() >= topic::REMEMBERED {
            self.accepted.clear();
        }
        self.accepted.insert(self.topic_buf.as_str().into());
        Ok(())
    }

    /// The timestamp of the record `route` last worked out, if it has its own.
    pub fn timestamp(&self) -> Option<i64> {
        self.routed.timestamp
    }

    /// Forgets the last record's rendered topic, for input that never reached `route`.
    pub fn forget(&mut self) {
        self.topic_rendered = false;
    }

    /// Whether fallback-to-string can name a topic for the record `route` last saw.
    pub fn can_fall_back(&self) -> bool {
        self.topic_rendered || self.fallback_topic.is_some() || self.static_topic().is_some()
    }

    /// The record as fallback-to-string sends it: raw bytes, with the reason in a header.
    /// `None` when no topic can be named for it.
    pub fn fallback<'a>(&'a mut self, rec: &'a [u8], reason: &str) -> Option<Record<'a>> {
        self.headers.clear();
        push_static_headers(&self.header_templates, &mut self.headers);
        self.headers.push(ERROR_HEADER, Some(reason.as_bytes()));
        let topic = if self.topic_rendered {
            Some(self.topic_buf.as_str())
        } else {
            self.fallback_topic
                .as_deref()
                .or_else(|| self.topic.as_ref().and_then(Template::as_static))
        }?;
        Some(Record {
            topic,
            partition: self.partition,
            key: None,
            value: Some(rec),
            headers: self.headers.list(),
            timestamp: None,
        })
    }

    fn static_topic(&self) -> Option<&str> {
        self.topic.as_ref().and_then(Template::as_static)
    }

    fn route_line(&mut self, rec: &[u8]) -> Routed {
        let split = self
            .key_delimiter
            .as_ref()
            .and_then(|d| d.find(rec).map(|i| (i, i + d.needle().len())));
        let (key, value) = match split {
            Some((k, v)) => (Bytes::Input(0, k), Bytes::Input(v, rec.len())),
            None if self.key.is_some() => (Bytes::StaticKey, Bytes::Input(0, rec.len())),
            None => (Bytes::Absent, Bytes::Input(0, rec.len())),
        };
        Routed {
            topic: TopicAt::Static,
            key,
            value,
            partition: self.partition,
            timestamp: None,
        }
    }

    fn route_json(&mut self, rec: &[u8], compact: bool) -> Result<Routed, Problem> {
        let text = self
            .fields
            .extract(rec, &mut self.found)
            .map_err(|e| Problem::InvalidJson(e.to_string()))?;
        let mut missing: Option<String> = None;
        let Some(topic_template) = self.topic.as_ref() else {
            return Err(Problem::Envelope("no topic".into()));
        };
        let mut invalid = None;
        match topic_template.render(text, &self.found, &mut self.topic_buf) {
            Some(m) => missing = Some(m.to_string()),
            None => match self.accept_topic(topic_template.as_static().is_none()) {
                Ok(()) => self.topic_rendered = true,
                Err(why) => invalid = Some(why),
            },
        }
        let key = match &self.key {
            Some(t) => {
                if let Some(m) = t.render(text, &self.found, &mut self.scratch) {
                    missing.get_or_insert_with(|| m.to_string());
                }
                self.key_buf.clear();
                self.key_buf.extend_from_slice(self.scratch.as_bytes());
                Bytes::KeyBuf
            }
            None => Bytes::Absent,
        };
        self.headers.clear();
        for (name, t) in &self.header_templates {
            if let Some(m) = t.render(text, &self.found, &mut self.scratch) {
                missing.get_or_insert_with(|| m.to_string());
            }
            self.headers.push(name, Some(self.scratch.as_bytes()));
        }
        let timestamp = match self.timestamp_field {
            Some(id) => Some(
                fields::found_text(text, &self.found, id)
                    .and_then(timestamp::from_json)
                    .ok_or(Problem::BadTimestamp)?,
            ),
            None => None,
        };
        let mut topic = TopicAt::Rendered;
        let problem = match (missing, invalid) {
            (Some(field), _) => Some(Problem::MissingField(field)),
            (None, Some(why)) => Some(Problem::InvalidTopic {
                topic: self.topic_buf.clone(),
                why,
            }),
            (None, None) => None,
        };
        if let Some(problem) = problem {
            if self.fallback_topic.is_none() {
                return Err(problem);
            }
            topic = TopicAt::Fallback;
            let reason = problem.to_string();
            self.headers.push(ERROR_HEADER, Some(reason.as_bytes()));
        }
        let value = if compact {
            compact_into(rec, &mut self.value_buf);
            Bytes::ValueBuf
        } else {
            Bytes::Input(0, rec.len())
        };
        Ok(Routed {
            topic,
            key,
            value,
            partition: self.partition,
            timestamp,
        })
    }
}

/// Adds the headers whose templates name no field (the same for every record).
fn push_static_headers(templates: &[(String, Template)], out: &mut HeaderBuf) {
    for (name, t) in templates {
        if let Some(v) = t.as_static() {
            out.push(name, Some(v.as_bytes()));
        }
    }
}
