"""A confluent-kafka (librdkafka) consumer group against brokerd's Kafka listener.

    consumer_group.py rebalance TOPIC GROUP STRATEGY COUNT
        Produces COUNT keyed records (acks=all), then consumes them with a group of
        two members using the STRATEGY assignor (range, roundrobin,
        cooperative-sticky), committing each record synchronously after it is
        processed (a commit refused while a rebalance completes is retried, at the
        latest when its partition is revoked). Once the first member has read a share it closes (LeaveGroup);
        the second takes over its partitions. Checks that every record was consumed
        exactly once and that both members had partitions; prints JSON with the
        committed offsets by partition.

    consumer_group.py resume TOPIC GROUP STRATEGY COUNT
        After a restart: a new member of GROUP starts from the committed offsets,
        so it reads nothing already consumed; COUNT new records are produced and it
        reads exactly those. Prints JSON with what it read.

    consumer_group.py static TOPIC GROUP STRATEGY COUNT
        Static membership (group.instance.id): produces COUNT records; two static
        members read them until each has read some; then the first closes (a static
        member sends no LeaveGroup) and a new consumer with its instance id takes
        its place. Checks that the new one is given exactly the first member's
        partitions, that the second member saw no rebalance (no revoke, no assign)
        after the first closed, and that every record was consumed exactly once.

Every wait has a deadline; any failure exits non-zero with the reason.
"""

import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from common import BOOTSTRAP, DEADLINE_S, fail


