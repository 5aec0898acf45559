//! One record into librdkafka's queue, through its C API.
//!
//! rdkafka's `BaseProducer::send` names the topic on every call: a `CString` allocated per record
//! and a topic lookup by name (a lock and string compares) inside librdkafka. kpipe keeps a topic
//! handle per topic instead and hands records over with `rd_kafka_produceva`.

use std::collections::HashMap;
use std::ffi::{c_void, CString};

use rdkafka::error::RDKafkaErrorCode;
use rdkafka_sys::bindings as sys;
use rdkafka_sys::types::{RDKafka, RDKafkaTopic};

use crate::wire::Record;

/// Topic handles by name, for one producer. Must be dropped before the producer.
#[derive(Default)]
pub struct Topics {
    handles: HashMap<Box<str>, Handle>,
    /// The previous record's topic and its handle: most runs have one
    /// topic. The name's buffer is reused, so a change of topic allocates nothing.
    last_name: String,
    last: Option<*mut RDKafkaTopic>,
}

/// An owned `rd_kafka_topic_t`.
struct Handle(*mut RDKafkaTopic);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from rd_kafka_topic_new and is destroyed once, here, while
        // its producer is alive (Topics is dropped before the producer).
        unsafe { sys::rd_kafka_topic_destroy(self.0) }
    }
}

impl Topics {
    /// How many topics have a handle.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The topic the last record went to, if any.
    pub fn last(&self) -> Option<&str> {
        Some(self.last_name.as_str()).filter(|n| !n.is_empty())
    }

    /// The handle for `topic`, made on first use; `None` if librdkafka refuses the name.
    fn get(&mut self, rk: *mut RDKafka, topic: &str) -> Option<*mut RDKafkaTopic> {
        if let Some(rkt) = self.last.filter(|_| self.last_name == topic) {
            return Some(rkt);
        }
        let rkt = match self.handles.get(topic) {
            Some(h) => h.0,
            None => {
                if self.handles.len() >= crate::wire::topic::REMEMBERED {
                    self.last = None;
                    self.handles.clear();
                }
                let name = CString::new(topic).ok()?;
                // SAFETY: rk is a live producer; a NULL conf takes the default topic config.
                let rkt =
                    unsafe { sys::rd_kafka_topic_new(rk, name.as_ptr(), std::ptr::null_mut()) };
                if rkt.is_null() {
                    return None;
                }
                self.handles.insert(topic.into(), Handle(rkt));
                rkt
            }
        };
        self.last_name.clear();
        self.last_name.push_str(topic);
        self.last = Some(rkt);
        Some(rkt)
    }
}

/// Queues one record (librdkafka copies key, value and headers). `stamp` is the timestamp for a
/// record without its own, or 0 to let librdkafka read the clock.
pub fn produce(
    rk: *mut RDKafka,
    topics: &mut Topics,
    rec: &Record,
    opaque: usize,
    stamp: i64,
) -> Result<(), RDKafkaErrorCode> {
    let Some(rkt) = topics.get(rk, rec.topic) else {
        return Err(RDKafkaErrorCode::InvalidTopic);
    };
    let headers = if rec.headers.is_empty() {
        std::ptr::null_mut()
    } else {
        new_headers(rec)?
    };
    let mem = |b: Option<&[u8]>| sys::rd_kafka_vu_s__bindgen_ty_1 {
        mem: sys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
            ptr: b.map_or(std::ptr::null_mut(), |b| b.as_ptr() as *mut c_void),
            size: b.map_or(0, <[u8]>::len),
        },
    };
    let vu = |vtype, u| sys::rd_kafka_vu_t { vtype, u };
    use sys::rd_kafka_vtype_t::*;
    use sys::rd_kafka_vu_s__bindgen_ty_1 as U;
    let vus = [
        vu(RD_KAFKA_VTYPE_RKT, U { rkt }),
        vu(
            RD_KAFKA_VTYPE_PARTITION,
            U {
                i32_: rec.partition.unwrap_or(-1),
            },
        ),
        vu(
            RD_KAFKA_VTYPE_MSGFLAGS,
            U {
                i: sys::RD_KAFKA_MSG_F_COPY,
            },
        ),
        vu(RD_KAFKA_VTYPE_VALUE, mem(rec.value)),
        vu(RD_KAFKA_VTYPE_KEY, mem(rec.key)),
        vu(
            RD_KAFKA_VTYPE_OPAQUE,
            U {
                ptr: opaque as *mut c_void,
            },
        ),
        vu(
            RD_KAFKA_VTYPE_TIMESTAMP,
            U {
                i64_: rec.timestamp.unwrap_or(stamp),
            },
        ),
        vu(RD_KAFKA_VTYPE_HEADERS, U { headers }),
    ];
    // SAFETY: every pointer in vus lives until the call returns; librdkafka copies the bytes
    // (F_COPY) and takes the headers only on success.
    let error = unsafe { sys::rd_kafka_produceva(rk, vus.as_ptr(), vus.len()) };
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-NULL error is ours to read and destroy; on failure the headers are still
    // ours too.
    unsafe {
        let code = sys::rd_kafka_error_code(error);
        sys::rd_kafka_error_destroy(error);
        if !headers.is_null() {
            sys::rd_kafka_headers_destroy(headers);
        }
        Err(code.into())
    }
}

