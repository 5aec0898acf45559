"""kafka-python peer (the client of kpipe's predecessor): send each stdin line, flush, close.

Usage: python kafka_python_producer.py BOOTSTRAP TOPIC
kafka-python's defaults otherwise.
"""
import sys

from kafka import KafkaProducer


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    p = KafkaProducer(bootstrap_servers=bootstrap)
    failed = [0]

    def errback(exc):
        failed[0] += 1
        if failed[0] <= 5:
            print(f"kafka_python_producer: delivery failed: {exc}", file=sys.stderr)

    for line in sys.stdin.buffer:
        if line.endswith(b"\n"):
            line = line[:-1]
        if not line:
            continue
        p.send(topic, line).add_errback(errback)
    p.flush(60)
    p.close(60)
    if failed[0]:
        sys.exit(1)


if __name__ == "__main__":
    main()
