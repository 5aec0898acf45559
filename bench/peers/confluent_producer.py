"""confluent-kafka (Python) peer: a simple produce loop over stdin lines, poll(0), flush at EOF.

Usage: python confluent_producer.py BOOTSTRAP TOPIC [KEY=VALUE ...]
librdkafka's defaults otherwise (confluent-kafka: idempotence off, acks=all, linger.ms=5).
Exit 1 if any delivery failed or something is still queued after the flush.
"""
import sys

from confluent_kafka import Producer


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    conf = {"bootstrap.servers": bootstrap}
    for kv in sys.argv[3:]:
        k, v = kv.split("=", 1)
        conf[k] = v
    failed = [0]

    def report(err, _msg):
        # Only failed deliveries reach this (delivery.report.only.error).
        failed[0] += 1
        if failed[0] <= 5:
            print(f"confluent_producer: delivery failed: {err}", file=sys.stderr)

    conf["delivery.report.only.error"] = True
    conf["on_delivery"] = report
    p = Producer(conf)
    produce, poll = p.produce, p.poll
    for line in sys.stdin.buffer:
        if line.endswith(b"\n"):
            line = line[:-1]
        if not line:
            continue
        while True:
            try:
                produce(topic, line)
                break
            except BufferError:
                poll(0.01)
        poll(0)
    left = p.flush(60)
    if left or failed[0]:
        print(f"confluent_producer: {left} undelivered, {failed[0]} failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
