#!/usr/bin/env bash
# Runs every test against a throw-away PostgreSQL + PostGIS cluster on a private Unix socket,
# started here and stopped on exit, whatever happens:
#   0. .sqlx/, the query data every build reads instead of a database (SQLX_OFFLINE=true in
#      .cargo/config.toml), is checked against the migrations (scripts/check-sqlx.sh);
#      the widget's bundles are built (npm ci, esbuild), for the API tests that serve them;
#   1. the Rust unit and API tests (cargo test; each API test gets its own database);
#   2. the widget's unit tests (node's test runner);
#   3. the widget's browser tests: headless Chromium against a real civicmap server serving the
#      demo campaign from the same cluster, sending e-mail to a real SMTP server (tests/smtp_sink.py).
#   4. schemathesis against /api/v1/openapi.json of another server, on a database of its own in
#      the same cluster (scripts/schemathesis.sh): no 5xx, every response as documented.
# Arguments are passed to `cargo test`; with arguments, the .sqlx/ check, the widget build and
# tests are skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

dir=target/test-db
bin=target/debug/civicmap
cargo build --quiet --bin civicmap || exit 1
rm -rf "$dir"
url=$("$bin" db start --data-dir "$dir") || exit 1
server=""
sink=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$sink" ] && kill "$sink" 2>/dev/null && wait "$sink" 2>/dev/null
  "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT
export DATABASE_URL="$url"

failed=()
# Builds never read the database for sqlx's macros (.cargo/config.toml), even with
# DATABASE_URL set as it is now: .sqlx/ is checked here against a database of its own.
if [ $# -eq 0 ]; then
  ./scripts/check-sqlx.sh || failed+=("sqlx query data (.sqlx/)")
fi
# The widget's bundles first: the API tests serve and scan them (tests/api/privacy.rs).
if [ $# -eq 0 ]; then
  (cd widget && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build) \
    || failed+=("widget build")
fi
cargo test --no-fail-fast "$@" || failed+=("cargo test")
if [ $# -gt 0 ]; then
  [ ${#failed[@]} -eq 0 ] || { echo "FAILED: ${failed[*]}" >&2; exit 1; }
  exit 0
fi

(cd widget && npm test) || failed+=("widget unit tests")

# A free port unless one is given: two runs on one machine (worktrees) must not test each
# other's server.
port=${CIVICMAP_E2E_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
# A real SMTP server (tests/smtp_sink.py, Debian's aiosmtpd) for the "follow my district" form;
# the browser tests read what it received in $SMTP_SINK_DIR/json.
py=/usr/bin/python3; [ -x "$py" ] || py=python3
smtp_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SMTP_SINK_DIR="$PWD/$dir/smtp"
"$py" tests/smtp_sink.py "$smtp_port" "$SMTP_SINK_DIR" 2>"$dir/smtp-sink.log" &
sink=$!
for _ in $(seq 50); do [ -f "$SMTP_SINK_DIR/ready" ] && break; sleep 0.1; done
# The browser tests post many submissions from 127.0.0.1: no per-address rate limit.
"$bin" serve --demo --listen "127.0.0.1:$port" --widget-dir widget --submissions-per-ip 0 \
  --smtp-url "smtp://127.0.0.1:$smtp_port" --mail-from "Civicmap e2e <carte@example.org>" \
  --public-url "http://127.0.0.1:$port" --notice-interval-ms 500 \
  2>"$dir/e2e-server.log" &
server=$!
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
(cd widget && CIVICMAP_URL="http://127.0.0.1:$port" SCREENSHOT_DIR=../docs/screenshots npm run --silent e2e) \
  || { failed+=("widget browser tests"); tail -n 30 "$dir/e2e-server.log" >&2; }

# Its own server and database (civicmap_schemathesis): the demo campaign above is not touched.
./scripts/schemathesis.sh || failed+=("schemathesis")

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all test suites passed"
