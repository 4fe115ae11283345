#!/usr/bin/env bash
# HTTP produce (keep-alive, batches of 100 x 1 KiB JSON records) beside the native
# protocol in the same shape (8 connections, one request of 100 records in flight each),
# alternated run by run. Prints a markdown table of medians; raw output in $OUT_DIR/http-raw/.
#
# Throughput is wrk's (two threads); latency is ApacheBench's (`ab -k`, one thread, run
# right after on the same broker): wrk's latency histogram breaks Little's law with
# these 100 KB bodies (one connection at 4,100 requests/s, so about 0.24 ms each,
# reported a 392 ms p99), while ab's percentiles agree with its mean.
#
#   bench/http.sh
#   RUNS=5 CONNECTIONS=8 DURATION=10s bench/http.sh
#
# Installs wrk, ab (apache2-utils) and jq from Debian if missing. brokerd runs from target/release with
# data under $DATA_PARENT; the topic has one partition and durability `os`, and the
# HTTP side asks ack=appended, as the native side does.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
CONNECTIONS=${CONNECTIONS:-8}
DURATION=${DURATION:-10s}
RECORDS=100
OUT_DIR=${OUT_DIR:-$PWD/target/bench-results}
DATA_PARENT=${DATA_PARENT:-$PWD/target/bench-data}
RAW=$OUT_DIR/http-raw
mkdir -p "$RAW" "$DATA_PARENT"
for need in wrk:wrk ab:apache2-utils jq:jq; do
  command -v "${need%%:*}" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need#*:}"; }
done
cargo build --quiet --release -p bench -p server --bin broker-bench --bin brokerd
BROKERD=target/release/brokerd
BENCH=target/release/broker-bench

python3 - "$RAW/body.json" "$RAW/post.lua" "$RECORDS" <<'PY'
import json, sys
body, lua, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
open(body, "w").write(json.dumps({"records": [{"value": "x" * 1024} for _ in range(n)]}))
open(lua, "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    f'local f = io.open("{body}")\nwrk.body = f:read("*a")\nf:close()\n')
PY

http_run() { # run -> msg/s, p50 µs, p99 µs, non-2xx
  local data; data=$(mktemp -d "$DATA_PARENT/http-XXXXXX")
  "$BROKERD" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --data-dir "$data" >"$data/out" 2>"$data/err" &
  local pid=$!
  for _ in $(seq 100); do grep -q "http listening" "$data/out" 2>/dev/null && break; sleep 0.05; done
  local http; http=$(awk '/^http listening on/ {print $4}' "$data/out")
  curl -sf -X POST "http://$http/v1/topics" -H 'content-type: application/json' \
    -d '{"name":"bench","partitions":1,"config":{"durability":"os"}}' >/dev/null
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$RAW/post.lua" \
    "http://$http/v1/topics/bench/records?ack=appended" >"$RAW/http-$1.txt"
  ab -k -q -c "$CONNECTIONS" -t 5 -n 100000000 -p "$RAW/body.json" -T application/json \
    "http://$http/v1/topics/bench/records?ack=appended" >"$RAW/ab-$1.txt"
  local end; end=$(curl -sf "http://$http/v1/topics/bench" | jq '[.partitions[].end_offset] | add')
  kill -TERM $pid; wait $pid || true
  rm -rf "$data"
  python3 - "$RAW/http-$1.txt" "$end" "$RECORDS" "$RAW/ab-$1.txt" <<'PY'
import re, sys
text, stored, n = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
done = int(re.search(r"(\d+) requests in", text).group(1))
ab = open(sys.argv[4]).read()
p50 = int(re.search(r"^\s+50%\s+(\d+)", ab, re.M).group(1)) * 1000
p99 = int(re.search(r"^\s+99%\s+(\d+)", ab, re.M).group(1)) * 1000
failed = int(re.search(r"Failed requests:\s+(\d+)", ab).group(1))
bad = int(bad.group(1)) if bad else 0
print(f"{rps * n:.0f} {p50} {p99} {bad + failed} {stored} {done * n}")
PY
}

native_run() { # run -> msg/s, p50 µs, p99 µs
  "$BENCH" --workload produce --messages 1000000 --message-size 1024 --batch "$RECORDS" \
    --producers "$CONNECTIONS" --in-flight 1 --durability os --ack appended \
    --data-parent "$DATA_PARENT" --json >"$RAW/native-$1.json"
  jq -r '"\(.msgs_per_sec|floor) \(.publish_latency_us.p50|floor) \(.publish_latency_us.p99|floor)"' "$RAW/native-$1.json"
}

: >"$RAW/runs.txt"
for run in $(seq "$RUNS"); do
  read -r h h50 h99 hbad stored acked <<<"$(http_run "$run")"
  read -r n n50 n99 <<<"$(native_run "$run")"
  echo "run $run: http $h msg/s (p50 $h50 µs, p99 $h99 µs, non-2xx $hbad, stored $stored >= wrk acked $acked), native $n msg/s" >&2
  echo "$h $h50 $h99 $hbad $n $n50 $n99" >>"$RAW/runs.txt"
done
median() { sort -g | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
col() { awk -v c="$1" '{print $c}' "$RAW/runs.txt" | median; }
{
  echo "| $CONNECTIONS connections, $RECORDS x 1 KiB per request | msg/s (median of $RUNS) | p50 µs | p99 µs |"
  echo "|---|---:|---:|---:|"
  echo "| HTTP/1.1 keep-alive (wrk), JSON | $(col 1) | $(col 2) | $(col 3) |"
  echo "| native protocol (broker-bench --api raw) | $(col 5) | $(col 6) | $(col 7) |"
  echo
  echo "HTTP: msg/s by wrk, p50 and p99 by ab (whole milliseconds)."
  echo "HTTP non-2xx or failed answers over all runs (wrk and ab): $(awk '{s+=$4} END {print s+0}' "$RAW/runs.txt")"
} | tee "$OUT_DIR/http.md"
