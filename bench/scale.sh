#!/usr/bin/env bash
# What brokerd costs as its partitions grow: for each partition count, a fresh brokerd
# (release build, `always` topics), every partition written at once with 1 KiB
# messages, then what the process holds while running (threads, descriptors, memory
# maps, RSS, disk used against the data written) and how long a restart takes to the
# first answered request after a clean stop and after kill -9, and last, on a fresh
# brokerd with as many partitions, the end-to-end p99 of a pub/sub run at a fixed
# total rate (E2E_RATE msg/s, default 10,000, in batches of E2E_BATCH, default 10, for
# E2E_DURATION, default 10s, the first 2 s left out), read by one consumer that takes
# pushed deliveries (`--api push`: one group subscription per topic, so idle
# partitions cost it no requests; E2E_API=raw long-polls every partition instead). Writes a markdown table to
# stdout and to $OUT_DIR/scale.md.
#
#   bench/scale.sh                                   # 1, 100, 1000 and 10000 partitions
#   PARTITIONS="1 1000" MESSAGES=200000 bench/scale.sh
#
# Partitions are spread over topics of at most 1,000 partitions each (10,000 are 10
# topics). PRODUCERS producers (default 10) write at once: producer i writes to topic
# i % topics, batch by batch round robin over its partitions, so every partition gets
# data. BENCH_DIR must be on the disk being measured (default target/bench-data).
# BROKERD_CONFIG names a TOML file brokerd reads (`--config`), e.g. to compare
# `[storage] group_sync_from = 0` with the default in one run.
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench-data}
OUT_DIR=${OUT_DIR:-$PWD/target/bench-results}
PARTITIONS=${PARTITIONS:-"1 100 1000 10000"}
PRODUCERS=${PRODUCERS:-10}
MESSAGES=${MESSAGES:-500000}
MESSAGE_SIZE=${MESSAGE_SIZE:-1024}
BATCH=${BATCH:-50}
IN_FLIGHT=${IN_FLIGHT:-4}
E2E_RATE=${E2E_RATE:-10000}
E2E_BATCH=${E2E_BATCH:-10}
E2E_DURATION=${E2E_DURATION:-10s}
E2E_API=${E2E_API:-push}
PORT=${PORT:-7391}
mkdir -p "$BENCH_DIR" "$OUT_DIR"
# brokerd raises its soft open-file limit to the hard one. Each partition holds one
# descriptor of its own (its active segment's file) and its two indexes borrow from a
# budget of a quarter of the limit, so 10,000 partitions fit a hard limit of 20,000;
# raised here where allowed (root outside a container).
ulimit -Hn 1048576 2>/dev/null || true
echo "scale.sh: open-file hard limit $(ulimit -Hn)" >&2

cargo build --release -q -p server --bin brokerd -p bench --bin broker-bench -p brokerctl --bin brokerctl
BROKERD=$PWD/target/release/brokerd
BENCH=$PWD/target/release/broker-bench
CTL=$PWD/target/release/brokerctl
ADDR=127.0.0.1:$PORT

pid=
data=
cleanup() {
  [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
  [[ -n $data ]] && rm -rf "$data"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# Starts brokerd on $data and waits until it answers a request; sets $pid and
# $elapsed_ms, the milliseconds from exec to the first answer.
start() {
  local started
  started=$(now_ms)
  "$BROKERD" --data-dir "$data" --listen "$ADDR" --http-listen 127.0.0.1:0 \
    ${BROKERD_CONFIG:+--config "$BROKERD_CONFIG"} >"$data.log" 2>&1 &
  pid=$!
  [[ -x $CTL ]] || { echo "scale.sh: no $CTL" >&2; exit 1; }
  until "$CTL" --addr "$ADDR" topics list >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "scale.sh: brokerd exited:" >&2; tail "$data.log" >&2; exit 1; }
    sleep 0.01
  done
  elapsed_ms=$(($(now_ms) - started))
}

rows=()
for partitions in $PARTITIONS; do
  topics=$(((partitions + 999) / 1000))
  per_topic=$((partitions / topics))
  ((per_topic * topics == partitions)) || { echo "scale.sh: $partitions is not a multiple of $topics topics" >&2; exit 1; }
  data=$(mktemp -d "$BENCH_DIR/scale-XXXXXX")
  start
  report=$("$BENCH" --addr "$ADDR" --workload produce --topics "$topics" \
    --partitions "$per_topic" --producers "$PRODUCERS" --batch "$BATCH" --in-flight "$IN_FLIGHT" \
    --messages "$MESSAGES" --message-size "$MESSAGE_SIZE" --durability always --keep-topics --json --quiet)
  ok=$(jq -r .ok <<<"$report")
  [[ $ok == true ]] || { echo "scale.sh: produce failed: $report" >&2; exit 1; }
  rate=$(jq -r .msgs_per_sec <<<"$report")
  p99=$(jq -r .publish_latency_us.p99 <<<"$report")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  maps=$(wc -l <"/proc/$pid/maps")
  rss_mib=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  disk_kib=$(du -sk "$data" | cut -f1)
  data_kib=$((MESSAGES * MESSAGE_SIZE / 1024))
  budget_kib=$((data_kib * 3 / 2 + 64 * partitions))
  kill -TERM "$pid"; wait "$pid" || true; pid=
  start
  clean_ms=$elapsed_ms
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
  start
  crash_ms=$elapsed_ms
  kill -TERM "$pid"; wait "$pid" || true; pid=
  rm -rf "$data" "$data.log"
  # A fresh broker: the pub/sub run creates its own topics, as many partitions again.
  data=$(mktemp -d "$BENCH_DIR/scale-XXXXXX")
  start
  e2e=$("$BENCH" --addr "$ADDR" --api "$E2E_API" --workload pubsub --topics "$topics" \
    --partitions "$per_topic" --producers "$PRODUCERS" --consumers 1 --batch "$E2E_BATCH" \
    --rate "$E2E_RATE" --duration "$E2E_DURATION" --warmup 2s --message-size "$MESSAGE_SIZE" \
    --durability always --json --quiet)
  [[ $(jq -r .ok <<<"$e2e") == true ]] || { echo "scale.sh: pubsub failed: $e2e" >&2; exit 1; }
  e2e_p99=$(jq -r .e2e_latency_us.p99 <<<"$e2e")
  kill -TERM "$pid"; wait "$pid" || true; pid=
  rm -rf "$data" "$data.log"; data=
  rows+=("| $partitions ($topics x $per_topic) | $rate | $p99 | $threads | $fds | $maps | $rss_mib | $((disk_kib / 1024)) | $((data_kib / 1024)) | $((budget_kib / 1024)) | $clean_ms | $crash_ms | $e2e_p99 |")
  echo "scale.sh: ${rows[-1]}" >&2
done

table=$(
  echo "| partitions (topics x each) | produce msg/s | publish p99 µs | threads | descriptors | maps | RSS MiB | disk used MiB | data MiB | goal: 1.5 x data + 64 KiB/partition, MiB | restart ms, clean | restart ms, kill -9 | e2e p99 µs at $E2E_RATE msg/s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
)
echo "$table" | tee "$OUT_DIR/scale.md"
