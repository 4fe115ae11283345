#!/usr/bin/env bash
# A/B of two brokerd binaries on the same workloads, alternating A and B run by run,
# so both see the same drift of the machine. Prints a markdown table of medians (and
# writes it to $OUT_DIR/ab.md); every run's JSON is kept in $OUT_DIR/ab-raw/.
#
#   bench/ab.sh OLD_BROKERD NEW_BROKERD        # e.g. target/release/brokerd of two commits
#   RUNS=5 DATA_PARENT=/path/on/disk bench/ab.sh A B
#   ONLY=pubsub RUNS=9 bench/ab.sh A B            # some of the workloads
#
# Workloads: durable produce in batches of 1000, pub/sub at 10,000 msg/s durable and
# without fsync, and the queue workload with per-message durable acks. Installs jq from Debian if missing.
set -euo pipefail

cd "$(dirname "$0")/.."
A=${1:?usage: bench/ab.sh BROKERD_A BROKERD_B}
B=${2:?usage: bench/ab.sh BROKERD_A BROKERD_B}
RUNS=${RUNS:-5}
OUT_DIR=${OUT_DIR:-$PWD/target/bench-results}
DATA_PARENT=${DATA_PARENT:-$PWD/target/bench-data}
mkdir -p "$OUT_DIR/ab-raw" "$DATA_PARENT"
command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq; }

cargo build --quiet --release -p bench --bin broker-bench
BENCH=target/release/broker-bench

declare -A WORKLOADS=(
  [produce]="--workload produce --messages 500000 --message-size 1024 --batch 1000 --in-flight 8 --durability always --ack durable"
  [pubsub]="--workload pubsub --duration 6s --warmup 1s --rate 10000 --batch 1 --in-flight 64 --message-size 1024 --durability always --ack durable"
  [pubsub-os]="--workload pubsub --duration 6s --warmup 1s --rate 10000 --batch 1 --in-flight 64 --message-size 1024 --durability os --ack appended"
  [queue]="--workload queue --messages 200000 --message-size 1024 --consumers 4 --partitions 4 --durability always --ack durable"
)
read -r -a ORDER <<<"${ONLY:-produce pubsub pubsub-os queue}"

for run in $(seq "$RUNS"); do
  for name in "${ORDER[@]}"; do
    for side in A B; do
      bin=$A; [[ $side == B ]] && bin=$B
      out="$OUT_DIR/ab-raw/$name-$side-$run.json"
      # shellcheck disable=SC2086
      "$BENCH" ${WORKLOADS[$name]} --brokerd "$bin" --data-parent "$DATA_PARENT" --json >"$out"
      echo "ab.sh: run $run $name $side: $(jq -r '.msgs_per_sec | floor' "$out") msg/s" >&2
    done
  done
done

median() { sort -g | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
figure() { # workload side jq-path
  for run in $(seq "$RUNS"); do jq -r "$3 // empty" "$OUT_DIR/ab-raw/$1-$2-$run.json"; done | median
}
sum() { for run in $(seq "$RUNS"); do jq -r "$3" "$OUT_DIR/ab-raw/$1-$2-$run.json"; done | awk '{s+=$1} END {print s+0}'; }

{
  echo "| workload | figure | A (median of $RUNS) | B (median of $RUNS) | B / A |"
  echo "|---|---|---|---|---|"
  row() { # workload label path
    local a b
    a=$(figure "$1" A "$3"); b=$(figure "$1" B "$3")
    if [[ -z $a || -z $b ]]; then return; fi
    echo "| $1 | $2 | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }') |"
  }
  for name in "${ORDER[@]}"; do
    row "$name" "msg/s" '.msgs_per_sec | floor'
    row "$name" "publish p50 µs" '.publish_latency_us.p50'
    row "$name" "publish p99 µs" '.publish_latency_us.p99'
    row "$name" "e2e p50 µs" '.e2e_latency_us.p50'
    row "$name" "e2e p99 µs" '.e2e_latency_us.p99'
    echo "| $name | lost / dup (sum) | $(sum "$name" A .lost) / $(sum "$name" A .duplicates) | $(sum "$name" B .lost) / $(sum "$name" B .duplicates) | |"
  done
} | tee "$OUT_DIR/ab.md"
