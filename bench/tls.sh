#!/usr/bin/env bash
# Plaintext against TLS on one brokerd binary, alternating the two run by run so both
# see the same drift of the machine; then connection set-up time with and without
# SCRAM, plaintext and TLS. Prints markdown tables of medians (and writes them to
# $OUT_DIR/tls.md); every run's JSON is kept in $OUT_DIR/tls-raw/.
#
#   bench/tls.sh
#   RUNS=5 CONNECTIONS=500 DATA_PARENT=/path/on/disk bench/tls.sh
#   ONLY="produce consume" bench/tls.sh          # some of the workloads ("connect" too)
#
# Certificates (a CA, and a server certificate for localhost and 127.0.0.1) are made
# with openssl in $OUT_DIR/tls-pki the first time. Workloads, all 1 KiB messages in
# batches of 1024 (1 MiB a produce request), 8 in flight: produce without fsync (`os`,
# ack `appended`), produce durable (`always`, ack `durable`), consume of what a
# produce without fsync left, and pub/sub at 200,000 msg/s for the consumers'
# end-to-end latency. Installs jq from Debian if missing.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
CONNECTIONS=${CONNECTIONS:-300}
OUT_DIR=${OUT_DIR:-$PWD/target/bench-results}
DATA_PARENT=${DATA_PARENT:-$PWD/target/bench-data}
PKI=$OUT_DIR/tls-pki
mkdir -p "$OUT_DIR/tls-raw" "$DATA_PARENT" "$PKI"
command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq; }

if [[ ! -f $PKI/server.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj /CN=bench-ca -keyout "$PKI/ca-key.pem" -out "$PKI/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=brokerd \
    -keyout "$PKI/server-key.pem" -out "$PKI/server.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca-key.pem" \
    -days 90 -out "$PKI/server.pem" 2>/dev/null \
    -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE')
fi
printf '# plaintext, no authentication\n' >"$PKI/plain.toml"
printf '[tls]\ncert = "%s"\nkey = "%s"\n' "$PKI/server.pem" "$PKI/server-key.pem" >"$PKI/tls.toml"
printf '[security]\nmechanisms = ["SCRAM-SHA-256"]\n' >"$PKI/scram.toml"
cat "$PKI/tls.toml" "$PKI/scram.toml" >"$PKI/tls-scram.toml"

cargo build --quiet --release -p bench -p server --bin broker-bench --bin brokerd
BENCH=target/release/broker-bench
TLS_FLAGS="--tls-ca $PKI/ca.pem --tls-server-name localhost"

declare -A WORKLOADS=(
  [produce]="--workload produce --messages 1000000 --message-size 1024 --batch 1024 --in-flight 8 --durability os --ack appended"
  [produce-durable]="--workload produce --messages 1000000 --message-size 1024 --batch 1024 --in-flight 8 --durability always --ack durable"
  [consume]="--workload consume --messages 1000000 --message-size 1024 --batch 1024 --in-flight 8 --durability os --ack appended"
  # Consume latency: consumers at the end of the topic, producers at a fixed rate well
  # below either side's maximum, so the figure is delivery latency, not a queue.
  [pubsub]="--workload pubsub --messages 1000000 --message-size 1024 --batch 1024 --in-flight 8 --rate 200000 --warmup 1s --durability os --ack appended"
)
read -r -a ORDER <<<"${ONLY:-produce produce-durable consume pubsub connect}"

# side -> broker-bench flags
declare -A SIDES=(
  [plain]="--brokerd-config $PKI/plain.toml"
  [tls]="--brokerd-config $PKI/tls.toml $TLS_FLAGS"
  [scram]="--brokerd-config $PKI/scram.toml --scram-user bench"
  [tls-scram]="--brokerd-config $PKI/tls-scram.toml $TLS_FLAGS --scram-user bench"
)
# Only for the benchmark's own throwaway broker.
export BROKER_BENCH_SCRAM_PASSWORD=bench-password

for run in $(seq "$RUNS"); do
  for name in "${ORDER[@]}"; do
    if [[ $name == connect ]]; then
      for side in plain scram tls tls-scram; do
        out="$OUT_DIR/tls-raw/connect-$side-$run.json"
        # shellcheck disable=SC2086
        "$BENCH" --connect-only "$CONNECTIONS" ${SIDES[$side]} --data-parent "$DATA_PARENT" --json >"$out"
        echo "tls.sh: run $run connect $side: p50 $(jq -r '.setup_us.p50' "$out") µs" >&2
      done
      continue
    fi
    for side in plain tls; do
      out="$OUT_DIR/tls-raw/$name-$side-$run.json"
      # shellcheck disable=SC2086
      "$BENCH" ${WORKLOADS[$name]} ${SIDES[$side]} --data-parent "$DATA_PARENT" --json >"$out"
      echo "tls.sh: run $run $name $side: $(jq -r '.msgs_per_sec | floor' "$out") msg/s" >&2
    done
  done
done

median() { sort -g | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
figure() { # workload side jq-path
  for run in $(seq "$RUNS"); do jq -r "$3 // empty" "$OUT_DIR/tls-raw/$1-$2-$run.json"; done | median
}
sum() { for run in $(seq "$RUNS"); do jq -r "$3" "$OUT_DIR/tls-raw/$1-$2-$run.json"; done | awk '{s+=$1} END {print s+0}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }'; }

{
  echo "| workload | figure | plaintext (median of $RUNS) | TLS (median of $RUNS) | TLS / plaintext |"
  echo "|---|---|---|---|---|"
  row() { # workload label path
    local a b
    a=$(figure "$1" plain "$3"); b=$(figure "$1" tls "$3")
    # A figure the workload does not measure (consume's acks) is null or 0.
    if [[ -z $a || -z $b || $a == 0 ]]; then return; fi
    echo "| $1 | $2 | $a | $b | $(ratio "$a" "$b") |"
  }
  for name in "${ORDER[@]}"; do
    [[ $name == connect ]] && continue
    row "$name" "msg/s" '.msgs_per_sec | floor'
    row "$name" "MB/s" '.mb_per_sec | floor'
    row "$name" "ack p50 µs" '.publish_latency_us.p50'
    row "$name" "ack p99 µs" '.publish_latency_us.p99'
    row "$name" "end-to-end p50 µs" '.e2e_latency_us.p50'
    row "$name" "end-to-end p99 µs" '.e2e_latency_us.p99'
    echo "| $name | lost / dup (sum) | $(sum "$name" plain .lost) / $(sum "$name" plain .duplicates) | $(sum "$name" tls .lost) / $(sum "$name" tls .duplicates) | |"
  done
  if [[ " ${ORDER[*]} " == *" connect "* ]]; then
    echo
    echo "| connection set-up, $CONNECTIONS connections a run | p50 µs (median of $RUNS) | p99 µs (median of $RUNS) | p50 / plaintext |"
    echo "|---|---|---|---|"
    base=$(figure connect plain '.setup_us.p50')
    for side in plain scram tls tls-scram; do
      p50=$(figure connect "$side" '.setup_us.p50'); p99=$(figure connect "$side" '.setup_us.p99')
      echo "| $side | $p50 | $p99 | $(ratio "$base" "$p50") |"
    done
  fi
} | tee "$OUT_DIR/tls.md"
