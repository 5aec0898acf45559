//! Delivery reports inside a transaction: nothing counts until the commit, and a failure means
//! the transaction must be aborted (the records are still in the log or the input). A record
//! that the brokers refuse for good is the exception where a log keeps the input: sent again
//! from it after the abort, it would be refused again (and a stream's, at EOF, be left to the
//! next run, which fares no better). It goes to the dead-letter file when refused, once, and is
//! passed over when resent.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, MutexGuard};

use rdkafka::message::{DeliveryResult, Message};

use super::kafka::{Context, BOOKKEEPING};
use super::retry::{self, Chance};
use crate::message::Origin;
use crate::reason::{Kind, Reason};
use crate::wire::Record;

/// What the delivery reports of the open transaction said.
#[derive(Default)]
pub(super) struct TxnReports {
    pub acked: AtomicU64,
    failure: Mutex<Option<Reason>>,
    /// Why the last transaction that ended was failed, if it was.
    ended_for: Mutex<Option<Reason>>,
    /// `--atomic` without a dead-letter file: a record the producer refuses fails the
    /// transaction, not just itself.
    pub all_or_nothing: bool,
    /// Records refused for good since the last commit.
    pub refused: Refusals,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TxnReports {
    /// Reports for a run where a refused record fails the transaction (`all_or_nothing`) or not.
    pub fn new(all_or_nothing: bool) -> TxnReports {
        TxnReports {
            all_or_nothing,
            ..TxnReports::default()
        }
    }

    /// Takes one delivery report.
    pub fn report(&self, cx: &Context, result: &DeliveryResult<'_>, opaque: usize) {
        match result {
            Ok(_) if opaque != BOOKKEEPING => {
                self.acked.fetch_add(1, Relaxed);
            }
            Ok(_) => {}
            Err((e, msg)) => {
                let reason = cx.reason(e, msg.topic());
                let kept = !self.all_or_nothing && opaque != BOOKKEEPING;
                let words = super::kafka::broker_words(msg).unwrap_or_default();
                let origin = Origin(opaque);
                let chance =
                    retry::chance(e.rdkafka_error_code(), &words, origin.is_alone(), false);
                if kept && reason.kind() == Kind::Permanent {
                    match chance {
                        // Refused only for another record of its batch: sent again from the log.
                        Chance::Again => {}
                        // Refused with a batch that named no record: the log is sent again one
                        // record at a time, so that the refusal it meets is its own.
                        Chance::Alone => self.refused.ask_alone(),
                        Chance::Restamp | Chance::None => {
                            cx.record_failure(msg, origin, e, &words);
                            self.refused
                                .add(msg.topic(), msg.key(), msg.payload(), false);
                        }
                    }
                }
                self.fail(reason);
            }
        }
    }

    /// Records why the transaction must be aborted; the first reason is kept.
    pub fn fail(&self, reason: Reason) {
        locked(&self.failure).get_or_insert(reason);
    }

    /// Why the open transaction must be aborted, if it must.
    pub fn failure(&self) -> Option<Reason> {
        locked(&self.failure).clone()
    }

    /// Forgets the failure, for the next transaction (`ended_for` keeps it until that begins).
    pub fn clear_failure(&self) {
        if let Some(f) = locked(&self.failure).take() {
            *locked(&self.ended_for) = Some(f);
        }
    }

    /// A transaction begins: why the one before ended is history.
    pub fn began(&self) {
        *locked(&self.ended_for) = None;
    }

    /// Why the transaction that ended last was failed, if it was.
    pub fn ended_for(&self) -> Option<Reason> {
        locked(&self.ended_for).clone()
    }
}

/// The records refused since the last commit, matched by topic, key and value, each with how
/// many like it were refused: when the log is sent again, that many are passed over. (Had a
/// like record not been sent before the abort, it is sent, and refused in its turn.)
#[derive(Default)]
pub(super) struct Refusals {
    /// Whether `list` holds any: read for every record, so the lock is taken only after one.
    any: AtomicBool,
    /// Whether one was added since `take_fresh` last looked.
    fresh: AtomicBool,
    list: Mutex<Vec<Refusal>>,
    /// A batch was refused with no record named: until the next commit, records are sent one
    /// at a time.
    alone: AtomicBool,
}

struct Refusal {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// How many records like it were refused, and how many came round since the log was rewound.
    refused: usize,
    seen: usize,
}

impl Refusal {
    fn is(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) -> bool {
        self.topic == topic && self.key.as_deref() == key && self.value.as_deref() == value
    }
}

impl Refusals {
    /// Counts a record refused for good (it is in the dead-letter file): in a delivery report
    /// (the transaction fails, and the log is sent again) or as it was handed over (it goes on
    /// without it). `pass_over` counted it as come round if like records were known when it was
    /// sent; if not, one refused as it was handed over is the first come round in this pass.
    fn add(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, handed_over: bool) {
        let mut list = locked(&self.list);
        match list.iter_mut().find(|r| r.is(topic, key, value)) {
            Some(r) => r.refused += 1,
            None => list.push(Refusal {
                topic: topic.to_string(),
                key: key.map(<[u8]>::to_vec),
                value: value.map(<[u8]>::to_vec),
                refused: 1,
                seen: usize::from(handed_over),
            }),
        }
        self.any.store(true, Relaxed);
        if !handed_over {
            self.fresh.store(true, Relaxed);
        }
    }

