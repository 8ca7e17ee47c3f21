#!/usr/bin/env bash
# Citizens still get through under attack: a soak of the release build with its default rate
# limits, the demo campaign (`--demo`) and its mail handed to tests/smtp_sink.py. For the
# duration, 250 attackers (200 IPv4 addresses of 127.0.0.0/8, some sharing a /24, most alone in
# theirs, and 50 IPv6 addresses of fd0c:1c00::/32 spread over a few /64, /56 and /48) flood it as
# fast as they can, 2 requests in flight each: empty challenges, invalid submissions (bad JSON,
# outside the districts, bad answers), valid ones without proof of work, junk subscriptions and
# valid ones aiming confirmation e-mails at one victim spelled many ways (victim+N@outlook.fr,
# v.i.c.t.i.m+N@gmail.com...), address searches and export variants with junk parameters.
# Meanwhile 50 honest citizens, each from an address in a /24 of its own, contribute every ~6 s
# as the widget does (Idempotency-Key, honeypot and fill-time headers; a proof of work when the
# server asks, up to 3; Retry-After up to 10 s waited, up to 3 times).
#
#   benches/under-attack.sh [--seconds N (300) | --quick (30 s)] [--seed S] [--mail-drain N]
#                           [--campaign-rate N]
#   BIN=target/release/civicmap benches/under-attack.sh --quick    # an existing binary, no build
#
# `--campaign-rate N` gives the server `--submissions-per-campaign N` (default: the server's,
# 6000 a minute), e.g. 1200 to see the campaign under pressure: the attackers' valid submissions
# then spend its allowance and every citizen's submission needs a proof of work or the reserve.
#
# Reports (printed, and in target/bench-under-attack/report.json): attack requests per kind and
# their statuses; honest submissions attempted and acknowledged (201, or a replay), latency
# p50/p95/p99 with and without the time spent solving proofs of work; confirmation e-mails per
# normalised victim mailbox (case, +tag and Gmail's dots removed) during the run and after a
# drain; the server's peak RSS and CPU seconds (and PostgreSQL's); rows lost (acknowledged
# submissions not in the database afterwards).
#
# Every source address is a real TCP peer: the server trusts no proxy header (none set, every
# CIVICMAP_* variable unset), so X-Forwarded-For would change nothing and is never sent. The
# server, the SMTP sink and the driver run in a network namespace of their own (civicmap-soak)
# whose only interface is lo, with the IPv6 addresses added there (`ip addr add … dev lo`; an
# AnyIP route alone does not let a socket bind): the server listens on [::]:18090, which takes
# IPv4 too (IPv4-mapped), and nothing outside the namespace can reach it or be reached. The
# addresses go with the namespace, which the exit trap deletes (also a stale one left by a killed
# run, at the start). Traffic goes to 127.0.0.1 and [::1] only; stops by itself.
#
# Needs root (the namespace), iproute2, Debian's python3-aiosmtpd (for tests/smtp_sink.py), and
# python3 with venv: aiohttp (the citizens' client) and uvloop are installed from PyPI with pip
# into target/bench-under-attack/venv on the first run. On 2 cores the driver shares the
# machine with the server: the attackers get about one core (a bare asyncio HTTP client), the
# citizens' proofs of work are solved by niced workers, their time reported apart.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=300
seed=1
drain=""
campaign_rate=""
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --quick) seconds=30; shift ;;
    --seed) seed=$2; shift 2 ;;
    --mail-drain) drain=$2; shift 2 ;;
    --campaign-rate) campaign_rate=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N | --quick] [--seed S] [--mail-drain N] [--campaign-rate N]" >&2; exit 2 ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ && $drain =~ ^[0-9]*$ && $seed =~ ^[0-9]+$ && $campaign_rate =~ ^[0-9]*$ ]] \
  || { echo "--seconds, --mail-drain, --seed and --campaign-rate take whole numbers" >&2; exit 2; }
[ -n "$drain" ] || drain=$(( seconds >= 120 ? 30 : 10 ))
port=18090
smtp_port=18025
dir=target/bench-under-attack
ns=civicmap-soak
[ "$(id -u)" = 0 ] || { echo "needs root (a network namespace and addresses on its lo)" >&2; exit 1; }
command -v ip >/dev/null || { echo "needs iproute2: apt-get install iproute2" >&2; exit 1; }
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null \
  || { echo "needs Debian's python3-aiosmtpd: apt-get install python3-aiosmtpd" >&2; exit 1; }

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin civicmap
  BIN=target/release/civicmap
