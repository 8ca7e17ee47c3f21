# Shell functions the load benchmarks share (sourced: `. benches/lib.sh`).

# The median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# wrk's percentile line for $1 (50% or 99%) from wrk --latency's output on stdin, in ms.
latency() {
  awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'
}

# Requests per second from wrk's output on stdin.
rps() { awk '/Requests\/sec/ {print $2}'; }

# $1 / $2 with two decimals ("n/a" when $2 is empty or 0).
ratio() { python3 -c "import sys; a, b = float(sys.argv[1] or 0), float(sys.argv[2] or 0); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }

# Waits up to 30 s for $1 to answer 2xx.
wait_for() { for _ in $(seq 150); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done; echo "not up: $1" >&2; return 1; }

# Refuses to run when something already answers on loopback port $1.
port_free() { ! curl -s -o /dev/null "http://127.0.0.1:$1/" || { echo "port $1 is taken by another server" >&2; exit 1; }; }

# Prints the start of an nginx configuration whose prefix is $1 (pid, logs and temporary files
# there; 2 workers; no access log), up to the open `http {` block: the caller adds its servers
# and the closing brace.
nginx_conf_head() {
  local ndir=$1
  mkdir -p "$ndir/logs" "$ndir/tmp"
  cat <<NGINX
worker_processes 2;
pid $ndir/nginx.pid;
error_log $ndir/logs/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $ndir/tmp/body;
  proxy_temp_path $ndir/tmp/proxy;
  fastcgi_temp_path $ndir/tmp/fastcgi;
  uwsgi_temp_path $ndir/tmp/uwsgi;
  scgi_temp_path $ndir/tmp/scgi;
  keepalive_requests 1000000;
NGINX
}

# Writes an nginx configuration to $1/nginx.conf: a server on 127.0.0.1:$2 whose root is
# $1/html, serving files as they are and `.gz` files to clients that accept gzip (gzip_static),
# with Cache-Control $3 and `Vary: accept-encoding`, for the types `mvt` and `pbf`.
nginx_static_conf() {
  local ndir=$1 port=$2 cache=$3
  mkdir -p "$ndir/html"
  {
    nginx_conf_head "$ndir"
    cat <<NGINX
  sendfile on;
  tcp_nopush on;
  types { application/vnd.mapbox-vector-tile mvt; application/x-protobuf pbf; }
  server {
    listen 127.0.0.1:$port;
    root $ndir/html;
    location / {
      gzip_static on;
      add_header Cache-Control "$cache";
      add_header Vary accept-encoding;
    }
  }
}
NGINX
  } > "$ndir/nginx.conf"
}

# Starts nginx on the configuration of nginx_static_conf (unprivileged: as nobody when run as
# root, the prefix made readable and writable) in the background; its pid in $nginx_pid.
# $1: the prefix; $2: the nginx binary.
nginx_start() {
  local ndir=$1 nginx=$2 run=()
  if [ "$(id -u)" = 0 ]; then
    chmod -R a+rwX "$ndir"
    run=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  fi
  "${run[@]}" "$nginx" -p "$ndir" -c "$ndir/nginx.conf" -e "$ndir/logs/error.log" >>"$ndir/logs/stderr.log" 2>&1 &
  nginx_pid=$!
}

# A fresh embedded database under $dir for the release binary $bin (any earlier one there is
# stopped and removed), and on exit every process in $pids stopped, then the database: sets
# `url`. Background processes are added with `pids+=($!)`.
fresh_bench_database() {
  "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
  mkdir -p "$dir"
  pids=()
  trap 'stop_all; "$bin" db stop --data-dir "$dir" >/dev/null 2>&1 || true' EXIT
  url=$("$bin" db start --data-dir "$dir" 2>/dev/null)
}

# Stops every process in $pids and waits for them.
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
