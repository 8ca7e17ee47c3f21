#!/usr/bin/env bash
# Runs every test against a throw-away PostgreSQL + PostGIS cluster on a private Unix socket,
# started here and stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=target/test-db
bin=target/debug/civicmap
cargo build --quiet --bin civicmap
rm -rf "$dir"
url=$("$bin" db start --data-dir "$dir")
trap '"$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true' EXIT
export DATABASE_URL="$url"
cargo test --no-fail-fast "$@"
