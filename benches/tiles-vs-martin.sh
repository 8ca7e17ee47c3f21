#!/usr/bin/env bash
# civicmap's tiles next to Martin 1.14's and nginx's, on the same submissions in the same
# PostGIS, over the same list of distinct tiles from z10 to z16 covering Nanterre, with the same
# load tool (wrk) and concurrency, at each data size, all in one run:
#   - Martin serving the raw `submissions` table (a table source: every point in the tile);
#   - Martin serving a *function source* that aggregates like civicmap (the fair anchor): the
#     published submissions counted in one SQL function on a square grid of at least the
#     campaign's public precision (on the ground) and at most 64 x 64 cells a tile, cells below
#     5 left out, ST_AsMVT (`demand_grid` below);
#   - nginx with `gzip_static`, serving civicmap's own tiles as precompressed files (the
#     ceiling: what a static file server does with the same bytes).
#
#   benches/tiles-vs-martin.sh [runs=3] [seconds=10] [concurrency=16] [sizes="100000 1000000"]
#
# Martin is a benchmark-only tool, not a dependency. Install it once (about 12 minutes here):
#   cargo install martin --version 1.14.0 --locked --no-default-features --features postgres
# and point MARTIN at the binary if it is not on PATH. nginx too (NGINX=/path/to/nginx):
#   apt-get install -y nginx
# It runs here as an unprivileged process (as `nobody` when this script runs as root) with its
# own configuration and prefix in target/bench-tiles/nginx, on a loopback port; the system's
# nginx service is not used (stop it if the package started one: it does not matter to the
# figures, but it takes port 80). Loopback only; stops by itself.
#
# Figures per run: cold (tile caches off: every request builds its tile) for civicmap and both
# Martin sources; warm (caches on, filled by a first pass) for civicmap and both Martin sources;
# nginx; the ratios of that run. Then tile sizes per zoom, and the time from a committed
# submission to a tile that contains it.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
runs=${1:-3}
seconds=${2:-10}
conns=${3:-16}
sizes=${4:-100000 1000000}
martin=${MARTIN:-$(command -v martin || echo /tmp/martin/bin/martin)}
[ -x "$martin" ] || { echo "Martin not found: set MARTIN=/path/to/martin" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
cport=18081
mport=18082
nport=18083
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "nginx not found: apt-get install -y nginx, or set NGINX=/path/to/nginx" >&2; exit 1; }
dir=target/bench-tiles
slug=fibre-pour-tous

cargo build --release --quiet --bin civicmap
bin=target/release/civicmap
"$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true
# REUSE=1: keep the database of the previous run (its submissions; sizes already there are not
# generated again). SIZES=0: skip the tile sizes and freshness steps (Martin's table source takes
# minutes to send its 1M tiles twice).
[ "${REUSE:-0}" = 1 ] || rm -rf "$dir"
url=$("$bin" db start --data-dir "$dir" 2>/dev/null)
socket=${url##*host=}
pgbin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")")
psql_() { "$pgbin/psql" -h "$socket" -U civicmap -d civicmap -qAt "$@"; }
pids=()
stop_servers() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=(); }
trap 'stop_servers; "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true' EXIT

[ "${REUSE:-0}" = 1 ] || DATABASE_URL=$url "$bin" demo >/dev/null 2>&1

# Every tile from z10 to z16 that touches Nanterre's bounds.
python3 - "$dir" <<'PY'
import math, sys
d = sys.argv[1]
w, s, e, n = 2.1693, 48.87423, 2.23423, 48.9206
def tile(lon, lat, z):
    k = 2 ** z; r = math.radians(lat)
    return int((lon + 180) / 360 * k), int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * k)
