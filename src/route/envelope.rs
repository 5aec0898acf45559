//! Routing `-f envelope` lines (and spool files): each line says where its record goes.

use base64::Engine;

use super::template::Template;
use super::{Bytes, Routed, Router, TopicAt};
use crate::reason::Problem;
use crate::wire::envelope::{self, Incoming};

impl Router {
    pub(super) fn route_envelope(&mut self, rec: &[u8]) -> Result<Routed, Problem> {
        let env = Incoming::parse(rec).map_err(Problem::Envelope)?;
        let timestamp = env.timestamp_ms().map_err(Problem::Envelope)?;
        let key = match env.key {
            Some(raw) => {
                envelope::decode_field(raw, env.key_encoding.as_deref(), "key", &mut self.key_buf)
                    .map_err(Problem::Envelope)?
            }
            None => false,
        };
        let Some(raw_value) = env.value else {
            return Err(Problem::Envelope(
                "envelope has no \"value\" (use null for a tombstone)".into(),
            ));
        };
        let value = envelope::decode_field(
            raw_value,
            env.value_encoding.as_deref(),
            "value",
            &mut self.value_buf,
        )
        .map_err(Problem::Envelope)?;
        self.headers.clear();
        if let Some(map) = &env.headers {
            let base64 = env.headers_encoding.as_deref() == Some("base64");
            for (name, value) in map {
                match value {
                    Some(v) if base64 => {
                        self.scratch_bytes.clear();
                        base64::engine::general_purpose::STANDARD
                            .decode_vec(v.as_bytes(), &mut self.scratch_bytes)
                            .map_err(|e| {
                                Problem::Envelope(format!(
                                    "envelope header `{name}` is not valid base64: {e}"
                                ))
                            })?;
                        self.headers.push(name, Some(&self.scratch_bytes));
                    }
                    Some(v) => self.headers.push(name, Some(v.as_bytes())),
                    None => self.headers.push(name, None),
                }
            }
        }
        self.topic_buf.clear();
        match (
            &env.topic,
            self.topic.as_ref().and_then(Template::as_static),
        ) {
            (Some(t), _) => self.topic_buf.push_str(t),
            (None, Some(t)) => self.topic_buf.push_str(t),
            (None, None) => {
                return Err(Problem::Envelope(
                    "envelope names no topic and no -t was given".into(),
                ))
            }
        }
        if let Err(why) = self.accept_topic(env.topic.is_some()) {
            return Err(Problem::InvalidTopic {
                topic: self.topic_buf.clone(),
                why,
            });
        }
        self.topic_rendered = true;
        Ok(Routed {
            topic: TopicAt::Rendered,
            key: if key { Bytes::KeyBuf } else { Bytes::Absent },
            value: if value {
                Bytes::ValueBuf
            } else {
                Bytes::Absent
            },
            partition: env.partition.or(self.partition),
            timestamp,
        })
    }
}
