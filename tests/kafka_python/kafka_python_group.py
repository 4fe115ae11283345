"""kafka-python (a pure-Python client, its own implementation of the protocol and of
the group's assignors) against brokerd's Kafka listener.

    kafka_python_group.py TOPIC GROUP COUNT

Produces COUNT keyed records with acks=all, then consumes them with a group of two
members (range assignor), committing what each processed synchronously; a commit
refused during a rebalance is retried, at the latest when the partitions are
revoked. The first member closes (LeaveGroup) once both have read; the second
takes over. Checks that every record was consumed exactly once and prints JSON with
the committed offsets by partition. Every wait has a deadline.
"""

import json
import os
import sys
import threading
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata

from common import BOOTSTRAP, DEADLINE_S, fail


class Member(ConsumerRebalanceListener):
    def __init__(self, topic, group, name, seen):
        self.name, self.seen, self.topic = name, seen, topic
        self.pending = {}
        self.count = 0
        self.c = KafkaConsumer(
            bootstrap_servers=BOOTSTRAP,
            group_id=group,
            client_id=name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        self.c.subscribe([topic], listener=self)

    def on_partitions_revoked(self, revoked):
        self.commit(must=True)

    def on_partitions_assigned(self, assigned):
        pass

    def commit(self, must=False):
        if not self.pending:
            return
        offsets = {TopicPartition(self.topic, p): OffsetAndMetadata(o, None) for p, o in self.pending.items()}
        for _ in range(50 if must else 1):
            try:
                self.c.commit(offsets)
                self.pending.clear()
                return
            except (CommitFailedError, RebalanceInProgressError):
                time.sleep(0.1)
        if must:
            fail(f"{self.name}: could not commit {offsets} before giving them up")

    def take(self):
        polled = self.c.poll(timeout_ms=100, max_records=50)
        for tp, records in polled.items():
            for r in records:
                key = r.key.decode()
                with LOCK:
                    if key in self.seen:
                        fail(f"{key} consumed twice: {self.seen[key]} and {self.name} at {r.partition}:{r.offset}")
                    self.seen[key] = (self.name, r.partition, r.offset)
                self.count += 1
                self.pending[r.partition] = r.offset + 1
                # Slow enough that the second member joins before the first has
                # read everything.
                time.sleep(0.01)
        self.commit()

    def run(self, stop):
        """Polls until `stop` is set (kafka-python's poll blocks through a rebalance,
        so each member needs its own thread), then commits and leaves."""
        try:
            while not stop.is_set():
                self.take()
            self.commit(must=True)
            self.c.close()
        except KafkaError as e:
            fail(f"{self.name}: {type(e).__name__}: {e}")


LOCK = threading.Lock()


def main():
    topic, group, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    for i in range(count):
        producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode())
    producer.flush(DEADLINE_S)
    producer.close()
    seen = {}
    m1 = Member(topic, group, "member-1", seen)
    m2 = Member(topic, group, "member-2", seen)
    stop1, stop2 = threading.Event(), threading.Event()
    t1 = threading.Thread(target=m1.run, args=(stop1,))
    t2 = threading.Thread(target=m2.run, args=(stop2,))
    t1.start()
    t2.start()
    deadline = time.time() + DEADLINE_S
    while not stop1.is_set():
        if time.time() > deadline:
            fail(f"member-1 never left: consumed {len(seen)} of {count}")
        with LOCK:
            both = m1.count and m2.count and len(seen) >= count // 3
        if both:
            stop1.set()
        time.sleep(0.05)
    t1.join(DEADLINE_S)
    if len(seen) >= count:
        fail("every record was read before member-1 left")
    while len(seen) < count:
        if time.time() > deadline:
            fail(f"consumed {len(seen)} of {count} before the deadline")
        time.sleep(0.05)
    stop2.set()
    t2.join(DEADLINE_S)
    checker = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False)
    partitions = checker.partitions_for_topic(topic) or set()
    committed = {str(p): checker.committed(TopicPartition(topic, p)) for p in sorted(partitions)}
    checker.close()
    print(json.dumps({"consumed": len(seen), "by_member": {"member-1": m1.count, "member-2": m2.count}, "committed": committed}))


if __name__ == "__main__":
    try:
        main()
    except KafkaError as e:
        fail(f"{type(e).__name__}: {e}")
    sys.stdout.flush()
    os._exit(0)
