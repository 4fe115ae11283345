#!/usr/bin/env bash
# Measures what this machine allows, so every broker figure can be quoted as a fraction
# of it: loopback TCP throughput (iperf3) and the disk's sequential write throughput,
# buffered and with an fdatasync after every write (fio). Installs iperf3, fio and jq
# from Debian if missing. Writes a markdown table to stdout and to $OUT_DIR/limits.md.
#
#   bench/limits.sh                 # from the workspace root
#   BENCH_DIR=/path/on/disk OUT_DIR=target/bench-results bench/limits.sh
#
# BENCH_DIR must be on the disk brokerd writes to (default target/bench-data). Each fio
# job is run RUNS times (default 3) and the median is reported.
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench-data}
OUT_DIR=${OUT_DIR:-$PWD/target/bench-results}
RUNS=${RUNS:-3}
IPERF_PORT=${IPERF_PORT:-5299}
IPERF_SECONDS=${IPERF_SECONDS:-5}
mkdir -p "$BENCH_DIR" "$OUT_DIR"

need=()
for tool in iperf3 fio jq; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  echo "limits.sh: installing ${need[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

iperf_pid=
cleanup() {
  [[ -n $iperf_pid ]] && kill "$iperf_pid" 2>/dev/null || true
  rm -f "$BENCH_DIR/fio.dat"
}
trap cleanup EXIT

# Median of exactly $RUNS samples, one per line. A sample that failed (iperf3 or fio
# exiting non-zero inside the loop) is missing, and that fails the whole script
# instead of a median of fewer runs, or "nan", reaching the table.
median() {
  sort -g | awk -v want="$RUNS" '{a[NR]=$1}
    END {
      if (NR != want) { print "limits.sh: expected " want " samples, got " NR > "/dev/stderr"; exit 1 }
      if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2
    }'
}

# --- loopback TCP ---------------------------------------------------------------
iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >/dev/null 2>&1 &
iperf_pid=$!
sleep 0.5
tcp_one() { # streams -> MB/s (10^6 bytes) received
  iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -t "$IPERF_SECONDS" -P "$1" -J |
    jq '.end.sum_received.bits_per_second / 8 / 1e6'
}
tcp1=$(for _ in $(seq "$RUNS"); do tcp_one 1; done | median)
tcp2=$(for _ in $(seq "$RUNS"); do tcp_one 2; done | median)

# --- disk -----------------------------------------------------------------------
fio_one() { # name, extra args... -> MB/s (10^6 bytes) written
  local name=$1; shift
  rm -f "$BENCH_DIR/fio.dat"
  sync
  fio --name="$name" --filename="$BENCH_DIR/fio.dat" --rw=write --ioengine=psync \
      --output-format=json "$@" | jq '.jobs[0].write.bw_bytes / 1e6'
}
fio_median() { for _ in $(seq "$RUNS"); do fio_one "$@"; done | median; }
buffered=$(fio_median buffered --bs=1m --size=1g --end_fsync=1)
sync64k=$(fio_median sync64k --bs=64k --size=256m --fdatasync=1)
sync1m=$(fio_median sync1m --bs=1m --size=512m --fdatasync=1)
sync4k=$(fio_median sync4k --bs=4k --size=16m --fdatasync=1)

fmt() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
table=$(cat <<TABLE
| limit | how (median of $RUNS) | MB/s |
|---|---|---|
| loopback TCP, 1 stream | \`iperf3 -c 127.0.0.1 -t $IPERF_SECONDS -P 1\` | $(fmt "$tcp1") |
| loopback TCP, 2 streams | \`iperf3 -c 127.0.0.1 -t $IPERF_SECONDS -P 2\` | $(fmt "$tcp2") |
| disk, buffered sequential write, 1 MiB blocks, 1 GiB then fsync | \`fio --rw=write --bs=1m --size=1g --end_fsync=1\` | $(fmt "$buffered") |
| disk, 1 MiB writes, fdatasync after each | \`fio --rw=write --bs=1m --size=512m --fdatasync=1\` | $(fmt "$sync1m") |
| disk, 64 KiB writes, fdatasync after each | \`fio --rw=write --bs=64k --size=256m --fdatasync=1\` | $(fmt "$sync64k") |
| disk, 4 KiB writes, fdatasync after each | \`fio --rw=write --bs=4k --size=16m --fdatasync=1\` | $(fmt "$sync4k") ($(awk -v v="$sync4k" 'BEGIN { printf "%.0f", v * 1e6 / 4096 }') syncs/s) |
TABLE
)
echo "$table" | tee "$OUT_DIR/limits.md"
jq -n --arg tcp1 "$tcp1" --arg tcp2 "$tcp2" --arg buffered "$buffered" --arg s1m "$sync1m" \
  --arg s64k "$sync64k" --arg s4k "$sync4k" \
  '{tcp_1_stream_mb_s: ($tcp1|tonumber), tcp_2_streams_mb_s: ($tcp2|tonumber),
    disk_buffered_mb_s: ($buffered|tonumber), disk_fdatasync_1m_mb_s: ($s1m|tonumber),
    disk_fdatasync_64k_mb_s: ($s64k|tonumber), disk_fdatasync_4k_mb_s: ($s4k|tonumber)}' \
  > "$OUT_DIR/limits.json"