def produce(topic, count, prefix):
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5})
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    for i in range(count):
        producer.produce(topic, key=f"{prefix}-{i}", value=f"value-{prefix}-{i}", on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(DEADLINE_S)
    if left or errors:
        fail(f"{left} records unsent, errors: {errors[:5]}")


class Member:
    """One consumer of the group, committing each record after it is processed.

    A commit the coordinator refuses while a rebalance completes
    (REBALANCE_IN_PROGRESS, as Kafka answers too) stays pending and is retried with
    the next record, and at the latest when the partition is revoked, while the
    member still owns it: so no record is read twice.
    """

    def __init__(self, group, strategy, name, log, seen, owner, instance=None):
        self.name, self.log, self.seen, self.owner = name, log, seen, owner
        self.pending = {}
        self.count = 0
        config = {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": group,
            "client.id": name,
            "partition.assignment.strategy": strategy,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
        if instance is not None:
            config["group.instance.id"] = instance
        self.c = Consumer(config)

    def subscribe(self, topic):
        def on_assign(c, partitions):
            self.log.append((self.name, "assign", sorted(p.partition for p in partitions)))

        def on_revoke(c, partitions):
            self.log.append((self.name, "revoke", sorted(p.partition for p in partitions)))
            revoked = {p.partition for p in partitions}
            self.commit_pending(only=revoked, must=True)

        self.c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        self.topic = topic

    def commit_pending(self, only=None, must=False):
        offsets = [
            TopicPartition(self.topic, p, o) for p, o in self.pending.items() if only is None or p in only
        ]
        if not offsets:
            return
        for _ in range(50 if must else 1):
            try:
                self.c.commit(offsets=offsets, asynchronous=False)
                for tp in offsets:
                    if self.pending.get(tp.partition) == tp.offset:
                        del self.pending[tp.partition]
                return
            except KafkaException as e:
                if e.args[0].code() != KafkaError.REBALANCE_IN_PROGRESS:
                    fail(f"{self.name}: commit failed: {e}")
                time.sleep(0.1)
        if must:
            fail(f"{self.name}: could not commit {offsets} before giving the partitions up")

    def take(self):
        """Polls once; records and commits what it got."""
        msg = self.c.poll(0.1)
        if msg is None:
            return
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                return
            fail(f"{self.name}: {msg.error()}")
        key = msg.key().decode()
        if key in self.seen:
            fail(
                f"{key} consumed twice: by {self.owner[key]} at {self.seen[key]}, "
                f"again by {self.name} at {msg.partition()}:{msg.offset()}"
            )
        self.seen[key] = (msg.partition(), msg.offset())
        self.owner[key] = self.name
        self.count += 1
        self.pending[msg.partition()] = msg.offset() + 1
        self.commit_pending()

    def close(self):
        self.commit_pending(must=True)
        self.c.close()


def rebalance(topic, group, strategy, count):
    started = time.time()
    produce(topic, count, "first")
    timings = {"produced_s": round(time.time() - started, 2)}
    log, seen, owner = [], {}, {}
    m1 = Member(group, strategy, "member-1", log, seen, owner)
    m2 = Member(group, strategy, "member-2", log, seen, owner)
    m1.subscribe(topic)
    m2.subscribe(topic)
    first_open = True
    deadline = time.time() + DEADLINE_S
    while len(seen) < count:
        if time.time() > deadline:
            fail(f"consumed {len(seen)} of {count} before the deadline; log {log}")
        if first_open:
            m1.take()
        m2.take()
        # The first member leaves once both have read and a third is consumed.
        if first_open and len(seen) >= count // 3 and m1.count and m2.count:
            timings["first_left_s"] = round(time.time() - started, 2)
            m1.close()
            first_open = False
    if first_open:
        fail(f"every record was read before member-1 left; log {log}")
    m2.commit_pending(must=True)
    timings["consumed_s"] = round(time.time() - started, 2)
    partitions = [TopicPartition(topic, p) for p in range(partitions_of(m2.c, topic))]
    committed = m2.c.committed(partitions, timeout=10)
    m2.c.close()
    print(
        json.dumps(
            {
                "consumed": len(seen),
                "by_member": {"member-1": m1.count, "member-2": m2.count},
                "committed": {str(tp.partition): tp.offset for tp in committed},
                "log": log,
                "timings": timings,
            }
        )
    )


def static(topic, group, strategy, count):
    produce(topic, count, "first")
    log, seen, owner = [], {}, {}
    m1 = Member(group, strategy, "member-1", log, seen, owner, instance="instance-1")
    m2 = Member(group, strategy, "member-2", log, seen, owner, instance="instance-2")
    m1.subscribe(topic)
    m2.subscribe(topic)
    deadline = time.time() + DEADLINE_S
    while not (m1.count and m2.count and len(seen) >= count // 3):
        if time.time() > deadline:
            fail(f"both members had not read before the deadline; log {log}")
        m1.take()
        m2.take()
    if len(seen) == count:
        fail(f"every record was read before member-1 closed; log {log}")
    held = [entry[2] for entry in log if entry[0] == "member-1" and entry[1] == "assign"][-1]
    m1.close()
    closed_at = len(log)
    m1b = Member(group, strategy, "member-1b", log, seen, owner, instance="instance-1")
    m1b.subscribe(topic)
    deadline = time.time() + DEADLINE_S
    while len(seen) < count:
        if time.time() > deadline:
            fail(f"consumed {len(seen)} of {count} before the deadline; log {log}")
        m1b.take()
        m2.take()
    after = log[closed_at:]
    if any(entry[0] == "member-2" for entry in after):
        fail(f"member-2 rebalanced when the static member-1 restarted: {after}")
    if after != [("member-1b", "assign", held)]:
        fail(f"member-1b was not given member-1's partitions {held}: {after}")
    m1b.commit_pending(must=True)
    m2.commit_pending(must=True)
    partitions = [TopicPartition(topic, p) for p in range(partitions_of(m2.c, topic))]
    committed = m2.c.committed(partitions, timeout=10)
    m1b.close()
    m2.close()
    print(
        json.dumps(
            {
                "consumed": len(seen),
                "by_member": {"member-1": m1.count + m1b.count, "member-2": m2.count},
                "committed": {str(tp.partition): tp.offset for tp in committed},
                "held": held,
                "log": log,
            }
        )
    )


def partitions_of(c, topic):
    metadata = c.list_topics(topic, timeout=10)
    return len(metadata.topics[topic].partitions)


def resume(topic, group, strategy, count):
    log, seen, owner = [], {}, {}
    m = Member(group, strategy, "member-3", log, seen, owner)
    m.subscribe(topic)
    # Wait for the assignment, then see that nothing already consumed comes back.
    deadline = time.time() + DEADLINE_S
    while not any(entry[1] == "assign" and entry[2] for entry in log):
        if time.time() > deadline:
            fail(f"no assignment before the deadline; log {log}")
        m.take()
    quiet_until = time.time() + 2
    while time.time() < quiet_until:
        m.take()
    if seen:
        fail(f"read {sorted(seen)[:5]}..., committed before the restart")
    produce(topic, count, "second")
    deadline = time.time() + DEADLINE_S
    while len(seen) < count:
        if time.time() > deadline:
            fail(f"read {len(seen)} of {count} new records before the deadline")
        m.take()
    if any(not key.startswith("second-") for key in seen):
        fail(f"read old records: {sorted(seen)[:5]}")
    m.close()
    print(json.dumps({"consumed": len(seen), "log": log}))


def main():
    mode, topic, group, strategy, count = sys.argv[1:6]
    try:
        {"rebalance": rebalance, "resume": resume, "static": static}[mode](topic, group, strategy, int(count))
    except Exception as e:  # noqa: BLE001 - any failure is the test's failure
        import traceback

        traceback.print_exc()
        fail(f"{type(e).__name__}: {e}")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
