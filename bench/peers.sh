#!/usr/bin/env bash
# Runs the same broker-bench workloads against brokerd, NATS JetStream, Redis
# Streams and RabbitMQ on this machine (all on loopback, all data under one temporary directory on
# the disk of BENCH_DIR), each RUNS times, and writes a comparison table of medians.
#
#   bench/peers.sh                                  # from the workspace root
#   RUNS=3 MESSAGES=500000 OUT_DIR=target/bench-results bench/peers.sh
#   SCENARIOS="produce-os produce-always" bench/peers.sh   # some of the tables
#
# brokerd appears twice where a Kafka client can do the same workload: over its
# native protocol and over its Kafka listener with librdkafka (`--broker kafka`).
#
# Installs nats-server, redis-server, rabbitmq-server, jq and librdkafka-dev from Debian
# if missing; builds broker-bench with the nats, redis, rabbitmq and kafka features and
# brokerd, in release mode. Every
# run's JSON is kept in $OUT_DIR/raw/; the tables go to stdout and $OUT_DIR/peers.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench-data}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-results}
RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-500000}           # produce and consume workloads
RTT_MESSAGES=${RTT_MESSAGES:-20000}    # one message per request
PUBSUB_SECONDS=${PUBSUB_SECONDS:-10}   # pub/sub at a fixed rate, after a 2 s warm-up
PUBSUB_RATE=${PUBSUB_RATE:-10000}
NATS_PORT=${NATS_PORT:-4299}
REDIS_PORT=${REDIS_PORT:-6399}
RABBITMQ_PORT=${RABBITMQ_PORT:-5699}
QUEUE_MESSAGES=${QUEUE_MESSAGES:-200000} # queue delivery with per-message acks
SCENARIOS=${SCENARIOS:-produce-os produce-always consume pubsub rtt queue}
mkdir -p "$BENCH_DIR" "$OUT_DIR/raw"
rm -f "$OUT_DIR"/raw/*.jsonl

need=()
command -v nats-server >/dev/null || need+=(nats-server)
command -v redis-server >/dev/null || need+=(redis-server)
command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)
command -v jq >/dev/null || need+=(jq)
pkg-config --exists rdkafka 2>/dev/null || need+=(librdkafka-dev pkg-config)
if ((${#need[@]})); then
  echo "peers.sh: installing ${need[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

echo "peers.sh: building broker-bench (features nats, redis, rabbitmq, kafka) and brokerd, release" >&2
cargo build --release --quiet -p bench --features nats,redis,rabbitmq,kafka
cargo build --release --quiet -p server --bin brokerd
BENCH=${CARGO_TARGET_DIR:-$ROOT/target}/release/broker-bench

TMP=$(mktemp -d -p "$BENCH_DIR" peers.XXXXXX)
nats_pid= redis_pid= rabbitmq_up=
# RabbitMQ runs as its own node; Debian's start script drops to the rabbitmq user.
export RABBITMQ_NODENAME=peersbench@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$RABBITMQ_PORT RABBITMQ_DIST_PORT=$((RABBITMQ_PORT + 20000))
export RABBITMQ_MNESIA_BASE=$TMP/rabbitmq/mnesia RABBITMQ_LOG_BASE=$TMP/rabbitmq/log
export RABBITMQ_ENABLED_PLUGINS_FILE=$TMP/rabbitmq/enabled_plugins RABBITMQ_CONFIG_FILE=$TMP/rabbitmq/none
stop_peers() {
  [[ -n $nats_pid ]] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null || true
  [[ -n $redis_pid ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
  # If the node never came up or will not stop, kill whatever runs under its name
  # before its directory is removed.
  if [[ -n $rabbitmq_up ]] && ! rabbitmqctl shutdown >/dev/null 2>&1; then
    pkill -f -- "$RABBITMQ_NODENAME" 2>/dev/null || true
  fi
  nats_pid= redis_pid= rabbitmq_up=
}
trap 'stop_peers; rm -rf "$TMP"' EXIT

wait_port() { # port
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "peers.sh: nothing listens on 127.0.0.1:$1" >&2; return 1
}

# --- peers ----------------------------------------------------------------------
NATS_VERSION=$(nats-server --version | awk '{print $2}')
REDIS_VERSION=$(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')
RABBITMQ_VERSION=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo unknown)
# JetStream's per-write sync option (sync_interval: always) exists from nats-server
# 2.10 on; older servers refuse the field, and then never fsync per message.
printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s", sync_interval: always }\n' \
  "$NATS_PORT" "$TMP/nats" > "$TMP/nats-sync.conf"
if nats-server -c "$TMP/nats-sync.conf" -t >/dev/null 2>&1; then
  NATS_DURABLE_CONF=$TMP/nats-sync.conf
  NATS_DURABLE_NOTE="sync_interval: always (fsync before ack)"
else
  NATS_DURABLE_CONF=
  NATS_DURABLE_NOTE="not possible: nats-server $NATS_VERSION has no sync_interval (no fsync per message)"
fi
printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s" }\n' "$NATS_PORT" "$TMP/nats" > "$TMP/nats-os.conf"
NATS_OS_NOTE="file storage, default sync (page cache; periodic flush)"

start_nats() { # config
  stop_peers; rm -rf "$TMP/nats"
  nats-server -c "$1" >"$TMP/nats.log" 2>&1 &
  nats_pid=$!
  wait_port "$NATS_PORT"
}
start_redis() { # appendfsync policy
  stop_peers; rm -rf "$TMP/redis"; mkdir -p "$TMP/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP/redis" --save '' \
    --appendonly yes --appendfsync "$1" --daemonize no >"$TMP/redis.log" 2>&1 &
  redis_pid=$!
  wait_port "$REDIS_PORT"
}
start_rabbitmq() {
  stop_peers; rm -rf "$TMP/rabbitmq"; mkdir -p "$TMP/rabbitmq"
  chmod 755 "$TMP" # the rabbitmq user must reach its directory
  echo '[].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  chown -R rabbitmq:rabbitmq "$TMP/rabbitmq" 2>/dev/null || true
  rabbitmq-server >"$TMP/rabbitmq.out" 2>&1 &
  rabbitmq_up=1
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$RABBITMQ_PORT") 2>/dev/null && return 0; sleep 0.1; done
  echo "peers.sh: rabbitmq-server did not start; see $TMP/rabbitmq.out" >&2; return 1
}

# --- runs -----------------------------------------------------------------------
# bench SCENARIO LABEL ARGS... : RUNS runs, one JSON line each in raw/SCENARIO.jsonl
bench() {
  local scenario=$1 label=$2; shift 2
  [[ " $SCENARIOS " == *" $scenario "* ]] || return 0
  for run in $(seq "$RUNS"); do
    echo "peers.sh: $scenario / $label, run $run of $RUNS" >&2
    local out status=0
    out=$("$BENCH" --json --quiet --data-parent "$BENCH_DIR" "$@") || status=$?
    if [[ -z $out ]]; then
      out=$(jq -nc --arg e "broker-bench exited with $status" '{first_error: $e, ok: false}')
    fi
    echo "$out" | jq -c --arg name "$label" '. + {name: $name}' >> "$OUT_DIR/raw/$scenario.jsonl"
  done
}

# Each workload's flags, identical for every broker.
PRODUCE=(--workload produce --messages "$MESSAGES" --message-size 1024 --batch 1000 --in-flight 8)
CONSUME=(--workload consume --messages "$MESSAGES" --message-size 1024 --batch 1000 --in-flight 8)
PUBSUB=(--workload pubsub --duration "$((PUBSUB_SECONDS + 2))s" --warmup 2s --rate "$PUBSUB_RATE"
        --message-size 1024 --batch 1 --in-flight 64)
RTT=(--workload produce --messages "$RTT_MESSAGES" --message-size 1024 --batch 1 --in-flight 1)
QUEUE=(--workload queue --messages "$QUEUE_MESSAGES" --message-size 1024 --consumers 4 --partitions 4)
OS=(--durability os --ack appended)
ALWAYS=(--durability always --ack durable)

# brokerd: broker-bench starts a fresh brokerd (data under $BENCH_DIR) for every run.
bench produce-os "brokerd (raw batches)" "${PRODUCE[@]}" "${OS[@]}"
bench produce-os "brokerd (client Producer)" --api client "${PRODUCE[@]}" "${OS[@]}"
bench produce-always "brokerd (raw batches)" "${PRODUCE[@]}" "${ALWAYS[@]}"
bench produce-always "brokerd, 4 producers x 4 partitions" "${PRODUCE[@]}" "${ALWAYS[@]}" --producers 4 --partitions 4
bench consume "brokerd (raw fetch)" "${CONSUME[@]}" "${OS[@]}"
bench consume "brokerd (client Consumer)" --api client "${CONSUME[@]}" "${OS[@]}"
bench pubsub "brokerd" "${PUBSUB[@]}" "${OS[@]}"
bench pubsub "brokerd, durability always, ack durable" "${PUBSUB[@]}" "${ALWAYS[@]}"
bench rtt "brokerd" "${RTT[@]}" "${OS[@]}"
bench rtt "brokerd, durability always, ack durable" "${RTT[@]}" "${ALWAYS[@]}"
bench queue "brokerd, durability always, ack durable" "${QUEUE[@]}" "${ALWAYS[@]}"
# The same brokerd through its Kafka listener, librdkafka as the client (acks=1 for
# `appended`, acks=all for `durable`).
KAFKA=(--broker kafka)
bench produce-os "brokerd over Kafka (librdkafka)" "${KAFKA[@]}" "${PRODUCE[@]}" "${OS[@]}"
bench produce-always "brokerd over Kafka (librdkafka)" "${KAFKA[@]}" "${PRODUCE[@]}" "${ALWAYS[@]}"
bench consume "brokerd over Kafka (librdkafka)" "${KAFKA[@]}" "${CONSUME[@]}" "${OS[@]}"

# NATS JetStream ($NATS_VERSION): the server's config is the durability policy.
start_nats "$TMP/nats-os.conf"
NATS=(--broker nats --addr "127.0.0.1:$NATS_PORT")
bench produce-os "nats: $NATS_OS_NOTE" "${NATS[@]}" "${PRODUCE[@]}"
bench consume "nats: $NATS_OS_NOTE" "${NATS[@]}" "${CONSUME[@]}"
bench pubsub "nats: $NATS_OS_NOTE" "${NATS[@]}" "${PUBSUB[@]}"
bench rtt "nats: $NATS_OS_NOTE" "${NATS[@]}" "${RTT[@]}"
bench queue "nats: $NATS_OS_NOTE" "${NATS[@]}" "${QUEUE[@]}"
if [[ -n $NATS_DURABLE_CONF ]]; then
  start_nats "$NATS_DURABLE_CONF"
  bench produce-always "nats: $NATS_DURABLE_NOTE" "${NATS[@]}" "${PRODUCE[@]}"
  bench pubsub "nats: $NATS_DURABLE_NOTE" "${NATS[@]}" "${PUBSUB[@]}"
  bench rtt "nats: $NATS_DURABLE_NOTE" "${NATS[@]}" "${RTT[@]}"
  bench queue "nats: $NATS_DURABLE_NOTE" "${NATS[@]}" "${QUEUE[@]}"
else
  echo "{\"name\": \"nats: $NATS_DURABLE_NOTE\", \"skipped\": true}" >> "$OUT_DIR/raw/produce-always.jsonl"
fi

# Redis Streams ($REDIS_VERSION): AOF on; appendfsync is the durability policy.
REDIS=(--broker redis --addr "127.0.0.1:$REDIS_PORT")
start_redis everysec
bench produce-os "redis: appendfsync everysec" "${REDIS[@]}" "${PRODUCE[@]}"
bench consume "redis: appendfsync everysec" "${REDIS[@]}" "${CONSUME[@]}"
bench pubsub "redis: appendfsync everysec" "${REDIS[@]}" "${PUBSUB[@]}"
bench rtt "redis: appendfsync everysec" "${REDIS[@]}" "${RTT[@]}"
start_redis always
bench produce-always "redis: appendfsync always" "${REDIS[@]}" "${PRODUCE[@]}"
bench pubsub "redis: appendfsync always" "${REDIS[@]}" "${PUBSUB[@]}"
bench rtt "redis: appendfsync always" "${REDIS[@]}" "${RTT[@]}"

# RabbitMQ ($RABBITMQ_VERSION): the queue type is the durability policy. Quorum queues
# confirm once their log is fdatasynced; classic queues with transient messages never
# sync. (Classic queues with persistent messages confirm after a write to the page
# cache, syncing only now and then, so they are no fsync-before-ack figure.)
start_rabbitmq
RABBITMQ=(--broker rabbitmq --addr "127.0.0.1:$RABBITMQ_PORT")
RABBITMQ_OS_NOTE="classic queues, transient messages (never synced)"
RABBITMQ_DURABLE_NOTE="quorum queues (log fdatasynced before confirm)"
bench produce-os "rabbitmq: $RABBITMQ_OS_NOTE" "${RABBITMQ[@]}" "${PRODUCE[@]}" "${OS[@]}"
bench produce-always "rabbitmq: $RABBITMQ_DURABLE_NOTE" "${RABBITMQ[@]}" "${PRODUCE[@]}" "${ALWAYS[@]}"
bench consume "rabbitmq: $RABBITMQ_OS_NOTE" "${RABBITMQ[@]}" "${CONSUME[@]}" "${OS[@]}"
bench pubsub "rabbitmq: $RABBITMQ_OS_NOTE" "${RABBITMQ[@]}" "${PUBSUB[@]}" "${OS[@]}"
bench pubsub "rabbitmq: $RABBITMQ_DURABLE_NOTE" "${RABBITMQ[@]}" "${PUBSUB[@]}" "${ALWAYS[@]}"
bench rtt "rabbitmq: $RABBITMQ_OS_NOTE" "${RABBITMQ[@]}" "${RTT[@]}" "${OS[@]}"
bench rtt "rabbitmq: $RABBITMQ_DURABLE_NOTE" "${RABBITMQ[@]}" "${RTT[@]}" "${ALWAYS[@]}"
bench queue "rabbitmq: $RABBITMQ_OS_NOTE" "${RABBITMQ[@]}" "${QUEUE[@]}" "${OS[@]}"
bench queue "rabbitmq: $RABBITMQ_DURABLE_NOTE" "${RABBITMQ[@]}" "${QUEUE[@]}" "${ALWAYS[@]}"
stop_peers

# --- tables ---------------------------------------------------------------------
# Medians per label, each figure on its own (so one row may mix runs).
summarize() { # scenario title
  [[ -s $OUT_DIR/raw/$1.jsonl ]] || return 0
  echo
  echo "### $2"
  echo
  echo "| broker and durability | msg/s | MB/s | publish p50 µs | publish p99 µs | e2e p50 µs | e2e p99 µs | e2e p99.9 µs | e2e max µs | lost | dup | runs ok |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  jq -rs '
    def med: map(select(. != null)) | sort | if length == 0 then null
      elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def show: if . == null then "-" elif . >= 100 then (. | round | tostring) else (. * 10 | round / 10 | tostring) end;
    group_by(.name) | sort_by(.[0].name | test("^brokerd") | not) | .[] |
    if .[0].skipped then "| \(.[0].name) | - | - | - | - | - | - | - | - | - | - | - |" else
    "| \(.[0].name) | \(map(.msgs_per_sec) | med | show) | \(map(.mb_per_sec) | med | show) | \(map(.publish_latency_us.p50) | med | show) | \(map(.publish_latency_us.p99) | med | show) | \(map(.e2e_latency_us.p50) | med | show) | \(map(.e2e_latency_us.p99) | med | show) | \(map(.e2e_latency_us.p999) | med | show) | \(map(.e2e_latency_us.max) | med | show) | \(map(.lost // 0) | add) | \(map(.duplicates // 0) | add) | \(map(select(.ok == true)) | length)/\(length) |" end
  ' "$OUT_DIR/raw/$1.jsonl"
}
{
  echo "Median of $RUNS runs per row; nats-server $NATS_VERSION, redis-server $REDIS_VERSION, rabbitmq-server $RABBITMQ_VERSION; lost and dup are summed over the runs."
  summarize produce-os "Produce, 1 KiB messages, batches of 1000, 8 in flight, $MESSAGES messages, no fsync (brokerd \`os\`, ack \`appended\`)"
  summarize produce-always "Produce, same, durable (brokerd \`always\`, ack \`durable\`)"
  summarize consume "Consume $MESSAGES pre-filled 1 KiB messages"
  summarize pubsub "Pub/sub at $PUBSUB_RATE msg/s, 1 message per request, 1 KiB, ${PUBSUB_SECONDS} s after a 2 s warm-up"
  summarize rtt "One message per request, one in flight (round trip), $RTT_MESSAGES messages"
  summarize queue "Queue delivery, $QUEUE_MESSAGES 1 KiB messages, 1 topic x 4 partitions, 4 consumers, every message acked on its own"
} | tee "$OUT_DIR/peers.md"