tiles = []
for z in range(10, 17):
    x0, y0 = tile(w, n, z); x1, y1 = tile(e, s, z)
    tiles += [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
open(f"{d}/tiles.txt", "w").write("".join(f"{z} {x} {y}\n" for z, x, y in tiles))
open(f"{d}/civicmap.txt", "w").write("".join(f"/tiles/fibre-pour-tous/{z}/{x}/{y}.mvt\n" for z, x, y in tiles))
open(f"{d}/martin.txt", "w").write("".join(f"/submissions/{z}/{x}/{y}\n" for z, x, y in tiles))
open(f"{d}/martin-function.txt", "w").write("".join(f"/demand_grid/{z}/{x}/{y}\n" for z, x, y in tiles))
PY
ntiles=$(wc -l < "$dir/tiles.txt")

cat > "$dir/martin.yaml" <<YAML
listen_addresses: "127.0.0.1:$mport"
cache_size_mb: \${MARTIN_CACHE_MB}
postgres:
  connection_string: "postgresql:///civicmap?host=$socket&user=civicmap"
  auto_publish: false
  tables:
    submissions:
      schema: public
      table: submissions
      srid: 4326
      geometry_column: geom
      geometry_type: POINT
      extent: 4096
      buffer: 64
      clip_geom: true
      properties:
        status: text
  functions:
    demand_grid:
      schema: public
      function: demand_grid
      minzoom: 0
      maxzoom: 22
YAML

# The fair anchor: what a GIS engineer would write for Martin to serve the same aggregate as
# civicmap's demand layer, in one SQL function. Cells are squares of Web Mercator aligned on
# the world, as wide as the larger of 1/64 of the tile and the campaign's public precision on
# the ground at the tile's centre; only published submissions of the campaign; cells with
# fewer than 5 left out; one point per cell at its centre with its count.
psql_ <<SQL
CREATE OR REPLACE FUNCTION public.demand_grid(z integer, x integer, y integer)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS \$\$
  WITH tile AS (
    SELECT e, ST_Transform(e, 4326) AS e4326,
           greatest((ST_XMax(e) - ST_XMin(e)) / 64,
                    c.public_precision_m / cosd(ST_Y(ST_Transform(ST_Centroid(e), 4326)))) AS cell,
           c.id AS campaign_id
    FROM ST_TileEnvelope(z, x, y) AS e, campaigns c WHERE c.slug = '$slug'),
  cells AS (
    SELECT floor(ST_X(p) / t.cell) AS cx, floor(ST_Y(p) / t.cell) AS cy, count(*) AS count
    FROM tile t
    JOIN submissions s ON s.campaign_id = t.campaign_id AND s.status = 'published'
                      AND s.geom && t.e4326
    CROSS JOIN LATERAL ST_Transform(s.geom, 3857) AS p
    GROUP BY 1, 2 HAVING count(*) >= 5)
  SELECT ST_AsMVT(mvt, 'demand', 4096, 'geom')
  FROM (SELECT ST_AsMVTGeom(ST_Point((cx + 0.5) * t.cell, (cy + 0.5) * t.cell, 3857), t.e, 4096, 64, true) AS geom,
               count
        FROM cells, tile t) mvt
\$\$;
SQL

# nginx: civicmap's gzipped tiles as files, sent as they are (gzip_static).
ndir=$(readlink -f "$dir")/nginx
nginx_static_conf "$ndir" "$nport" "public, max-age=0, must-revalidate"

start_civicmap() { # $1: tile cache size in MiB (0: off)
  DATABASE_URL=$url "$bin" serve --listen "127.0.0.1:$cport" --tile-cache-mb "$1" 2>>"$dir/civicmap.log" &
  pids+=($!)
  wait_for "http://127.0.0.1:$cport/readyz"
}
start_martin() { # $1: cache size in MB (0: off)
  MARTIN_CACHE_MB=$1 "$martin" --config "$dir/martin.yaml" >>"$dir/martin.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$mport/health"
}
start_nginx() {
  nginx_start "$ndir" "$nginx"
  pids+=("$nginx_pid")
  local first="http://127.0.0.1:$nport/tiles/$slug/$(head -n1 "$dir/tiles.txt" | tr ' ' /).mvt"
  for _ in $(seq 150); do curl -sf -o /dev/null -H 'Accept-Encoding: gzip' "$first" && return 0; sleep 0.2; done
  echo "not up: nginx (see $ndir/logs)" >&2; return 1
}
export_tiles() { # civicmap's gzipped tiles into nginx's root, as .mvt.gz files
  rm -rf "$ndir/html/tiles"
  while read -r z x y; do
    f="$ndir/html/tiles/$slug/$z/$x/$y.mvt.gz"
    mkdir -p "$(dirname "$f")"
    curl -sf -H 'Accept-Encoding: gzip' -o "$f" "http://127.0.0.1:$cport/tiles/$slug/$z/$x/$y.mvt"
    [ -s "$f" ] || printf '' | gzip -c > "$f"   # 204: an empty tile
  done < "$dir/tiles.txt"
}
errors() { awk '/Non-2xx|Socket errors/ {print}' ; }
load() { # $1 port, $2 list, $3 once (1/0): with 1, every tile asked once, however long it takes
  if [ "$3" = 1 ]; then
    # A fill pass, $conns at a time. (wrk with ONCE=1 stopped at -d, whether or not the list was
    # done: at 1M, Martin's cache was left part-empty.)
    sed "s|^|http://127.0.0.1:$1|" "$dir/$2.txt" |
      xargs -P "$conns" -n 1 curl -s -o /dev/null -H 'Accept-Encoding: gzip' --max-time 900
    return
  fi
  TILE_LIST="$dir/$2.txt" ONCE=0 WRK_THREADS=2 wrk -t2 -c"$conns" -d"${seconds}s" --timeout 30s -s benches/tile-list.lua "http://127.0.0.1:$1" 2>&1
}
write_one() {
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$cport/api/v1/campaigns/$slug/submissions" \
    -H 'content-type: application/json' \
    -d '{"type":"Feature","geometry":{"type":"Point","coordinates":[2.2066,48.8924]},"properties":{"households":1,"connection":"adsl","building":"house"}}'
}
sizes_of() { # $1 port, $2 civicmap|martin -> "z raw gzip" lines
  while read -r z x y; do
    case $2 in
      civicmap) path="/tiles/$slug/$z/$x/$y.mvt" ;;
      martin) path="/submissions/$z/$x/$y" ;;
      *) path="/demand_grid/$z/$x/$y" ;;
    esac
    raw=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$1$path")
    gz=$(curl -s -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip' "http://127.0.0.1:$1$path")
    echo "$z $raw $gz"
  done < "$dir/tiles.txt"
}
summarise_sizes() { # stdin: "z raw gzip" -> per zoom: max and median of raw and gzip
  python3 -c '
import sys, statistics, collections
by = collections.defaultdict(list)
for line in sys.stdin:
    z, raw, gz = line.split(); by[int(z)].append((int(raw), int(gz)))
for z in sorted(by):
    raw = [r for r, _ in by[z]]; gz = [g for _, g in by[z]]
    print(f"z{z}: {len(raw)} tiles, raw max {max(raw)} median {int(statistics.median(raw))}, gzip max {max(gz)} median {int(statistics.median(gz))}")
'
}

