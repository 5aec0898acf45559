//! Second chances for records the broker refused with their batch.
//!
//! A broker validates a batch as a whole: one record with a timestamp out of the topic's range,
//! or one too large for the topic, gets every record of its batch refused. Since KIP-467 the
//! broker names the bad records, and librdkafka gives the others
//! `_INVALID_DIFFERENT_RECORD`: those are sent again as they are. Where the broker names no
//! record (a batch too large, a broker older than 2.4), each record is sent again alone, so
//! that a refusal it then meets is its own. A timestamp the broker refuses is replaced by the
//! time kpipe reads now when `--on-error` falls back to strings, as a malformed record's bytes
//! are sent as they are, with the reason in a `kpipe.error` header.

use std::collections::VecDeque;

use rdkafka::types::RDKafkaErrorCode::{self, *};

use crate::message::Origin;
use crate::route::ERROR_HEADER;
use crate::wire::Record;

/// How librdkafka describes a record refused only for another record of its batch.
const INNOCENT: &str = "Failed to append record because it was part of a batch";

/// What to do with a record refused in the broker's answer to its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chance {
    /// Refused for another record of its batch: send it again as it is.
    Again,
    /// Refused with its batch for what may be another record's fault: send it again alone.
    Alone,
    /// Its own timestamp was refused: send it again stamped with the time now.
    Restamp,
    /// Its own fault, or nothing a resend could change: it has failed.
    None,
}

/// The decision for a record refused with `code` (and the broker's words for it, `text`):
/// `alone` says it was already sent alone, `restamp` that `--on-error` falls back to strings.
pub fn chance(code: Option<RDKafkaErrorCode>, text: &str, alone: bool, restamp: bool) -> Chance {
    // A transactional producer reports the batch's code for every record; the broker's words
    // still tell the innocent ones.
    if text.starts_with(INNOCENT) {
        return Chance::Again;
    }
    let timestamp = match code {
        Some(InvalidDifferentRecord) => return Chance::Again,
        Some(InvalidTimestamp) => true,
        // With two bad records or more in a batch, each gets INVALID_RECORD and only the
        // broker's text says what was wrong with it.
        Some(InvalidRecord) => text.contains("imestamp"),
        Some(MessageSizeTooLarge | MessageBatchTooLarge | InvalidMessage) => false,
        _ => return Chance::None,
    };
    if timestamp && restamp {
        Chance::Restamp
    } else if alone {
        Chance::None
    } else {
        Chance::Alone
    }
}

/// A refused record, owned, waiting to be sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
    pub origin: Origin,
}

impl Parked {
    /// Copies a refused record out of its delivery report.
    pub fn of(rec: &Record, origin: Origin) -> Parked {
        Parked {
            topic: rec.topic.to_string(),
            partition: rec.partition,
            key: rec.key.map(<[u8]>::to_vec),
            value: rec.value.map(<[u8]>::to_vec),
            headers: rec
                .headers
                .iter()
                .map(|&(n, v)| (n.to_string(), v.map(<[u8]>::to_vec)))
                .collect(),
            timestamp: rec.timestamp,
            origin,
        }
    }

    /// Stamps the record with `now_ms` instead of its refused timestamp, and says why in a
    /// `kpipe.error` header (replacing one it had).
    pub fn restamp(&mut self, now_ms: i64, why: &str) {
        let was = self
            .timestamp
            .map_or_else(|| "none".to_string(), |t| t.to_string());
        self.timestamp = Some(now_ms);
        self.origin = self.origin.with_timestamp(Some(now_ms));
        self.headers.retain(|(n, _)| n != ERROR_HEADER);
        let text = format!(
            "timestamp {was} refused by the broker ({why}); sent with the time kpipe read it"
        );
        self.headers
            .push((ERROR_HEADER.to_string(), Some(text.into_bytes())));
    }

