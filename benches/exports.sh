#!/usr/bin/env bash
# Planner exports at scale, against the release build and its embedded PostGIS:
#   1. district aggregates (maintained counts) and H3 resolution 8 aggregates: latency with wrk,
#      one connection, median (p50) and p99 of each run;
#   2. the raw export of every published submission: rows per second, and the server's memory
#      before and at its peak during the export;
#   3. the bulk import of the same rows (the raw export's CSV) into a new campaign with the same
#      form and districts, next to PostgreSQL's COPY of the same file into a plain table on the
#      same server, in the same run.
#
#   benches/exports.sh [runs=3] [size=1000000] [seconds=10]
#
# Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
runs=${1:-3}
size=${2:-1000000}
seconds=${3:-10}
port=18085
dir=target/bench-exports
slug=fibre-pour-tous
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet --bin civicmap
bin=target/release/civicmap
"$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
mkdir -p "$dir"
url=$("$bin" db start --data-dir "$dir" 2>/dev/null)
socket=${url##*host=}
pgbin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")")
psql_() { "$pgbin/psql" -h "$socket" -U civicmap -d civicmap -qAt "$@"; }
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true' EXIT
export DATABASE_URL=$url

echo "loading $size submissions..." >&2
"$bin" demo >/dev/null 2>&1
have=$(psql_ -c "SELECT count(*) FROM submissions")
"$bin" demo --more-points $((size - have)) --seed "$size" >/dev/null 2>&1
rows=$(psql_ -c "SELECT count(*) FROM submissions WHERE status = 'published'")
# The points just added are counted by a release (the map's hexagons come from releases).
release_started=$(date +%s.%N)
"$bin" release "$slug" >/dev/null
release_seconds=$(echo "$(date +%s.%N) - $release_started" | bc)
planner=$("$bin" token create --name "bench planner" --role planner)
admin=$("$bin" token create --name "bench admin" --role admin)

"$bin" serve --listen "127.0.0.1:$port" --submissions-per-ip 0 --submissions-per-campaign 0 \
  2>"$dir/server.log" &
server=$!
for _ in $(seq 150); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.2; done
base="http://127.0.0.1:$port"


results="$dir/results.txt"
: > "$results"
echo "submissions: $rows published ($(date -u +%FT%TZ), $(nproc) cores)" | tee -a "$results"
echo "release counting them: ${release_seconds} s (whole civicmap release command)" | tee -a "$results"

for path in "aggregates.csv" "aggregates.csv?by=h3:8" "aggregates.geojson?by=h3:8"; do
  p50s=(); p99s=(); rps=()
  for run in $(seq "$runs"); do
    out=$(wrk -t1 -c1 -d"${seconds}s" --latency "$base/api/v1/campaigns/$slug/$path")
    p50s+=("$(echo "$out" | latency 50%)")
    p99s+=("$(echo "$out" | latency 99%)")
    rps+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
  done
  echo "GET $path: p50 $(printf '%s\n' "${p50s[@]}" | median) ms, p99 $(printf '%s\n' "${p99s[@]}" | median) ms, $(printf '%s\n' "${rps[@]}" | median) req/s (medians of $runs runs of ${seconds}s, 1 connection; p50 per run: ${p50s[*]})" | tee -a "$results"
done

rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
for format in csv geojson; do
  speeds=(); peaks=()
  for run in $(seq "$runs"); do
    before=$(rss)
    peak=$before
    start=$(date +%s.%N)
    curl -sf -H "Authorization: Bearer $planner" -o "$dir/raw.$format" \
      "$base/api/v1/admin/campaigns/$slug/submissions.$format" &
    fetch=$!
    while kill -0 "$fetch" 2>/dev/null; do
      now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
      sleep 0.05
    done
    wait "$fetch"
    end=$(date +%s.%N)
    speeds+=("$(echo "$rows / ($end - $start)" | bc -l | xargs printf '%.0f')")
    peaks+=("$(( (peak - before) / 1024 ))")
  done
  size_mb=$(( $(stat -c %s "$dir/raw.$format") / 1024 / 1024 ))
  echo "raw export .$format: $(printf '%s\n' "${speeds[@]}" | median) rows/s (median of $runs; runs: ${speeds[*]}), $size_mb MiB, server memory growth at peak: ${peaks[*]} MiB" | tee -a "$results"
done

# The same rows, imported into a new campaign with the demo's form and districts.
form=$(curl -sf "$base/api/v1/campaigns/$slug" | jq -c .form)
header=$(head -n1 "$dir/raw.csv")
columns=$(echo "$header" | tr ',' '\n' | sed 's/.*/"&" text/' | paste -sd, -)
psql_ -c "CREATE TABLE copy_bench ($columns)"
imports=(); copies=()
for run in $(seq "$runs"); do
  target="import-bench-$run"
  curl -sf -o /dev/null -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
    -d "{\"slug\": \"$target\", \"title\": {\"fr\": \"Import\", \"en\": \"Import\"}, \"form\": $form}" \
    "$base/api/v1/admin/campaigns"
  curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $admin" -H 'content-type: application/geo+json' \
    --data-binary @data/nanterre-quartiers.geojson "$base/api/v1/admin/campaigns/$target/districts"
  curl -sf -o /dev/null -X PATCH -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
    -d '{"status": "open"}' "$base/api/v1/admin/campaigns/$target"
  start=$(date +%s.%N)
  "$bin" import "$target" "$dir/raw.csv" --created-at created_at >"$dir/import.log" 2>&1
  end=$(date +%s.%N)
  imports+=("$(echo "$rows / ($end - $start)" | bc -l | xargs printf '%.0f')")
  psql_ -c "TRUNCATE copy_bench"
  start=$(date +%s.%N)
  psql_ -c "\\copy copy_bench FROM '$dir/raw.csv' CSV HEADER"
  end=$(date +%s.%N)
  copies+=("$(echo "$rows / ($end - $start)" | bc -l | xargs printf '%.0f')")
done
imported=$(psql_ -c "SELECT count(*) FROM submissions s JOIN campaigns c ON c.id = s.campaign_id WHERE c.slug = 'import-bench-1'")
im=$(printf '%s\n' "${imports[@]}" | median)
cp=$(printf '%s\n' "${copies[@]}" | median)
echo "import: $im rows/s, whole command (median of $runs; runs: ${imports[*]}; $imported rows in import-bench-1)" | tee -a "$results"
echo "COPY of the same file into a plain table: $cp rows/s (runs: ${copies[*]}); import / COPY = $(echo "$im / $cp" | bc -l | xargs printf '%.2f')" | tee -a "$results"
