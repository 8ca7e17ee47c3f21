#!/usr/bin/env bash
# One civicmap instance against two on the same database (issue 16: the instance-scaling
# figure): the same load through nginx (round robin over keep-alive upstream connections) to
# one instance, then to two, then straight to one without nginx (what nginx itself costs):
# submissions (wrk posting as benches/submissions-load.sh does) and warm vector tiles (every
# tile z10-z16 over Nanterre, as benches/tiles-vs-martin.sh). Every process shares this
# machine's cores: on 2 cores, two instances compete with PostgreSQL and nginx for them, so the
# figure says what a second instance buys when CPU is already the limit, not what it buys on a
# second machine.
#
#   benches/instances.sh [runs=3] [seconds=10] [connections=64] [submissions=100000]
#
# Release build, loopback, ports 28111-28114; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
runs=${1:-3}
seconds=${2:-10}
connections=${3:-64}
size=${4:-100000}
a=28111 b=28112 one=28113 two=28114
dir=target/bench-instances
slug=fibre-pour-tous
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "nginx not found: apt-get install -y nginx, or set NGINX=/path/to/nginx" >&2; exit 1; }
cargo build --release --quiet --bin civicmap
for p in $a $b $one $two; do port_free "$p"; done
bin=target/release/civicmap
fresh_bench_database
export DATABASE_URL=$url
"$bin" demo --more-points "$size" >/dev/null 2>&1
for port in $a $b; do
  # wrk posts from one address: the rate limits (a person's pace) are off.
  "$bin" serve --listen "127.0.0.1:$port" --submissions-per-ip 0 --submissions-per-campaign 0 \
    2>>"$dir/server-$port.log" &
  pids+=($!)
  wait_for "http://127.0.0.1:$port/readyz"
done

ndir=$(readlink -f "$dir")/nginx
mkdir -p "$ndir"
{
  nginx_conf_head "$ndir"
  cat <<NGINX
  upstream one { server 127.0.0.1:$a; keepalive 64; }
  upstream two { server 127.0.0.1:$a; server 127.0.0.1:$b; keepalive 64; }
  server {
    listen 127.0.0.1:$one;
    location / { proxy_pass http://one; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$two;
    location / { proxy_pass http://two; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
} > "$ndir/nginx.conf"
nginx_start "$ndir" "$nginx"
pids+=("$nginx_pid")
wait_for "http://127.0.0.1:$one/readyz"
wait_for "http://127.0.0.1:$two/readyz"

python3 - "$dir" <<'PY'
import math, sys
w, s, e, n = 2.1693, 48.87423, 2.23423, 48.9206
def tile(lon, lat, z):
    k = 2 ** z; r = math.radians(lat)
    return int((lon + 180) / 360 * k), int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * k)
paths = []
for z in range(10, 17):
    x0, y0 = tile(w, n, z); x1, y1 = tile(e, s, z)
    paths += [f"/tiles/fibre-pour-tous/{z}/{x}/{y}.mvt" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
open(f"{sys.argv[1]}/tiles.txt", "w").write("".join(p + "\n" for p in paths))
PY
tiles() { # $1 port
  TILE_LIST="$dir/tiles.txt" ONCE=0 WRK_THREADS=2 wrk -t2 -c"$connections" -d"${seconds}s" -s benches/tile-list.lua "http://127.0.0.1:$1" 2>&1
}
posts() { # $1 port
  wrk -t2 -c"$connections" -d"${seconds}s" -s benches/post-submission.lua "http://127.0.0.1:$1/api/v1/campaigns/$slug/submissions" 2>&1
}
checked() { ! grep -qE "Non-2xx|Socket errors" <<<"$1" || { echo "errors: $1" >&2; exit 1; }; rps <<<"$1"; }
# Warm both instances' tile caches.
tiles "$a" >/dev/null
tiles "$b" >/dev/null

echo "# $(date -u +%FT%TZ), $(nproc) cores, $size + demo submissions, wrk -t2 -c$connections, ${seconds}s"
echo "run,tiles_direct_1,tiles_nginx_1,tiles_nginx_2,tiles_2_vs_1,posts_direct_1,posts_nginx_1,posts_nginx_2,posts_2_vs_1"
tr=(); pr=()
for run in $(seq "$runs"); do
  td=$(checked "$(tiles "$a")")
  t1=$(checked "$(tiles "$one")")
  t2=$(checked "$(tiles "$two")")
  pd=$(checked "$(posts "$a")")
  p1=$(checked "$(posts "$one")")
  p2=$(checked "$(posts "$two")")
  tr+=("$(ratio "$t2" "$t1")"); pr+=("$(ratio "$p2" "$p1")")
  echo "$run,$td,$t1,$t2,${tr[-1]},$pd,$p1,$p2,${pr[-1]}"
done
echo "median two/one through nginx: tiles $(printf '%s\n' "${tr[@]}" | median), submissions $(printf '%s\n' "${pr[@]}" | median)"
