//! Turns a framed record into an outgoing one: topic, key, headers, partition and timestamp
//! from templates over the record's JSON fields, or from its envelope.

pub mod fields;
pub mod template;
pub mod timestamp;

use anyhow::{bail, Result};
use memchr::memmem;
use rdkafka::message::{Header, OwnedHeaders};

use crate::cli::Format;
use crate::envelope::{self, Incoming};
use crate::input::json::compact_into;
use crate::message::{Origin, Outgoing};
use fields::{FieldSet, Found};
use template::Template;

/// The header that carries what was wrong with a record sent under fallback-to-string.
pub const ERROR_HEADER: &str = "kpipe.error";

/// Why a record could not be routed as its format says.
#[derive(Debug)]
pub struct Problem(pub String);

/// Routing rules, parsed once, with scratch buffers reused for every record.
pub struct Router {
    format: Format,
    topic: Option<Template>,
    key: Option<Template>,
    headers: Vec<(String, Template)>,
    fallback_topic: Option<String>,
    timestamp_field: Option<usize>,
    partition: Option<i32>,
    key_delimiter: Option<memmem::Finder<'static>>,
    fields: FieldSet,
    found: Found,
    topic_buf: String,
    /// Whether `topic_buf` holds a fully rendered topic for the current record.
    topic_rendered: bool,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    header_buf: String,
}