echo "# $ntiles distinct tiles z10-z16; wrk -t2 -c$conns; ${seconds}s per warm measurement"
total=$(psql_ -c "SELECT count(*) FROM submissions")
for size in $sizes; do
  if [ "$total" -lt "$size" ]; then
    DATABASE_URL=$url "$bin" demo --more-points $((size - total)) --seed "$size" >/dev/null 2>&1
  fi
  # Martin serves the raw table and needs a spatial index on it; civicmap does not use one
  # (see migrations/20261126000008_no_submission_position_index.sql).
  psql_ -c "CREATE INDEX IF NOT EXISTS martin_submissions_geom ON submissions USING gist (geom)"
  psql_ -c "VACUUM ANALYZE"
  total=$(psql_ -c "SELECT count(*) FROM submissions")
  echo "## $total submissions"
  echo "run,civicmap_cold,martin_table_cold,martin_function_cold,civicmap_warm,martin_table_warm,martin_function_warm,nginx_gzip_static,cold_vs_function,warm_vs_function,warm_vs_nginx"
  for run in $(seq "$runs"); do
    start_civicmap 0
    c_cold=$(load $cport civicmap 0 | rps)
    stop_servers
    start_martin 0
    mt_cold=$(load $mport martin 0 | rps)
    mf_cold=$(load $mport martin-function 0 | rps)
    stop_servers
    start_civicmap 256
    load $cport civicmap 1 >/dev/null   # fill the cache
    c_warm=$(load $cport civicmap 0 | rps)
    export_tiles
    stop_servers
    start_martin 512
    load $mport martin 1 >/dev/null   # fill the cache
    mt_warm=$(load $mport martin 0 | rps)
    load $mport martin-function 1 >/dev/null
    mf_warm=$(load $mport martin-function 0 | rps)
    stop_servers
    start_nginx
    n_warm=$(load $nport civicmap 0 | rps)
    stop_servers
    echo "$run,$c_cold,$mt_cold,$mf_cold,$c_warm,$mt_warm,$mf_warm,$n_warm,$(ratio "$c_cold" "$mf_cold"),$(ratio "$c_warm" "$mf_warm"),$(ratio "$c_warm" "$n_warm")"
  done
  [ "${SIZES:-1}" = 1 ] || continue
  start_civicmap 256
  start_martin 0
  echo "civicmap tile sizes (bytes):"
  sizes_of $cport civicmap | summarise_sizes
  echo "martin tile sizes (bytes):"
  sizes_of $mport martin | summarise_sizes
  echo "martin function source tile sizes (bytes):"
  sizes_of $mport martin-function | summarise_sizes
  echo "civicmap, largest gzipped tile per zoom 0-18:"
  benches/tile-sizes.py "http://127.0.0.1:$cport"
  # Freshness: from the 201 of a submission to a tile that contains it.
  read -r fz fx fy < <(python3 -c 'import math; z=16; r=math.radians(48.8924); k=2**z; print(z, int((2.2066+180)/360*k), int((1-math.log(math.tan(r)+1/math.cos(r))/math.pi)/2*k))')
  tile_url="http://127.0.0.1:$cport/tiles/$slug/$fz/$fx/$fy.mvt"
  curl -s -o /dev/null "$tile_url"
  for i in 1 2 3 4 5; do
    before=$(curl -s -D - -o /dev/null "$tile_url" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
    t0=$(date +%s%N); write_one; t1=$(date +%s%N)
    after=$(curl -s -D - -o /dev/null "$tile_url" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r'); t2=$(date +%s%N)
    [ "$before" != "$after" ] || { echo "tile did not change after a write" >&2; exit 1; }
    echo "freshness $i: submission answered in $(( (t1 - t0) / 1000 )) us, next tile (new ETag $after) in $(( (t2 - t1) / 1000 )) us"
  done
  stop_servers
done
