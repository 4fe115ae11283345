"""An idempotent confluent-kafka producer against brokerd's Kafka listener.

Usage: idempotent_producer.py TOPIC COUNT [PAUSE_MS] (the listener's address in
$BOOTSTRAP). Produces COUNT keyed messages, pausing PAUSE_MS after each (so a test
can restart the broker mid-stream), (key k<i>, value v<i>) with enable.idempotence=true and
acks=all, waits for every delivery report, and exits non-zero on any error. The Rust
test then reads the topic natively and checks each message is there exactly once,
in order.
"""

import os
import sys
import time

from confluent_kafka import Producer

DELIVERY_TIMEOUT_S = 60


def main() -> int:
    topic, count = sys.argv[1], int(sys.argv[2])
    pause_s = (int(sys.argv[3]) if len(sys.argv) > 3 else 0) / 1000
    producer = Producer(
        {
            "bootstrap.servers": os.environ["BOOTSTRAP"],
            "enable.idempotence": True,
            "acks": "all",
            # Several batches in flight per partition, so sequences really interleave.
            "linger.ms": 2,
            "batch.num.messages": 50,
            "max.in.flight.requests.per.connection": 5,
            "message.timeout.ms": DELIVERY_TIMEOUT_S * 1000,
        }
    )
    errors = []
    delivered = [0]

    def report(err, _msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered[0] += 1

    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=f"k{i}", value=f"v{i}", on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        if pause_s:
            time.sleep(pause_s)
    left = producer.flush(DELIVERY_TIMEOUT_S)
    if left or errors or delivered[0] != count:
        print(f"left {left}, delivered {delivered[0]} of {count}, errors {errors[:5]}")
        return 1
    print(f"delivered {delivered[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
