#!/usr/bin/env bash
# Where a submission's CPU goes: the civicmap process and the PostgreSQL backends, in CPU
# microseconds per stored submission, with the mean batch size of the group commit, under
# wrk's POST load (benches/post-submission.lua); and, on the same server right after, the CPU
# PostgreSQL spends per row of pgbench's single-row INSERT into a bare table (the anchor of
# benches/submissions-load.sh). CPU per unit of work moves far less than a rate with what
# else runs on the machine, so it tells one change from another on a busy machine.
#
#   benches/submissions-cpu.sh [clients=16] [seconds=10] [serve options...]
#
# e.g. `benches/submissions-cpu.sh 16 10 --submission-writers 1`. PRE_SQL='...' runs SQL on
# the database before the load (e.g. disabling the version triggers to measure them).
# LIMITS=1 turns the rate limits on (30 a minute per client, and a campaign limit too high to
# refuse anything) and sends each request from a client address of its own (X-Forwarded-For,
# believed from loopback), to measure what checking the limits costs a submission (LIMITS=client:
# the per-client limit alone); without it the limits are off, as wrk posts from one address.
# Loopback only; stops by itself. Needs wrk and pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-16}
seconds=${2:-10}
shift $(($# < 2 ? $# : 2))
port=28093
metrics_port=28094
dir=target/bench-cpu
# BIN=path: another build of civicmap (e.g. the one before a change, for an A/B comparison).
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin civicmap
! curl -s -o /dev/null "http://127.0.0.1:$port/" || { echo "port $port is taken by another server" >&2; exit 1; }
bin=${BIN:-target/release/civicmap}
"$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
url=$("$bin" db start --data-dir "$dir" 2>/dev/null)
socket=${url##*host=}
pgbin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")")
psql_() { "$pgbin/psql" -h "$socket" -U civicmap -d civicmap -qAt "$@"; }
if [ -n "${LIMITS:-}" ]; then
  # LIMITS=client: the per-client limit alone (the campaign's off).
  campaign_limit=60000000; [ "$LIMITS" != client ] || campaign_limit=0
  limits=(--submissions-per-ip 30 --submissions-per-campaign "$campaign_limit"
          --trusted-proxy-header x-forwarded-for --trusted-proxies 127.0.0.1/32)
  export SPREAD_CLIENTS=1 # read by benches/post-submission.lua
else
  limits=(--submissions-per-ip 0 --submissions-per-campaign 0)
fi
DATABASE_URL=$url "$bin" serve --demo --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics_port" \
  "${limits[@]}" "$@" 2>"$dir/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
[ -z "${PRE_SQL:-}" ] || psql_ -c "$PRE_SQL"

postmaster=$(head -1 "$dir/pg/postmaster.pid")
ticks() { # CPU (user + system) of the given processes, in clock ticks
  local total=0
  for p in "$@"; do [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$total"
}
backends() { pgrep -P "$postmaster" | tr '\n' ' '; }
per() { awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", t * 1e6 / hz / n}'; }
stored() { psql_ -c "SELECT count(*) FROM submissions"; }
batches() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '/^civicmap_submission_batch_size_(sum|count)/ {printf "%s ", $2}'; }

target="http://127.0.0.1:$port/api/v1/campaigns/fibre-pour-tous/submissions"
wrk -t2 -c"$clients" -d3s -s benches/post-submission.lua "$target" >/dev/null # warm-up
read -r sum0 count0 <<<"$(batches)"
n0=$(stored); s0=$(ticks "$server"); p0=$(ticks $(backends))
out=$(wrk -t2 -c"$clients" -d"${seconds}s" --latency -s benches/post-submission.lua "$target")
s1=$(ticks "$server"); p1=$(ticks $(backends)); n1=$(stored)
read -r sum1 count1 <<<"$(batches)"
n=$((n1 - n0))
! grep -q "Non-2xx" <<<"$out" || { echo "civicmap answered non-2xx responses" >&2; exit 1; }
echo "civicmap, $clients clients: $(awk '/Requests\/sec/ {print $2}' <<<"$out") submissions/s;" \
  "CPU per submission: server $(per $((s1 - s0)) "$n") us, PostgreSQL $(per $((p1 - p0)) "$n") us;" \
  "mean batch $(awk -v s=$((sum1 - sum0)) -v c=$((count1 - count0)) 'BEGIN {printf "%.1f", s / c}') ($n stored)"

psql_ -c "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, geom geometry(Point, 4326) NOT NULL, answers jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
          CREATE INDEX ON bench_insert USING gist (geom);"
echo "INSERT INTO bench_insert (geom, answers) VALUES (ST_SetSRID(ST_MakePoint(2.2066, 48.8924), 4326), '{\"households\": 2, \"connection\": \"adsl\", \"building\": \"apartment\"}');" >"$dir/bare.sql"
"$pgbin/pgbench" -h "$socket" -U civicmap -n -c "$clients" -j 2 -T $((seconds + 2)) -f "$dir/bare.sql" civicmap >"$dir/pgbench.txt" 2>&1 &
pgbench=$!
sleep 1 # pgbench's backends are gone when it ends: measured while it runs
r0=$(psql_ -c "SELECT count(*) FROM bench_insert"); p0=$(ticks $(backends))
sleep "$seconds"
p1=$(ticks $(backends)); r1=$(psql_ -c "SELECT count(*) FROM bench_insert")
wait "$pgbench"
echo "pgbench bare table, $clients clients: $(awk '/^tps/ {print $3}' "$dir/pgbench.txt") rows/s;" \
  "CPU per row: PostgreSQL $(per $((p1 - p0)) $((r1 - r0))) us"
