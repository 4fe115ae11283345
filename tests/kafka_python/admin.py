"""confluent-kafka's AdminClient against brokerd's Kafka listener.

Usage: admin.py TOPIC PARTITIONS (the listener's address in $BOOTSTRAP). Grows TOPIC
to PARTITIONS with CreatePartitions, then prints its configs from DescribeConfigs as
name=value lines, sorted; exits non-zero on any error.
"""

import os
import sys

from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions

REQUEST_TIMEOUT_S = 30


def main() -> int:
    topic, partitions = sys.argv[1], int(sys.argv[2])
    admin = AdminClient({"bootstrap.servers": os.environ["BOOTSTRAP"]})
    grown = admin.create_partitions(
        [NewPartitions(topic, partitions)], request_timeout=REQUEST_TIMEOUT_S
    )
    for future in grown.values():
        future.result()
    described = admin.describe_configs(
        [ConfigResource("topic", topic)], request_timeout=REQUEST_TIMEOUT_S
    )
    for future in described.values():
        configs = future.result()
        for name in sorted(configs):
            print(f"{name}={configs[name].value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
