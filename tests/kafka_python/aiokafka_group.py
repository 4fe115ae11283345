"""aiokafka (asyncio, its own implementation of the protocol, the group protocol and
the idempotent producer) against brokerd's Kafka listener.

    aiokafka_group.py TOPIC GROUP COUNT

Produces COUNT keyed records with a header each from an idempotent producer
(acks=all), then consumes them with a group of two members (round-robin assignor),
committing what each processed after every poll and before its partitions are
revoked; the first member stops (LeaveGroup) once both have
read, and the second takes over its partitions. Checks that every record was
consumed exactly once with its key, value and header, and prints JSON with the
committed offsets by partition. Every wait has a deadline.
"""

import asyncio
import json
import os
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

from common import BOOTSTRAP, DEADLINE_S, fail


class Member(ConsumerRebalanceListener):
    def __init__(self, topic, group, name, seen):
        self.name, self.seen, self.topic = name, seen, topic
        self.count = 0
        self.pending = {}
        # Counts revocations: records fetched before one are not processed after it
        # (the listener runs while the loop awaits, in the middle of a batch).
        self.revocations = 0
        self.c = AIOKafkaConsumer(
            bootstrap_servers=BOOTSTRAP,
            group_id=group,
            client_id=name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
            partition_assignment_strategy=(RoundRobinPartitionAssignor,),
        )
        self.c.subscribe([topic], listener=self)

    async def on_partitions_revoked(self, revoked):
        # What was read must be committed before another member is given it, and
        # nothing fetched before is processed after.
        self.revocations += 1
        await self.flush(must=True)

    async def on_partitions_assigned(self, assigned):
        pass

    async def flush(self, must):
        if self.pending and await self.commit(dict(self.pending), must):
            self.pending.clear()

    async def commit(self, offsets, must):
        for _ in range(50 if must else 1):
            try:
                await self.c.commit(offsets)
                return True
            except (CommitFailedError, RebalanceInProgressError):
                await asyncio.sleep(0.1)
        if must:
            fail(f"{self.name}: could not commit {offsets}")
        return False

    async def run(self, stop):
        """Reads until `stop` is set, committing after every poll, then leaves."""
        await self.c.start()
        while not stop.is_set():
            polled = await self.c.getmany(timeout_ms=100, max_records=50)
            fetched_at = self.revocations
            for tp, records in polled.items():
                for r in records:
                    if self.revocations != fetched_at:
                        break
                    key = r.key.decode()
                    if key in self.seen:
                        fail(f"{key} consumed twice: {self.seen[key]} and {self.name} at {r.partition}:{r.offset}")
                    i = key.removeprefix("key-")
                    if r.value != f"value-{i}".encode():
                        fail(f"{key} has value {r.value!r}")
                    if list(r.headers) != [("n", i.encode())]:
                        fail(f"{key} has headers {r.headers!r}")
                    self.seen[key] = (self.name, r.partition, r.offset)
                    self.count += 1
                    self.pending[TopicPartition(self.topic, r.partition)] = r.offset + 1
                    # Slow enough that the second member joins before the first
                    # has read everything.
                    await asyncio.sleep(0.01)
            await self.flush(must=False)
        await self.flush(must=True)
        await self.c.stop()


async def produce(topic, count):
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode(),
                                headers=[("n", str(i).encode())])
            for i in range(count)
        ]
        await asyncio.wait_for(asyncio.gather(*sent), DEADLINE_S)
    finally:
        await producer.stop()


async def main():
    topic, group, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    await produce(topic, count)
    seen = {}
    m1 = Member(topic, group, "member-1", seen)
    m2 = Member(topic, group, "member-2", seen)
    stop1, stop2 = asyncio.Event(), asyncio.Event()
    t1 = asyncio.create_task(m1.run(stop1))
    t2 = asyncio.create_task(m2.run(stop2))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not (m1.count and m2.count and len(seen) >= count // 3):
        if loop.time() > deadline:
            fail(f"both members never read: {m1.count} and {m2.count} of {count}")
        await asyncio.sleep(0.05)
    stop1.set()
    await asyncio.wait_for(t1, DEADLINE_S)
    if len(seen) >= count:
        fail("every record was read before member-1 left")
    while len(seen) < count:
        if loop.time() > deadline:
            fail(f"consumed {len(seen)} of {count} before the deadline")
        await asyncio.sleep(0.05)
    stop2.set()
    await asyncio.wait_for(t2, DEADLINE_S)
    checker = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False)
    await checker.start()
    try:
        partitions = {partition for _, partition, _ in seen.values()}
        committed = {str(p): await checker.committed(TopicPartition(topic, p)) for p in sorted(partitions)}
    finally:
        await checker.stop()
    print(json.dumps({"consumed": len(seen), "by_member": {"member-1": m1.count, "member-2": m2.count}, "committed": committed}))


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 2 * DEADLINE_S))
    except (KafkaError, asyncio.TimeoutError) as e:
        fail(f"{type(e).__name__}: {e}")
    sys.stdout.flush()
    os._exit(0)
