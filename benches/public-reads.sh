#!/usr/bin/env bash
# Public reads under a burst of readers (a campaign shared on social media): requests per second
# and latency of each public read door with wrk at many connections, against the release build,
# its embedded PostGIS and `size` published submissions. Readers send `Accept-Encoding: gzip`
# as browsers do.
#
#   benches/public-reads.sh [runs=3] [size=1000000] [seconds=10] [connections=64]
#
# REUSE=1 keeps the database of the previous run (target/bench-reads) when it already holds
# `size` submissions. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
runs=${1:-3}
size=${2:-1000000}
seconds=${3:-10}
connections=${4:-64}
port=28086
dir=target/bench-reads
slug=fibre-pour-tous
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet --bin civicmap
! curl -s -o /dev/null "http://127.0.0.1:$port/" || { echo "port $port is taken by another server" >&2; exit 1; }
bin=target/release/civicmap
"$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true
[ "${REUSE:-0}" = 1 ] || rm -rf "$dir"
mkdir -p "$dir"
url=$("$bin" db start --data-dir "$dir" 2>/dev/null)
socket=${url##*host=}
pgbin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")")
psql_() { "$pgbin/psql" -h "$socket" -U civicmap -d civicmap -qAt "$@"; }
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true' EXIT
export DATABASE_URL=$url

have=$(psql_ -c "SELECT count(*) FROM submissions" 2>/dev/null || echo 0)
if [ "$have" -lt "$size" ]; then
  echo "loading $size submissions..." >&2
  [ "$have" -gt 0 ] || "$bin" demo >/dev/null 2>&1
  have=$(psql_ -c "SELECT count(*) FROM submissions")
  "$bin" demo --more-points $((size - have)) --seed "$size" >/dev/null 2>&1
fi
rows=$(psql_ -c "SELECT count(*) FROM submissions WHERE status = 'published'")

"$bin" serve --listen "127.0.0.1:$port" --submissions-per-ip 0 --submissions-per-campaign 0 \
  2>"$dir/server.log" &
server=$!
for _ in $(seq 150); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.2; done
base="http://127.0.0.1:$port"


results="$dir/results.txt"
: > "$results"
echo "submissions: $rows published ($(date -u +%FT%TZ), $(nproc) cores, wrk -t2 -c$connections, ${seconds}s runs)" | tee -a "$results"

api="/api/v1/campaigns/$slug"
for path in "$api/districts.geojson" "$api/aggregates.csv" "$api/aggregates.geojson" \
            "$api/aggregates.geojson?by=h3:8" "$api/aggregates.csv?by=h3:8" \
            "$api/timeseries.csv" "$api/timeseries.csv?interval=week&by=district" "/tiles/$slug.json"; do
  size_gz=$(curl -sf -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "$base$path")
  size_raw=$(curl -sf -o /dev/null -w '%{size_download}' "$base$path")
  p50s=(); p99s=(); rps=(); errors=()
  for run in $(seq "$runs"); do
    out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -H 'Accept-Encoding: gzip' "$base$path")
    p50s+=("$(echo "$out" | latency 50%)")
    p99s+=("$(echo "$out" | latency 99%)")
    rps+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
    errors+=("$(echo "$out" | awk '/Non-2xx/ {print $NF; found=1} END {if (!found) print 0}')")
  done
  echo "GET $path ($size_raw bytes, $size_gz gzipped): $(printf '%s\n' "${rps[@]}" | median) req/s, p50 $(printf '%s\n' "${p50s[@]}" | median) ms, p99 $(printf '%s\n' "${p99s[@]}" | median) ms (medians of $runs; req/s per run: ${rps[*]}; non-2xx: ${errors[*]})" | tee -a "$results"
done
