#!/usr/bin/env bash
# Checks that .sqlx/ is current: the query data that sqlx's macros (`sqlx::query!` and co.)
# read instead of a database, since every build is offline (SQLX_OFFLINE=true in
# .cargo/config.toml). The library is type-checked again with SQLX_OFFLINE=false against a
# freshly migrated database of this script's own; sqlx-macros then describes every query to
# PostgreSQL and writes its data to $SQLX_OFFLINE_DIR, a temporary directory compared with .sqlx/.
#
#   scripts/check-sqlx.sh           check (scripts/test.sh runs it)
#   scripts/check-sqlx.sh --write   regenerate .sqlx/ (after changing a query or a migration)
#
# The server is $DATABASE_URL's when set (scripts/test.sh's cluster), else an embedded cluster
# under target/sqlx-db started and stopped here. Either way the database civicmap_sqlx is
# created afresh and `civicmap migrate` applies every migration to it.
set -uo pipefail
cd "$(dirname "$0")/.."

write=false
case "${1:-}" in
  --write) write=true ;;
  "") ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

bin=target/debug/civicmap
# Offline, from .sqlx/. When .sqlx/ is what is out of date (--write after changing a query),
# the last binary built does: it is used only to start a cluster and migrate.
if ! cargo build --quiet --bin civicmap; then
  if $write && [ -x "$bin" ]; then
    echo "check-sqlx: civicmap does not build from .sqlx/; using the last $bin to start and migrate the database (rebuild it first if you added a migration)" >&2
  else
    exit 1
  fi
fi

cluster=""
out=$(mktemp -d)
cleanup() {
  rm -rf "$out" "$out.log" "$out.diff"
  [ -n "$cluster" ] && "$bin" db stop --data-dir "$cluster" >/dev/null 2>&1
}
trap cleanup EXIT

server=${DATABASE_URL:-}
if [ -z "$server" ]; then
  cluster=target/sqlx-db
  server=$("$bin" db start --data-dir "$cluster" 2>"$out.log") || { cat "$out.log" >&2; exit 1; }
fi
# The same server and options, database civicmap_sqlx.
base=${server%%\?*}
db="${base%/*}/civicmap_sqlx${server#"$base"}"
export PGOPTIONS="-c client_min_messages=warning"
psql -q -v ON_ERROR_STOP=1 "$server" \
  -c "DROP DATABASE IF EXISTS civicmap_sqlx" -c "CREATE DATABASE civicmap_sqlx" || exit 1
"$bin" migrate --database-url "$db" >"$out.log" 2>&1 \
  || { cat "$out.log" >&2; echo "check-sqlx: migrating civicmap_sqlx failed" >&2; exit 1; }

# `cargo rustc` with an argument no other build passes (a fresh --cfg): the library is
# type-checked again (the macros expanded) every time, while the artefacts of ordinary
# builds stay as they are.
SQLX_OFFLINE=false DATABASE_URL="$db" SQLX_OFFLINE_DIR="$out" \
  cargo rustc --quiet --lib --profile check -- --cfg "sqlx_check=\"$(date +%s%N)\"" \
  || { echo "check-sqlx: the queries do not check against the migrated database" >&2; exit 1; }
psql -q "$server" -c "DROP DATABASE IF EXISTS civicmap_sqlx" >/dev/null 2>&1

if $write; then
  rm -rf .sqlx && mkdir .sqlx && cp "$out"/query-*.json .sqlx/ 2>/dev/null
  echo "check-sqlx: .sqlx/ written ($(ls .sqlx | wc -l) queries)"
  exit 0
fi
if ! diff -r .sqlx "$out" >"$out.diff" 2>&1; then
  sed "s#$out#(the queries as they are)#g" "$out.diff" | head -n 40 >&2
  echo "check-sqlx: .sqlx/ is out of date with the queries or the migrations;" \
    "run scripts/check-sqlx.sh --write and commit .sqlx/" >&2
  exit 1
fi
echo "check-sqlx: .sqlx/ is current ($(ls .sqlx | wc -l) queries)"