impl Router {
    /// Builds the router from the routing flags.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        format: Format,
        topic: Option<&str>,
        key: Option<&str>,
        headers: &[String],
        fallback_topic: Option<&str>,
        timestamp_field: Option<&str>,
        partition: Option<i32>,
        key_delimiter: Option<Vec<u8>>,
    ) -> Result<Router> {
        let mut fields = FieldSet::default();
        let topic = topic.map(|t| Template::parse(t, &mut fields)).transpose()?;
        let key = key.map(|k| Template::parse(k, &mut fields)).transpose()?;
        let headers = headers
            .iter()
            .map(|h| match h.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    Ok((name.to_string(), Template::parse(value, &mut fields)?))
                }
                _ => bail!("-H {h}: expected NAME=TEMPLATE, e.g. -H 'source=${{HOST}}'"),
            })
            .collect::<Result<Vec<_>>>()?;
        let timestamp_field = timestamp_field.map(|f| fields.add(f));
        if !fields.is_empty() && matches!(format, Format::Lines | Format::Envelope) {
            bail!("templates read JSON fields, which --format lines and envelope do not have; use -f ndjson or -f json");
        }
        if topic.as_ref().is_some_and(|t| t.as_static() == Some("")) {
            bail!("-t: the topic is empty");
        }
        Ok(Router {
            format,
            topic,
            key,
            headers,
            fallback_topic: fallback_topic.map(str::to_string),
            timestamp_field,
            partition,
            key_delimiter: key_delimiter.map(|d| memmem::Finder::new(&d).into_owned()),
            fields,
            found: Vec::new(),
            topic_buf: String::new(),
            topic_rendered: false,
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            header_buf: String::new(),
        })
    }

    /// Routes one record as its format says.
    pub fn route<'a>(&'a mut self, rec: &'a [u8]) -> Result<Outgoing<'a>, Problem> {
        self.topic_rendered = false;
        match self.format {
            Format::Lines => Ok(self.route_line(rec)),
            Format::Ndjson => self.route_json(rec, false),
            Format::Json => self.route_json(rec, true),
            Format::Envelope => self.route_envelope(rec),
        }
    }

    fn static_topic(&self) -> Option<&str> {
        self.topic.as_ref().and_then(Template::as_static)
    }

    fn static_headers(&self, extra: Option<(&str, &str)>) -> Option<OwnedHeaders> {
        let statics: Vec<(&str, &str)> = self
            .headers
            .iter()
            .filter_map(|(n, t)| t.as_static().map(|v| (n.as_str(), v)))
            .chain(extra)
            .collect();
        if statics.is_empty() {
            return None;
        }
        let mut h = OwnedHeaders::new_with_capacity(statics.len());
        for (key, value) in statics {
            h = h.insert(Header {
                key,
                value: Some(value),
            });
        }
        Some(h)
    }

    fn route_line<'a>(&'a mut self, rec: &'a [u8]) -> Outgoing<'a> {
        let (key, value) = match &self.key_delimiter {
            Some(d) => match d.find(rec) {
                Some(i) => (Some(&rec[..i]), &rec[i + d.needle().len()..]),
                None => (None, rec),
            },
            None => (None, rec),
        };
        let key = key.or_else(|| {
            self.key
                .as_ref()
                .and_then(Template::as_static)
                .map(str::as_bytes)
        });
        Outgoing {
            topic: self.static_topic().unwrap_or_default(),
            partition: self.partition,
            key,
            value: Some(value),
            headers: self.static_headers(None),
            timestamp: None,
            origin: Origin::stdin(self.partition.is_some()),
        }
    }

    fn route_json<'a>(&'a mut self, rec: &'a [u8], compact: bool) -> Result<Outgoing<'a>, Problem> {
        let text = self
            .fields
            .extract(rec, &mut self.found)
            .map_err(|e| Problem(format!("invalid JSON: {e}")))?;
        let mut missing: Option<String> = None;
        let topic_template = self
            .topic
            .as_ref()
            .ok_or_else(|| Problem("no topic".into()))?;
        if let Some(m) = topic_template.render(text, &self.found, &mut self.topic_buf) {
            missing.get_or_insert_with(|| m.to_string());
        } else {
            self.topic_rendered = true;
        }
        let key = match &self.key {
            Some(t) => {
                let mut s = std::mem::take(&mut self.header_buf);
                if let Some(m) = t.render(text, &self.found, &mut s) {
                    missing.get_or_insert_with(|| m.to_string());
                }
                self.key_buf.clear();
                self.key_buf.extend_from_slice(s.as_bytes());
                self.header_buf = s;
                true
            }
            None => false,
        };
        let mut headers = None;
        if !self.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(self.headers.len() + 1);
            for (name, t) in &self.headers {
                if let Some(m) = t.render(text, &self.found, &mut self.header_buf) {
                    missing.get_or_insert_with(|| m.to_string());
                }
                h = h.insert(Header {
                    key: name,
                    value: Some(self.header_buf.as_str()),
                });
            }
            headers = Some(h);
        }
        let timestamp = match self.timestamp_field {
            Some(id) => {
                match fields::found_text(text, &self.found, id).and_then(timestamp::from_json) {
                    Some(ts) => Some(ts),
                    None => {
                        return Err(Problem(
                            "the timestamp field is missing or not a time".into(),
                        ))
                    }
                }
            }
            None => None,
        };
        let mut topic = self.topic_buf.as_str();
        if let Some(field) = missing {
            let reason = format!("missing field `{field}`");
            match &self.fallback_topic {
                Some(t) => {
                    topic = t;
                    let extra = Header {
                        key: ERROR_HEADER,
                        value: Some(reason.as_str()),
                    };
                    headers = Some(
                        headers
                            .unwrap_or_else(|| OwnedHeaders::new_with_capacity(1))
                            .insert(extra),
                    );
                }
                None => return Err(Problem(reason)),
            }
        }
        let value = if compact {
            compact_into(rec, &mut self.value_buf);
            self.value_buf.as_slice()
        } else {
            rec
        };
        Ok(Outgoing {
            topic,
            partition: self.partition,
            key: key.then_some(self.key_buf.as_slice()),
            value: Some(value),
            headers,
            timestamp,
            origin: Origin::stdin(self.partition.is_some()),
        })
    }

    fn route_envelope<'a>(&'a mut self, rec: &'a [u8]) -> Result<Outgoing<'a>, Problem> {
        let env = Incoming::parse(rec).map_err(Problem)?;
        let timestamp = env.timestamp_ms().map_err(Problem)?;
        let has_key = match env.key {
            Some(raw) => {
                envelope::decode_field(raw, env.key_encoding.as_deref(), "key", &mut self.key_buf)
                    .map_err(Problem)?
            }
            None => false,
        };
        let has_value = match env.value {
            Some(raw) => envelope::decode_field(
                raw,
                env.value_encoding.as_deref(),
                "value",
                &mut self.value_buf,
            )
            .map_err(Problem)?,
            None => {
                return Err(Problem(
                    "envelope has no \"value\" (use null for a tombstone)".into(),
                ))
            }
        };
        let mut headers = None;
        if let Some(map) = &env.headers {
            let mut h = OwnedHeaders::new_with_capacity(map.len());
            let base64 = env.headers_encoding.as_deref() == Some("base64");
            for (name, value) in map {
                let bytes = match value {
                    Some(v) if base64 => {
                        use base64::Engine;
                        Some(
                            base64::engine::general_purpose::STANDARD
                                .decode(v.as_bytes())
                                .map_err(|e| {
                                    Problem(format!(
                                        "envelope header `{name}` is not valid base64: {e}"
                                    ))
                                })?,
                        )
                    }
                    Some(v) => Some(v.as_bytes().to_vec()),
                    None => None,
                };
                h = h.insert(Header {
                    key: name,
                    value: bytes.as_deref(),
                });
            }
            headers = Some(h);
        }
        self.topic_buf.clear();
        match (
            &env.topic,
            self.topic.as_ref().and_then(Template::as_static),
        ) {
            (Some(t), _) => self.topic_buf.push_str(t),
            (None, Some(t)) => self.topic_buf.push_str(t),
            (None, None) => {
                return Err(Problem(
                    "envelope names no topic and no -t was given".into(),
                ))
            }
        }
        self.topic_rendered = true;
        let partition = env.partition.or(self.partition);
        Ok(Outgoing {
            topic: &self.topic_buf,
            partition,
            key: has_key.then_some(self.key_buf.as_slice()),
            value: has_value.then_some(self.value_buf.as_slice()),
            headers,
            timestamp,
            origin: Origin::stdin(partition.is_some()),
        })
    }

    /// A topic records go to, for metadata requests.
    pub fn any_topic(&self) -> &str {
        if self.topic_buf.is_empty() {
            self.static_topic()
                .or(self.fallback_topic.as_deref())
                .unwrap_or("kpipe")
        } else {
            &self.topic_buf
        }
    }

    /// The record as fallback-to-string sends it: raw bytes, with the reason in a header.
    /// `None` when no topic can be named for it.
    pub fn fallback<'a>(&'a mut self, rec: &'a [u8], reason: &str) -> Option<Outgoing<'a>> {
        let topic = if self.topic_rendered {
            Some(self.topic_buf.as_str())
        } else {
            self.fallback_topic
                .as_deref()
                .or_else(|| self.topic.as_ref().and_then(Template::as_static))
        }?;
        Some(Outgoing {
            topic,
            partition: self.partition,
            key: None,
            value: Some(rec),
            headers: self.static_headers(Some((ERROR_HEADER, reason))),
            timestamp: None,
            origin: Origin::stdin(self.partition.is_some()),
        })
    }
}