    /// The record, borrowed for sending.
    pub fn record(&self) -> Record<'_> {
        Record {
            topic: &self.topic,
            partition: self.partition,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect(),
            timestamp: self.timestamp,
        }
    }
}

/// Records waiting for their second chance.
#[derive(Debug, Default)]
pub struct Retries {
    /// Sent again with the next records.
    pub again: Vec<Parked>,
    /// Sent again one at a time, each with nothing else in flight.
    pub alone: VecDeque<Parked>,
}

impl Retries {
    /// How many records wait.
    pub fn len(&self) -> usize {
        self.again.len() + self.alone.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_refused_for_another_goes_again_as_it_is() {
        for alone in [false, true] {
            for restamp in [false, true] {
                assert_eq!(
                    chance(Some(InvalidDifferentRecord), "", alone, restamp),
                    Chance::Again
                );
            }
        }
    }

    #[test]
    fn the_brokers_words_tell_an_innocent_record_whatever_its_code() {
        let words = "Failed to append record because it was part of a batch which had one more more invalid records";
        assert_eq!(
            chance(Some(InvalidRecord), words, false, false),
            Chance::Again
        );
        assert_eq!(
            chance(Some(InvalidRecord), words, true, false),
            Chance::Again
        );
    }

    #[test]
    fn a_refused_timestamp_is_replaced_when_on_error_falls_back_to_strings() {
        assert_eq!(
            chance(Some(InvalidTimestamp), "", false, true),
            Chance::Restamp
        );
        assert_eq!(
            chance(Some(InvalidTimestamp), "", true, true),
            Chance::Restamp
        );
        let many = "Timestamp 32503680000000 of message with offset 0 is out of range";
        assert_eq!(
            chance(Some(InvalidRecord), many, false, true),
            Chance::Restamp
        );
    }

    #[test]
    fn without_a_fallback_a_refused_timestamp_is_tried_alone_once() {
        assert_eq!(
            chance(Some(InvalidTimestamp), "", false, false),
            Chance::Alone
        );
        assert_eq!(
            chance(Some(InvalidTimestamp), "", true, false),
            Chance::None
        );
    }

    #[test]
    fn a_batch_refused_whole_is_tried_record_by_record_once() {
        for code in [
            MessageSizeTooLarge,
            MessageBatchTooLarge,
            InvalidMessage,
            InvalidRecord,
        ] {
            assert_eq!(
                chance(Some(code), "", false, true),
                Chance::Alone,
                "{code:?}"
            );
            assert_eq!(chance(Some(code), "", true, true), Chance::None, "{code:?}");
        }
    }

    #[test]
    fn other_failures_get_no_second_chance_here() {
        for code in [
            Some(TopicAuthorizationFailed),
            Some(MessageTimedOut),
            Some(UnknownTopicOrPartition),
            Some(PurgeQueue),
            None,
        ] {
            assert_eq!(chance(code, "", false, true), Chance::None, "{code:?}");
        }
    }

    #[test]
    fn a_restamped_record_says_what_it_had() {
        let rec = Record {
            topic: "t",
            key: Some(b"k"),
            value: Some(b"v"),
            headers: vec![("h", Some(b"1")), (ERROR_HEADER, Some(b"old"))],
            timestamp: Some(32_503_680_000_000),
            ..Record::default()
        };
        let mut p = Parked::of(&rec, Origin::stdin(None));
        assert_eq!(p.record(), rec);
        p.restamp(1_700_000_000_000, "out of range");
        let r = p.record();
        assert_eq!(r.timestamp, Some(1_700_000_000_000));
        assert_eq!(p.origin.timestamp(), Some(1_700_000_000_000));
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.headers[0], ("h", Some(&b"1"[..])));
        let (name, text) = r.headers[1];
        assert_eq!(name, ERROR_HEADER);
        let text = String::from_utf8_lossy(text.unwrap_or_default()).into_owned();
        assert!(
            text.contains("32503680000000") && text.contains("out of range"),
            "{text}"
        );
    }
}
