#!/usr/bin/env bash
# The self-hosted basemap (issue 17): civicmap serving vector tiles from a PMTiles file by range
# reads, against nginx serving the same bytes as files (the tiles as civicmap sends them,
# gzipped, written out as `.mvt.gz` and sent with gzip_static): wrk cycling through every tile
# of the file, `runs` times each, ratios per run. The file is the demo basemap (`serve --demo`
# builds it from the repository's data) unless BASEMAP=/path/to/file.pmtiles names another.
#
#   benches/basemap-vs-nginx.sh [runs=3] [seconds=10] [connections=64]
#
# Release build, loopback, ports 28097 (civicmap) and 28098 (nginx); stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
runs=${1:-3}
seconds=${2:-10}
connections=${3:-64}
cport=28097
nport=28098
dir=target/bench-basemap
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "nginx not found: apt-get install -y nginx, or set NGINX=/path/to/nginx" >&2; exit 1; }
cargo build --release --quiet --bin civicmap
port_free "$cport"
port_free "$nport"
bin=target/release/civicmap
fresh_bench_database

if [ -n "${BASEMAP:-}" ]; then
  basemap=$(readlink -f "$BASEMAP")
  DATABASE_URL=$url "$bin" serve --listen "127.0.0.1:$cport" --basemap "$basemap" 2>"$dir/server.log" &
else
  # --demo writes the demo basemap into the data directory.
  DATABASE_URL=$url "$bin" serve --listen "127.0.0.1:$cport" --demo --data-dir "$dir" 2>"$dir/server.log" &
fi
pids+=($!)
wait_for "http://127.0.0.1:$cport/readyz"
wait_for "http://127.0.0.1:$cport/basemap.json"

# Every tile of the file's bounds at each of its zooms, as the TileJSON says.
curl -sf "http://127.0.0.1:$cport/basemap.json" > "$dir/basemap.json"
python3 - "$dir/basemap.json" > "$dir/all-tiles.txt" <<'PY'
import json, math, sys
t = json.load(open(sys.argv[1]))
w, s, e, n = t["bounds"]
def tile(lon, lat, z):
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    return min(x, 2**z - 1), min(y, 2**z - 1)
for z in range(t["minzoom"], t["maxzoom"] + 1):
    x0, y0 = tile(w, n, z)
    x1, y1 = tile(e, s, z)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            print(z, x, y)
PY
# The tiles the file holds (200, gzipped as stored) into nginx's root; the others (204) left out.
ndir=$(readlink -f "$dir")/nginx
nginx_static_conf "$ndir" "$nport" "public, max-age=3600"
: > "$dir/civicmap.txt"
: > "$dir/nginx.txt"
bytes=0
while read -r z x y; do
  f="$ndir/html/basemap/$z/$x/$y.mvt.gz"
  mkdir -p "$(dirname "$f")"
  code=$(curl -s -H 'Accept-Encoding: gzip' -o "$f" -w '%{http_code}' "http://127.0.0.1:$cport/basemap/$z/$x/$y.mvt")
  if [ "$code" = 200 ]; then
    echo "/basemap/$z/$x/$y.mvt" >> "$dir/civicmap.txt"
    echo "/basemap/$z/$x/$y.mvt" >> "$dir/nginx.txt"
    bytes=$((bytes + $(stat -c %s "$f")))
  else
    rm -f "$f"
  fi
done < "$dir/all-tiles.txt"
ntiles=$(wc -l < "$dir/civicmap.txt")
[ "$ntiles" -gt 0 ] || { echo "no tile in the basemap" >&2; exit 1; }
first=$(head -n1 "$dir/nginx.txt")
nginx_start "$ndir" "$nginx"
pids+=("$nginx_pid")
for _ in $(seq 150); do curl -sf -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$nport$first" && break; sleep 0.2; done
# The same bytes from both.
cmp <(curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$cport$first") \
    <(curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$nport$first") \
  || { echo "civicmap and nginx send different bytes for $first" >&2; exit 1; }

load() { # $1 port, $2 list
  TILE_LIST="$dir/$2.txt" ONCE=0 WRK_THREADS=2 wrk -t2 -c"$connections" -d"${seconds}s" --latency -s benches/tile-list.lua "http://127.0.0.1:$1" 2>&1
}
echo "# basemap: $ntiles tiles ($bytes bytes gzipped) z$(jq -r .minzoom "$dir/basemap.json" 2>/dev/null || echo ?)-z$(jq -r .maxzoom "$dir/basemap.json" 2>/dev/null || echo ?); wrk -t2 -c$connections, ${seconds}s; $(date -u +%FT%TZ), $(nproc) cores"
echo "run,civicmap_rps,civicmap_p50_ms,nginx_rps,nginx_p50_ms,civicmap_vs_nginx"
ratios=()
for run in $(seq "$runs"); do
  c=$(load "$cport" civicmap)
  n=$(load "$nport" nginx)
  for out in "$c" "$n"; do
    ! grep -qE "Non-2xx|Socket errors" <<<"$out" || { echo "errors: $out" >&2; exit 1; }
  done
  r=$(ratio "$(rps <<<"$c")" "$(rps <<<"$n")")
  ratios+=("$r")
  echo "$run,$(rps <<<"$c"),$(latency 50% <<<"$c"),$(rps <<<"$n"),$(latency 50% <<<"$n"),$r"
done
echo "median civicmap/nginx: $(printf '%s\n' "${ratios[@]}" | median) (runs: ${ratios[*]})"
