#!/usr/bin/env bash
# Tries the API as a machine would: schemathesis (pinned below, installed in a venv under
# target/) generates requests from /api/v1/openapi.json of a live civicmap server and checks
# every response: no 5xx, a status the document lists for the operation, its media type, its
# body against the schema, its documented headers.
#
#   ./scripts/schemathesis.sh            on a throw-away cluster of its own (target/schemathesis-db)
#   DATABASE_URL=... ./scripts/schemathesis.sh
#                                        on a database `civicmap_schemathesis` created (afresh)
#                                        on that cluster; scripts/test.sh does this, so the
#                                        demo campaign of the browser tests is never touched
#
# The server serves the demo campaign with the per-client and per-campaign write limits off
# (schemathesis sends thousands of writes from 127.0.0.1), and every request carries an admin
# token, so that the staff routes are tried beyond their 401. The run is bounded in time
# (SCHEMATHESIS_SECONDS, about 2.5 minutes in all by default) and in examples per operation.
# The server's log is searched for panics afterwards: a panic fails the run even if the
# client saw an answer.
#
# Two passes, for one stated reason: the operations that change a campaign's settings or its
# districts, or change or revoke tokens, would otherwise, while the rest is still running,
# close or hide the demo campaign (every other request then stops at 404/409) or revoke the
# very token the run uses (every staff request then stops at 401). They run second, on their
# own, with the same checks. Changing and revoking tokens mostly draws the ids of decoy tokens
# issued for the purpose; should it revoke its own token, the answers that follow are 401s,
# which are still checked against the document.
#
# One worker: with two, schemathesis (hypothesis) parses Python sources in two threads at once,
# which Python 3.11.7 here failed with "SystemError: AST constructor recursion depth mismatch"
# (a CPython bug with threads, not ours); the machine has two cores anyway.
set -uo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5 # Python 3.9+; the CLI options used below are those of schemathesis 4.x.
seconds=${SCHEMATHESIS_SECONDS:-150}
# A free port unless one is given: two runs on one machine (worktrees) must not test each
# other's server.
port=${CIVICMAP_SCHEMATHESIS_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
work=target/schemathesis
venv=$work/venv
bin=target/debug/civicmap
mkdir -p "$work"
# Hypothesis keeps its files here rather than in .hypothesis/ at the top of the clone.
export HYPOTHESIS_STORAGE_DIRECTORY=$PWD/$work/hypothesis

if [ "$("$venv/bin/st" --version 2>/dev/null)" != "st, version $VERSION" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" \
    || { echo "schemathesis: cannot install schemathesis $VERSION from PyPI" >&2; exit 1; }
fi
cargo build --quiet --bin civicmap || exit 1

own_cluster=""
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$own_cluster" ] && "$bin" db stop --data-dir "$own_cluster" >/dev/null 2>&1
}
trap cleanup EXIT
if [ -z "${DATABASE_URL:-}" ]; then
  own_cluster=target/schemathesis-db
  rm -rf "$own_cluster"
  DATABASE_URL=$("$bin" db start --data-dir "$own_cluster" 2>/dev/null) || exit 1
fi
# A database of its own on the same server: postgres://user@host/NAME?params -> .../civicmap_schemathesis?params
db=civicmap_schemathesis
psql=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1)
[ -n "$psql" ] || { echo "schemathesis: psql not found" >&2; exit 1; }
"$psql" "$DATABASE_URL" -qAt -c "SET client_min_messages TO warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || exit 1
export DATABASE_URL
DATABASE_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$DATABASE_URL" "$db")

log=$work/server.log
"$bin" serve --demo --listen "127.0.0.1:$port" --widget-dir widget \
  --submissions-per-ip 0 --submissions-per-campaign 0 2>"$log" &
server=$!
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { tail -n 30 "$log" >&2; exit 1; }

token() { "$bin" token create --name "$1" --role "$2" 2>/dev/null; }
admin=$(token schemathesis admin) || exit 1
tokens_admin=$(token "schemathesis tokens" admin) || exit 1
decoys=()
for role in admin moderator planner planner; do
  t=$(token "decoy $role" "$role") || exit 1
  decoys+=("$(cut -d_ -f2 <<<"$t")")
done

# Most path parameters are names of campaigns: with random names every request would stop at
# "no such campaign" (404), so the demo campaign's name is drawn most of the time and the
# handlers behind the lookup are reached too; the rest of the time the name is generated.
config=$work/schemathesis.toml
cat >"$config" <<EOF
[cache]
directory = "$PWD/$work/cache"

[dictionaries]
campaigns = { values = ["fibre-pour-tous"] }
decoys = { values = [$(IFS=,; echo "${decoys[*]}")] }

[parameters]
"path.slug" = { dictionary = "campaigns", probability = 0.7 }
"path.campaign" = { dictionary = "campaigns", probability = 0.7 }

[[operations]]
include-path-regex = "^/api/v1/admin/tokens/"
parameters = { "path.id" = { dictionary = "decoys", probability = 0.7 } }
EOF

changes=(--include-operation-id update_campaign --include-operation-id import_districts
  --include-operation-id expire_token --include-operation-id revoke_token)
others=(--exclude-operation-id update_campaign --exclude-operation-id import_districts
  --exclude-operation-id expire_token --exclude-operation-id revoke_token)
run() { # TOKEN SECONDS FILTERS...
  local auth=$1 budget=$2
  shift 2
  "$venv/bin/st" --config-file "$config" run "http://127.0.0.1:$port/api/v1/openapi.json" \
    -H "Authorization: Bearer $auth" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples 40 --max-time "$budget" --workers 1 --request-timeout 20 \
    --generation-database none --no-color --report junit --report-dir "$work/report" "$@"
}

failed=0
start=$SECONDS
echo "schemathesis $VERSION: every operation but settings and token changes" >&2
run "$admin" $((seconds * 3 / 4)) "${others[@]}" || failed=1
echo "schemathesis $VERSION: campaign settings, districts, token changes" >&2
run "$tokens_admin" $((seconds / 4)) "${changes[@]}" || failed=1
if grep -n "panicked" "$log" >&2; then
  echo "schemathesis: the server panicked (log: $log)" >&2
  failed=1
fi
echo "schemathesis: $((SECONDS - start)) s" >&2
exit $failed
