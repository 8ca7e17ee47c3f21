#!/usr/bin/env bash
# Sustained submissions per second through civicmap (HTTP + validation + PostGIS insert +
# district assignment + counter, one transaction each), next to PostgreSQL's own single-row
# INSERT rate (pgbench) on the same embedded server, in the same run, alternating.
#
#   benches/submissions-load.sh [runs=3] [seconds=15] [concurrency levels="16 64"]
#
# For each level, civicmap gets that many concurrent HTTP clients (wrk) and pgbench that
# many concurrent database clients.
#
# Loopback only; stops by itself. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
seconds=${2:-15}
levels=${3:-16 64}
port=18080
dir=target/bench-submissions
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet --bin civicmap
bin=target/release/civicmap
rm -rf "$dir"
url=$("$bin" db start --data-dir "$dir")
socket=${url##*host=}
pgbin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")")
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# wrk posts from one address at thousands per second: the rate limits (a person's pace) are
# turned off, and the demo campaign has no proof of work or duplicate rule.
DATABASE_URL=$url "$bin" serve --demo --listen "127.0.0.1:$port" \
  --submissions-per-ip 0 --submissions-per-campaign 0 2>"$dir/server.log" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done

psql_() { "$pgbin/psql" -h "$socket" -U civicmap -d civicmap -qAt "$@"; }
# The baseline table has what a submission row has: a point with a GiST index and answers.
psql_ -c "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, geom geometry(Point, 4326) NOT NULL, answers jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
          CREATE INDEX IF NOT EXISTS bench_insert_geom ON bench_insert USING gist (geom);"
cat > "$dir/bare.sql" <<'SQL'
INSERT INTO bench_insert (geom, answers) VALUES (ST_SetSRID(ST_MakePoint(2.2066, 48.8924), 4326), '{"households": 2, "connection": "adsl", "building": "apartment"}');
SQL
# The same row into civicmap's own submissions table, with all its indexes (what civicmap
# writes, without the district lookup, the counter and the idempotency record).
cat > "$dir/table.sql" <<'SQL'
INSERT INTO submissions (id, campaign_id, district_id, geom, answers, status, edit_token_hash) VALUES (gen_random_uuid(), 1, 1, ST_SetSRID(ST_MakePoint(2.2066, 48.8924), 4326), '{"households": 2, "connection": "adsl", "building": "apartment"}', 'published', sha256('x'));
SQL

pgbench_tps() {
  "$pgbin/pgbench" -h "$socket" -U civicmap -n -c "$2" -j 2 -T "$seconds" -f "$dir/$1.sql" civicmap 2>"$dir/pgbench-$1.log" | awk '/^tps/ {print $3}'
}
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else {sub(/s/,"",v); print v*1000}}'; }
# COMPARE_NOTIFY=1: civicmap measured a second time in each run with the triggers that notify
# version changes (migrations/20261201000013_version_notifications.sql) disabled, to measure
# their cost; they are enabled again after.
version_triggers() { # $1: ENABLE or DISABLE
  for t in district_counts_inserted district_counts_updated district_counts_deleted; do
    psql_ -c "ALTER TABLE district_counts $1 TRIGGER $t"
  done
}
civicmap_load() { # $1: concurrency -> "rps,p50,p99"
  local out rps non2xx p50 p99
  out=$(wrk -t2 -c"$1" -d"${seconds}s" --latency -s benches/post-submission.lua \
        "http://127.0.0.1:$port/api/v1/campaigns/fibre-pour-tous/submissions")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  [ -z "$non2xx" ] || { echo "civicmap answered $non2xx non-2xx responses" >&2; exit 1; }
  p50=$(awk '$1=="50%" {print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)
  echo "$rps,$p50,$p99"
}
header="run,concurrency,civicmap_rps,civicmap_p50_ms,civicmap_p99_ms,pgbench_bare_table_tps,pgbench_submissions_table_tps"
[ "${COMPARE_NOTIFY:-0}" = 1 ] && header="$header,civicmap_rps_no_notify,civicmap_p50_ms_no_notify,civicmap_p99_ms_no_notify"
echo "$header"
for run in $(seq "$runs"); do
  for conns in $levels; do
    line="$run,$conns,$(civicmap_load "$conns"),$(pgbench_tps bare "$conns"),$(pgbench_tps table "$conns")"
    if [ "${COMPARE_NOTIFY:-0}" = 1 ]; then
      version_triggers DISABLE
      line="$line,$(civicmap_load "$conns")"
      version_triggers ENABLE
    fi
    echo "$line"
  done
done
stored=$(psql_ -c "SELECT count(*) FROM submissions")
echo "# submissions stored at the end: $stored; ${seconds}s per measurement" >&2