    /// Counts a record librdkafka refused for good as it was handed over: should the transaction
    /// abort for another reason, it is passed over when the log is sent again, not dead-lettered
    /// twice.
    pub fn add_handed_over(&self, rec: &Record) {
        self.add(rec.topic, rec.key, rec.value, true);
    }

    /// Whether `rec`, sent again from the log, is one that was refused (and dead-lettered).
    pub fn pass_over(&self, rec: &Record) -> bool {
        if !self.any.load(Relaxed) {
            return false;
        }
        let mut list = locked(&self.list);
        let Some(r) = list
            .iter_mut()
            .find(|r| r.is(rec.topic, rec.key, rec.value))
        else {
            return false;
        };
        r.seen += 1;
        r.seen <= r.refused
    }

    /// The log is sent again from the last commit: the count of records come round starts over.
    pub fn rewound(&self) {
        locked(&self.list).iter_mut().for_each(|r| r.seen = 0);
    }

    /// A batch was refused with no record named: records go one at a time from now until the
    /// next commit (this counts as a fresh refusal, so the log is sent again at once).
    pub fn ask_alone(&self) {
        self.alone.store(true, Relaxed);
        self.fresh.store(true, Relaxed);
    }

    /// Whether records go one at a time, each alone in flight.
    pub fn alone(&self) -> bool {
        self.alone.load(Relaxed)
    }

    /// Whether a record was refused (or records were asked to go alone) since the last call.
    pub fn take_fresh(&self) -> bool {
        self.fresh.swap(false, Relaxed)
    }

    /// Forgets them: the log up to the last commit is never sent again.
    pub fn clear(&self) {
        locked(&self.list).clear();
        self.any.store(false, Relaxed);
        self.fresh.store(false, Relaxed);
        self.alone.store(false, Relaxed);
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

    #[test]
    fn records_go_alone_from_a_refusal_that_named_none_until_the_commit() {
        let r = Refusals::default();
        assert!(!r.alone());
        r.ask_alone();
        assert!(
            r.alone() && r.take_fresh(),
            "alone, and the log is sent again"
        );
        r.rewound();
        assert!(r.alone(), "still, for the pass that finds the bad record");
        r.clear();
        assert!(!r.alone());
    }

    #[test]
    fn nothing_is_passed_over_until_refused() {
        let r = Refusals::default();
        assert!(!r.pass_over(&rec("t", None, Some(b"v"))));
        assert!(!r.take_fresh());
    }

    #[test]
    fn a_refused_record_is_passed_over_each_time_the_log_comes_round() {
        let r = Refusals::default();
        r.add("t", Some(b"k"), Some(b"v"), false);
        assert!(
            r.take_fresh() && !r.take_fresh(),
            "fresh once, until the next"
        );
        for _ in 0..3 {
            r.rewound();
            assert!(r.pass_over(&rec("t", Some(b"k"), Some(b"v"))));
        }
    }

    #[test]
    fn as_many_like_records_are_passed_over_as_were_refused() {
        let r = Refusals::default();
        r.add("t", None, Some(b"v"), false);
        r.rewound();
        let like = rec("t", None, Some(b"v"));
        assert!(r.pass_over(&like));
        assert!(
            !r.pass_over(&like),
            "the second was not refused: it is sent"
        );
        r.add("t", None, Some(b"v"), false);
        r.rewound();
        assert!(r.pass_over(&like) && r.pass_over(&like) && !r.pass_over(&like));
    }

    #[test]
    fn another_topic_key_or_value_is_sent() {
        let r = Refusals::default();
        r.add("t", Some(b"k"), Some(b"v"), false);
        r.rewound();
        assert!(!r.pass_over(&rec("u", Some(b"k"), Some(b"v"))));
        assert!(!r.pass_over(&rec("t", None, Some(b"v"))));
        assert!(!r.pass_over(&rec("t", Some(b"k"), Some(b"w"))));
        assert!(!r.pass_over(&rec("t", Some(b"k"), None)));
    }

    #[test]
    fn a_commit_forgets_them() {
        let r = Refusals::default();
        r.add("t", None, Some(b"v"), false);
        r.clear();
        assert!(!r.take_fresh());
        assert!(!r.pass_over(&rec("t", None, Some(b"v"))));
    }

    #[test]
    fn a_record_refused_as_it_was_handed_over_leaves_its_pass_to_like_records() {
        let r = Refusals::default();
        let like = rec("t", None, Some(b"v"));
        r.add_handed_over(&like);
        assert!(
            !r.take_fresh(),
            "the transaction goes on: nothing to resend"
        );
        assert!(
            !r.pass_over(&like),
            "a like record later in the pass is sent"
        );
        r.add_handed_over(&like); // and refused in its turn
        assert!(!r.pass_over(&like), "and the third");
        r.rewound();
        assert!(
            r.pass_over(&like) && r.pass_over(&like),
            "after an abort, the two refused are passed over"
        );
        assert!(!r.pass_over(&like));
    }

    #[test]
    fn a_refusal_handed_over_keeps_a_reported_one_fresh() {
        let r = Refusals::default();
        r.add("t", None, Some(b"v"), false);
        r.add_handed_over(&rec("u", None, Some(b"v")));
        assert!(r.take_fresh());
    }
}
