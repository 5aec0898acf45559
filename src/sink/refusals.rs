//! A stream's records that the brokers refused for good inside a transaction. Such a refusal
//! dooms the transaction, and an abort sends its records again from the log, where the same
//! record would be refused again (and at EOF it would be left to the next run, which fares no
//! better). Remembered here, it goes to the dead-letter file when it comes round instead, and
//! the stream goes on.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, MutexGuard};

use rdkafka::message::{BorrowedMessage, Message};

use crate::reason::{Kind, Reason};
use crate::wire::Record;

/// The records refused since the last commit, matched by topic, key and value.
#[derive(Default)]
pub(super) struct Refusals {
    /// Whether `list` holds any: read for every record, so the lock is taken only after one.
    any: AtomicBool,
    /// Whether one was added since `take_fresh` last looked.
    fresh: AtomicBool,
    list: Mutex<Vec<Refusal>>,
}

struct Refusal {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    reason: Reason,
}

impl Refusals {
    fn list(&self) -> MutexGuard<'_, Vec<Refusal>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers a stream's record that failed, if it was refused for good.
    pub fn note(&self, msg: &BorrowedMessage, reason: &Reason) {
        if reason.kind() == Kind::Permanent {
            self.add(msg.topic(), msg.key(), msg.payload(), reason.clone());
        }
    }

    /// Remembers a record the brokers refused for good, and why.
    fn add(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, reason: Reason) {
        let mut list = self.list();
        if !list
            .iter()
            .any(|r| r.topic == topic && r.key.as_deref() == key && r.value.as_deref() == value)
        {
            list.push(Refusal {
                topic: topic.to_string(),
                key: key.map(<[u8]>::to_vec),
                value: value.map(<[u8]>::to_vec),
                reason,
            });
            self.fresh.store(true, Relaxed);
        }
        self.any.store(true, Relaxed);
    }

    /// Whether a record was refused that was not known to be, since the last call.
    pub fn take_fresh(&self) -> bool {
        self.fresh.swap(false, Relaxed)
    }

    /// Why a record like `rec` (the same topic, key and value) was refused, if one was.
    pub fn of(&self, rec: &Record) -> Option<Reason> {
        if !self.any.load(Relaxed) {
            return None;
        }
        self.list()
            .iter()
            .find(|r| {
                r.topic == rec.topic
                    && r.key.as_deref() == rec.key
                    && r.value.as_deref() == rec.value
            })
            .map(|r| r.reason.clone())
    }

    /// Forgets them: the log up to the last commit is never sent again.
    pub fn clear(&self) {
        self.list().clear();
        self.any.store(false, Relaxed);
        self.fresh.store(false, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(topic: &'a str, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Record<'a> {
        Record {
            topic,
            key,
            value,
            ..Record::default()
        }
    }

    fn too_large() -> Reason {
        Reason::Kafka {
            code: Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge),
            text: "too large".into(),
        }
    }

    #[test]
    fn nothing_is_refused_until_added() {
        let r = Refusals::default();
        assert!(r.of(&rec("t", None, Some(b"v"))).is_none());
    }

    #[test]
    fn a_record_like_a_refused_one_is_refused_for_the_same_reason() {
        let r = Refusals::default();
        r.add("t", Some(b"k"), Some(b"v"), too_large());
        assert_eq!(r.of(&rec("t", Some(b"k"), Some(b"v"))), Some(too_large()));
    }

    #[test]
    fn another_topic_key_or_value_is_not_refused() {
        let r = Refusals::default();
        r.add("t", Some(b"k"), Some(b"v"), too_large());
        assert!(r.of(&rec("u", Some(b"k"), Some(b"v"))).is_none());
        assert!(r.of(&rec("t", None, Some(b"v"))).is_none());
        assert!(r.of(&rec("t", Some(b"k"), Some(b"w"))).is_none());
        assert!(r.of(&rec("t", Some(b"k"), None)).is_none());
    }

    #[test]
    fn a_commit_forgets_them() {
        let r = Refusals::default();
        r.add("t", None, Some(b"v"), too_large());
        r.add("t", None, Some(b"v"), too_large());
        assert_eq!(r.list().len(), 1, "the same record is kept once");
        assert!(
            r.take_fresh() && !r.take_fresh(),
            "fresh once, until the next"
        );
        r.clear();
        assert!(r.of(&rec("t", None, Some(b"v"))).is_none());
    }
}