/// The record's headers as a librdkafka list, for produceva to take over.
fn new_headers(rec: &Record) -> Result<*mut sys::rd_kafka_headers_t, RDKafkaErrorCode> {
    // SAFETY: a fresh list, filled from slices that live through each call (librdkafka copies
    // names and values); destroyed here if an add fails.
    unsafe {
        let h = sys::rd_kafka_headers_new(rec.headers.len());
        for &(name, value) in &rec.headers {
            let err = sys::rd_kafka_header_add(
                h,
                name.as_ptr().cast(),
                name.len() as isize,
                value.map_or(std::ptr::null(), |v| v.as_ptr().cast()),
                value.map_or(0, |v| v.len() as isize),
            );
            if err != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                sys::rd_kafka_headers_destroy(h);
                return Err(err.into());
            }
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::producer::{BaseProducer, Producer};
    use rdkafka::ClientConfig;

    /// A producer that never reaches a broker: records stay queued, which is all these need.
    fn producer() -> BaseProducer {
        ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("queue.buffering.max.messages", "2")
            .create()
            .expect("a producer with a valid configuration")
    }

    #[test]
    fn a_topic_keeps_its_handle_and_others_get_their_own() {
        let p = producer();
        let rk = p.client().native_ptr();
        let mut topics = Topics::default();
        let a = topics.get(rk, "a");
        assert!(a.is_some());
        let b = topics.get(rk, "b");
        assert_ne!(a, b);
        assert_eq!(topics.get(rk, "a"), a);
        assert_eq!(topics.handles.len(), 2);
        assert_eq!(topics.get(rk, "a\0b"), None, "a NUL cannot name a topic");
    }

    #[test]
    fn a_record_with_headers_is_queued_and_a_full_queue_says_so() {
        // The queue takes two records, so the third finds it full: the first two were queued.
        let p = producer();
        let rk = p.client().native_ptr();
        let mut topics = Topics::default();
        let rec = Record {
            topic: "t",
            key: Some(b"k"),
            value: Some(b"v"),
            headers: vec![("h", Some(b"1")), ("null", None)],
            ..Record::default()
        };
        assert_eq!(produce(rk, &mut topics, &rec, 7, 1_700_000_000_000), Ok(()));
        assert_eq!(produce(rk, &mut topics, &rec, 8, 0), Ok(()));
        assert_eq!(
            produce(rk, &mut topics, &rec, 9, 0),
            Err(RDKafkaErrorCode::QueueFull)
        );
        // (Not `in_flight_count`: it also counts librdkafka's error events about the broker that
        // is not there, so it depends on timing.)
        p.purge(rdkafka::producer::PurgeConfig::default().queue());
        drop(topics);
    }
}
