#!/usr/bin/env bash
# Installs what civicmap needs from the OS packages, only when it is missing:
# PostgreSQL 15+ with PostGIS 3 (server binaries for the embedded cluster), the Noto fonts of
# the basemap's labels, and, with
# --browser (what `make test` needs), Debian's Chromium for the widget's browser tests,
# GDAL's command-line tools for the export tests, poppler's pdftotext for the report's, nginx for the proxy-cache test, and Python's
# venv for schemathesis.
# GDAL's command-line tools for the export tests, nginx for the proxy-cache test, and Python's
# venv for schemathesis, and Python's aiosmtpd for the e-mail tests' SMTP server.
# Debian/Ubuntu only.
set -euo pipefail

need=()
have_postgis() {
  for dir in /usr/share/postgresql/*/extension; do
    # pg_trgm (PostgreSQL's contrib, part of Debian's server package): the address search.
    [ -f "$dir/postgis.control" ] && [ -f "$dir/pg_trgm.control" ] && [ -x "/usr/lib/postgresql/$(basename "$(dirname "$dir")")/bin/initdb" ] && return 0
  done
  return 1
}
have_postgis || need+=(postgresql postgresql-postgis)
# Noto Sans, from which the basemap's label glyphs are made (src/basemap/glyphs.rs; FreeType
# itself is built into civicmap, no library needed).
[ -f /usr/share/fonts/truetype/noto/NotoSans-Regular.ttf ] || need+=(fonts-noto-core)
if [ "${1:-}" = "--browser" ]; then
  command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || need+=(chromium)
  # GDAL's ogrinfo and ogr2ogr: the tests check that GIS tools read our exports.
  command -v ogrinfo >/dev/null || need+=(gdal-bin)
  # poppler-utils: tests/api/report.rs reads the operator's report back with pdftotext.
  command -v pdftotext >/dev/null || need+=(poppler-utils)
  # nginx: tests/api/cdn.rs runs civicmap behind its proxy_cache (docs/DEPLOY.md), as the
  # user running the tests, with a configuration of its own on a loopback port.
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
  # Python 3 with venv: scripts/schemathesis.sh installs schemathesis from PyPI in a venv.
  command -v python3 >/dev/null || need+=(python3)
  python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
  # aiosmtpd: the notice tests (tests/api/notify.rs) send e-mail to a real SMTP server,
  # tests/smtp_sink.py, which saves what it accepts to a folder.
  # Debian's own python3 (the tests prefer /usr/bin/python3 to another one on the PATH).
  py=/usr/bin/python3; [ -x "$py" ] || py=python3
  "$py" -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
  # openssl: the notice tests issue a certificate authority and a server certificate for the
  # SMTP server's STARTTLS and TLS.
  command -v openssl >/dev/null || need+=(openssl)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "setup: please install ${need[*]} with your system's package manager (apt-get not found)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "setup: installing ${need[*]}" >&2
$sudo apt-get update -qq
packages=()
for p in "${need[@]}"; do
  if [ "$p" = postgresql-postgis ]; then
    # postgis for the newest PostgreSQL server packaged here (e.g. postgresql-15-postgis-3).
    p=$(apt-cache search --names-only '^postgresql-[0-9]+-postgis-3$' | awk '{print $1}' | sort -V | tail -n 1)
    [ -n "$p" ] || { echo "setup: no postgresql-N-postgis-3 package found" >&2; exit 1; }
    packages+=("$p" postgresql-contrib)
  else
    packages+=("$p")
  fi
done
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# Debian starts a system cluster on port 5432 when it installs the server, and nginx on port
# 80; civicmap's tests run their own, on a private Unix socket and free loopback ports, and
# need neither.
have_postgis || { echo "setup: PostGIS is still missing after install" >&2; exit 1; }
