"""What every group script here shares: the listener's address, the deadline each
wait gets, and how a script fails."""

import os
import sys

BOOTSTRAP = os.environ["BOOTSTRAP"]
DEADLINE_S = 60


def fail(why):
    print(f"FAILED: {why}", file=sys.stderr)
    sys.stderr.flush()
    # Not sys.exit: the interpreter would wait on client threads (librdkafka's,
    # kafka-python's) of consumers still open.
    os._exit(1)
