#!/usr/bin/env bash
# Address search (issue 17): the import of `size` synthetic addresses in the BAN's format (a
# département's size by default), then as-you-type suggestions under load: wrk at `connections`
# connections cycling through typed, abbreviated, accented, misspelt and half-typed queries on
# the demo campaign (benches/address-queries.lua). Release build, embedded PostGIS, loopback.
#
#   benches/addresses.sh [runs=3] [size=600000] [seconds=10] [connections=32]
#
# Stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
runs=${1:-3}
size=${2:-600000}
seconds=${3:-10}
connections=${4:-32}
port=28096
dir=target/bench-addresses
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin civicmap
! curl -s -o /dev/null "http://127.0.0.1:$port/" || { echo "port $port is taken by another server" >&2; exit 1; }
bin=target/release/civicmap
"$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
mkdir -p "$dir"
url=$("$bin" db start --data-dir "$dir" 2>/dev/null)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true' EXIT
export DATABASE_URL=$url
"$bin" demo >/dev/null 2>&1


"$bin" addresses synthetic "$dir/addresses.csv" --rows "$size" --seed 7 >/dev/null 2>&1
rates=()
for run in $(seq "$runs"); do
  start=$(date +%s.%N)
  "$bin" addresses import "$dir/addresses.csv" >/dev/null 2>&1
  end=$(date +%s.%N)
  rates+=("$(awk -v n="$size" -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", n / (e - s)}')")
done
echo "import of $size synthetic addresses (whole command; runs 2+ replace the commune): $(printf '%s\n' "${rates[@]}" | median) rows/s (median of $runs; runs: ${rates[*]})"

"$bin" serve --listen "127.0.0.1:$port" 2>"$dir/server.log" &
server=$!
for _ in $(seq 150); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.2; done
base="http://127.0.0.1:$port/api/v1/campaigns/fibre-pour-tous/addresses"
curl -sf "$base?q=12%20r%20synthetique%20des%20acacias" | head -c 200; echo
p50s=(); p99s=(); rps=()
for run in $(seq "$runs"); do
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s benches/address-queries.lua "$base")
  ! grep -q "Non-2xx" <<<"$out" || { echo "non-2xx answers: $out" >&2; exit 1; }
  p50s+=("$(latency 50% <<<"$out")")
  p99s+=("$(latency 99% <<<"$out")")
  rps+=("$(awk '/Requests\/sec/ {print $2}' <<<"$out")")
done
echo "suggestions, wrk -t2 -c$connections: p50 $(printf '%s\n' "${p50s[@]}" | median) ms, p99 $(printf '%s\n' "${p99s[@]}" | median) ms, $(printf '%s\n' "${rps[@]}" | median) req/s (medians of $runs runs of ${seconds}s; p50 per run: ${p50s[*]}; p99: ${p99s[*]})"