fi
bin=$(readlink -f "$BIN")
mkdir -p "$dir"
venv=$dir/venv
if ! "$venv/bin/python" -c 'import aiohttp' 2>/dev/null; then
  echo "installing aiohttp and uvloop from PyPI into $venv ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiohttp>=3.9,<4' 'uvloop>=0.19'
fi
py=$venv/bin/python
pgbin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")")

# The server takes its defaults: no CIVICMAP_* setting from the environment (a trusted proxy
# header, limits turned off) may change what is measured.
for v in $(compgen -e | grep '^CIVICMAP_' || true); do unset "$v"; done
unset DATABASE_URL

db=$dir/db
sink=$dir/smtp
server=""; smtp=""; driver=""
cleanup() {
  for p in $driver $server $smtp; do kill "$p" 2>/dev/null || true; done
  for p in $driver $server $smtp; do wait "$p" 2>/dev/null || true; done
  # What the driver started (its citizens' process, proof workers) if it was killed first.
  if ip netns list | grep -qx "$ns\( .*\)\?"; then
    for p in $(ip netns pids "$ns"); do kill "$p" 2>/dev/null || true; done
  fi
  "$bin" db stop --data-dir "$db" >/dev/null 2>&1 || true
  if ip netns list | grep -qx "$ns\( .*\)\?"; then
    ip -n "$ns" -6 addr flush dev lo scope global 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A namespace left by a killed run has no process of ours any more: remove it.
if ip netns list | grep -qx "$ns\( .*\)\?"; then
  [ -z "$(ip netns pids "$ns")" ] || { echo "namespace $ns is in use (another run?)" >&2; exit 1; }
  ip netns del "$ns"
fi
ip netns add "$ns"
ip -n "$ns" link set lo up
"$py" benches/under_attack.py ipv6 | sed 's|.*|address add &/128 dev lo nodad|' | ip -n "$ns" -batch -

"$bin" db stop --data-dir "$db" >/dev/null 2>&1 || true
rm -rf "$db" "$sink" "$dir/report.json"
mkdir -p "$db"
url=$("$bin" db start --data-dir "$db" 2>/dev/null)
socket=${url##*host=}

# Each background process is started by `ip netns exec` itself, which execs it: $! is its pid
# (the server's is sampled for RSS and CPU), not a subshell's.
ip netns exec "$ns" /usr/bin/python3 tests/smtp_sink.py "$smtp_port" "$sink" >"$dir/smtp.log" 2>&1 &
smtp=$!
for _ in $(seq 100); do [ -e "$sink/ready" ] && break; sleep 0.1; done
[ -e "$sink/ready" ] || { echo "the SMTP sink did not start: $dir/smtp.log" >&2; exit 1; }

flags=(serve --demo --listen "[::]:$port" --smtp-url "smtp://127.0.0.1:$smtp_port"
       --mail-from "Ville de Nanterre <carte@nanterre.test>" --public-url "http://127.0.0.1:$port")
[ -n "$campaign_rate" ] && flags+=(--submissions-per-campaign "$campaign_rate")
DATABASE_URL=$url ip netns exec "$ns" "$bin" "${flags[@]}" 2>"$dir/server.log" &
server=$!
up=""
for _ in $(seq 600); do
  ip netns exec "$ns" curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && { up=1; break; }
  kill -0 "$server" 2>/dev/null || break
  sleep 0.2
done
[ -n "$up" ] || { echo "the server did not start: $dir/server.log" >&2; tail -n 20 "$dir/server.log" >&2; exit 1; }
postmaster=$(head -n1 "$(find "$db" -name postmaster.pid | head -n1)" 2>/dev/null || true)

echo "civicmap $("$bin" --version 2>/dev/null | awk '{print $2}') ($bin), $(nproc) cores; ${seconds} s under attack, seed $seed" >&2
# The driver stops by itself; `timeout` is the backstop.
ip netns exec "$ns" timeout --signal=INT --kill-after=30 $(( seconds + drain + 240 )) \
  "$py" benches/under_attack.py run --port "$port" --seconds "$seconds" --seed "$seed" \
  --out "$dir" --server-pid "$server" ${postmaster:+--postmaster-pid "$postmaster"} \
  --sink-dir "$sink" --psql "$pgbin/psql" --pg-socket "$socket" --mail-drain "$drain" \
  --server-info "$bin ${flags[*]}" &
driver=$!
wait "$driver"
driver=""
echo "report: $dir/report.json (server log: $dir/server.log)" >&2
