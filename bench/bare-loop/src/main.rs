//! The bare rdkafka loop kpipe is measured against: read stdin lines, produce each with a
//! BaseProducer, poll, flush at EOF. Nothing else: no framing rules, no routing, no ledger.
//!
//! Usage: bare-loop BOOTSTRAP TOPIC [KEY=VALUE ...]   (extra librdkafka properties)
//! Env:   BARE_IDEMPOTENCE=1 (or the flag --idempotence) sets enable.idempotence=true.
//! Exit:  0 when every record was acknowledged, 1 otherwise (failures printed on stderr).

use std::io::{self, BufRead};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counts {}

impl ProducerContext for Counts {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.delivered.fetch_add(1, Relaxed),
            Err((e, _)) => {
                if self.failed.load(Relaxed) < 5 {
                    eprintln!("bare-loop: delivery failed: {e}");
                }
                self.failed.fetch_add(1, Relaxed)
            }
        };
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut idempotence = std::env::var("BARE_IDEMPOTENCE").is_ok_and(|v| v == "1" || v == "true");
    args.retain(|a| {
        if a == "--idempotence" {
            idempotence = true;
            false
        } else {
            true
        }
    });
    if args.len() < 2 {
        eprintln!("usage: bare-loop BOOTSTRAP TOPIC [KEY=VALUE ...]  (BARE_IDEMPOTENCE=1 or --idempotence)");
        std::process::exit(2);
    }
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &args[0])
        .set("batch.size", "1000000")
        .set("linger.ms", "5");
    if idempotence {
        cfg.set("enable.idempotence", "true");
    }
    for kv in &args[2..] {
        let (k, v) = kv.split_once('=').expect("extra arguments are KEY=VALUE");
        cfg.set(k, v);
    }
    let producer: BaseProducer<Counts> = cfg.create_with_context(Counts::default()).expect("producer config");
    let topic = args[1].as_str();

    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::with_capacity(4096);
    let mut read = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).expect("reading stdin") == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        read += 1;
        let mut rec = BaseRecord::<(), [u8]>::to(topic).payload(&line[..]);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    eprintln!("bare-loop: produce failed: {e}");
                    producer.context().failed.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    let flushed = producer.flush(Duration::from_secs(60));
    let c = producer.context();
    let (ok, bad) = (c.delivered.load(Relaxed), c.failed.load(Relaxed));
    let in_flight = producer.in_flight_count();
    if flushed.is_err() || bad > 0 || in_flight > 0 || ok != read {
        eprintln!("bare-loop: read {read}, delivered {ok}, failed {bad}, in flight {in_flight} ({flushed:?})");
        std::process::exit(1);
    }
}
