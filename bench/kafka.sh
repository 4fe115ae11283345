#!/usr/bin/env bash
# brokerd's Kafka listener against its native protocol, in one run: every workload
# runs on three sides, alternated run by run so all see the same drift of the
# machine, each run against a fresh brokerd of the same binary: the native protocol
# with raw batches (`--broker brokerd`), the native protocol through the Rust client
# library (`--api client-plain`: per-message encoding, as librdkafka does), and
# librdkafka against its `--kafka-listen` (`--broker kafka`). Prints a markdown table
# of medians and the Kafka / native ratios against both native sides (also written
# to $OUT_DIR/kafka.md); every run's JSON is kept in $OUT_DIR/kafka-raw/.
#
#   bench/kafka.sh
#   RUNS=5 MESSAGES=500000 DATA_PARENT=/path/on/disk bench/kafka.sh
#   ONLY="produce-durable consume" bench/kafka.sh   # some of the workloads
#
# Workloads, all 1 KiB messages in batches of 1000, 8 in flight, one producer and one
# consumer, one partition: produce durable (topic `always`, ack `durable`, Kafka
# acks=all), produce without fsync (`os`, ack `appended`, Kafka acks=1), consume of
# what a produce without fsync left (the fill is not measured), and a one-message round
# trip (pub/sub, batches of 1, one in flight, 1,000 msg/s, `os`) for the end-to-end
# latency. Installs librdkafka-dev, pkg-config and jq from Debian if missing (the
# `kafka` feature links librdkafka dynamically).
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-300000}
RTT_MESSAGES=${RTT_MESSAGES:-5000}
OUT_DIR=${OUT_DIR:-$PWD/target/bench-results}
DATA_PARENT=${DATA_PARENT:-$PWD/target/bench-data}
mkdir -p "$OUT_DIR/kafka-raw" "$DATA_PARENT"

missing=()
pkg-config --exists rdkafka 2>/dev/null || missing+=(librdkafka-dev pkg-config)
command -v jq >/dev/null || missing+=(jq)
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

cargo build --quiet --release -p server --bin brokerd
cargo build --quiet --release -p bench --features kafka
BENCH=target/release/broker-bench

COMMON="--message-size 1024 --batch 1000 --in-flight 8 --producers 1 --consumers 1 --partitions 1"
declare -A WORKLOADS=(
  [produce-durable]="--workload produce --messages $MESSAGES $COMMON --durability always --ack durable"
  [produce]="--workload produce --messages $MESSAGES $COMMON --durability os --ack appended"
  [consume]="--workload consume --messages $MESSAGES $COMMON --durability os --ack appended"
  [rtt]="--workload pubsub --messages $RTT_MESSAGES --message-size 1024 --batch 1 --in-flight 1 --rate 1000 --warmup 1s --durability os --ack appended"
)
read -r -a ORDER <<<"${ONLY:-produce-durable produce consume rtt}"
# native: raw batches and fetches, the native protocol's ceiling (batches encoded by
# the bench); client: the Rust client library's Producer (not idempotent, as the Kafka
# driver's librdkafka is not) and group Consumer, which encode and decode every
# message as librdkafka does; kafka: librdkafka against the Kafka listener.
SIDES=(native client kafka)
declare -A SIDE_ARGS=([native]="--broker brokerd" [client]="--broker brokerd --api client-plain" [kafka]="--broker kafka")

echo "kafka.sh: $(date -u +%FT%TZ) on $(git rev-parse --short HEAD), load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for run in $(seq "$RUNS"); do
  for name in "${ORDER[@]}"; do
    for side in "${SIDES[@]}"; do
      out="$OUT_DIR/kafka-raw/$name-$side-$run.json"
      # shellcheck disable=SC2086
      "$BENCH" ${WORKLOADS[$name]} ${SIDE_ARGS[$side]} --data-parent "$DATA_PARENT" --json >"$out"
      echo "kafka.sh: run $run $name $side: $(jq -r '.msgs_per_sec | floor' "$out") msg/s, load $(cut -d' ' -f1 /proc/loadavg)" >&2
    done
  done
done
echo "kafka.sh: done $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

median() { sort -g | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
figure() { # workload side jq-path
  for run in $(seq "$RUNS"); do jq -r "$3 // empty" "$OUT_DIR/kafka-raw/$1-$2-$run.json"; done | median
}
per_run() { # workload base-side jq-path: each run's kafka / base
  for run in $(seq "$RUNS"); do
    paste <(jq -r "$3 // 0" "$OUT_DIR/kafka-raw/$1-$2-$run.json") \
      <(jq -r "$3 // 0" "$OUT_DIR/kafka-raw/$1-kafka-$run.json")
  done | awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), ($1 > 0 ? $2 / $1 : 0) }'
}
sum() { for run in $(seq "$RUNS"); do jq -r "$3" "$OUT_DIR/kafka-raw/$1-$2-$run.json"; done | awk '{s+=$1} END {print s+0}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }'; }

{
  echo "| workload | figure | native raw (median of $RUNS) | native client | Kafka | Kafka / raw | Kafka / client |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  row() { # workload label path [per-run]
    local a c b
    a=$(figure "$1" native "$3"); c=$(figure "$1" client "$3"); b=$(figure "$1" kafka "$3")
    # A figure the workload does not measure (consume's acks) is null or 0.
    if [[ -z $a || -z $b || -z $c || $a == 0 || $c == 0 ]]; then return; fi
    if [[ ${4:-} == per-run ]]; then
      echo "| $1 | $2 | $a | $c | $b | **$(ratio "$a" "$b")** ($(per_run "$1" native "$3")) | **$(ratio "$c" "$b")** ($(per_run "$1" client "$3")) |"
    else
      echo "| $1 | $2 | $a | $c | $b | $(ratio "$a" "$b") | $(ratio "$c" "$b") |"
    fi
  }
  lost_dup() { echo "$(sum "$1" "$2" .lost) / $(sum "$1" "$2" .duplicates)"; }
  for name in "${ORDER[@]}"; do
    if [[ $name != rtt ]]; then
      row "$name" "msg/s" '.msgs_per_sec | floor' per-run
      row "$name" "MB/s" '.mb_per_sec | floor'
      row "$name" "ack p50 µs" '.publish_latency_us.p50'
      row "$name" "ack p99 µs" '.publish_latency_us.p99'
    fi
    # A consume run's end-to-end figures are the age of the pre-filled backlog.
    if [[ $name == rtt ]]; then
      row "$name" "end-to-end p50 µs" '.e2e_latency_us.p50'
      row "$name" "end-to-end p99 µs" '.e2e_latency_us.p99'
    fi
    echo "| $name | lost / dup (sum) | $(lost_dup "$name" native) | $(lost_dup "$name" client) | $(lost_dup "$name" kafka) | | |"
  done
} | tee "$OUT_DIR/kafka.md"
