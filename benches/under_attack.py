#!/usr/bin/env python3
"""The driver of benches/under-attack.sh: 250 attackers flood a civicmap server while 50 honest
citizens contribute as the widget does, then a report (see the script for the whole story).

It runs inside the script's network namespace, where the attackers' and citizens' source
addresses are on `lo`: every connection is bound to its own source address (no
X-Forwarded-For), so the server sees each one as the TCP peer. It only ever connects to
127.0.0.1 and [::1] (the server) and reads the SMTP sink's folder and the embedded database.
Every loop ends at the deadline; requests time out (--request-timeout), and the citizens get
--finish-grace seconds to finish what they started.

    under_attack.py ipv6          the attackers' IPv6 addresses, one a line (for `ip addr add`)
    under_attack.py run --port P --seconds N --out DIR --server-pid PID --sink-dir DIR
                        --psql PSQL --pg-socket DIR [--postmaster-pid PID] [--seed S] ...

Processes: this one runs the attackers (asyncio, uvloop when installed, on a bare HTTP/1.1
client: aiohttp would spend the attackers' core on itself), a second one the honest citizens
on aiohttp (so that their latencies are not those of a saturated attackers' loop), and that
one's pool solves proofs of work with hashlib (niced; about a million hashes a second a worker,
so 20 bits take about a second). The time spent on a proof, waiting for a free worker
included, is measured apart: on 2 cores the bench cannot be 50 phones solving at once, so
latencies are also given without it. Needs aiohttp (uvloop optional).
"""

import argparse
import asyncio
import collections
import concurrent.futures
import hashlib
import ipaddress
import json
import multiprocessing
import os
import random
import re
import resource
import string
import subprocess
import sys
import time
import urllib.parse
import uuid

try:
    import aiohttp
except ImportError:  # `ipv6` needs nothing; `run` says what is missing
    aiohttp = None

SLUG = "fibre-pour-tous"
CAMPAIGN = f"/api/v1/campaigns/{SLUG}"
DISTRICTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                              "nanterre-quartiers.geojson")

# ------------------------------------------------------------------------------- addresses


def attacker_ipv4():
    """200 loopback addresses: 80 sharing 8 /24s (a few hosting ranges), 120 alone in a /24."""
    out = [f"127.20.{net}.{10 + host}" for net in range(8) for host in range(10)]
    out += [f"127.{30 + i // 100}.{i % 100}.7" for i in range(120)]
    return out


def attacker_ipv6():
    """50 addresses of fd0c:1c00::/32: 10 in one /64, 15 in distinct /64s of one /56, 15 in
    distinct /56s of one /48, 10 in distinct /48s (the server must not give each its own
    allowance just because it is another /64)."""
    out = [f"fd0c:1c00:0:1::{h:x}" for h in range(1, 11)]
    out += [f"fd0c:1c00:0:2{k:02x}::1" for k in range(15)]
    out += [f"fd0c:1c00:1:{k:02x}00::1" for k in range(15)]
    out += [f"fd0c:1c00:{0x10 + k:x}::1" for k in range(10)]
    return [ipaddress.IPv6Address(a).compressed for a in out]


def honest_ipv4(n):
    """One address per citizen, each in a /24 of its own, apart from the attackers'."""
    return [f"127.{100 + i}.{(i * 7) % 250 + 1}.{(i * 13) % 250 + 2}" for i in range(n)]


# ------------------------------------------------------------------------------- districts


def load_districts(path):
    """[(code, [polygon, ...])] where a polygon is a list of rings of (lon, lat)."""
    with open(path) as f:
        collection = json.load(f)
    out = []
    for district in collection["features"]:
        geometry = district["geometry"]
        polygons = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                    else geometry["coordinates"])
        out.append((district["properties"]["code"],
                    [[[(p[0], p[1]) for p in ring] for ring in poly] for poly in polygons]))
    return out


def in_rings(rings, x, y):
    """Even-odd rule over the outer ring and its holes."""
    inside = False
    for ring in rings:
        j = len(ring) - 1
        for i in range(len(ring)):
            xi, yi = ring[i]
            xj, yj = ring[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
    return inside


def points_inside(districts, n, rng):
    """n points (lon, lat, code) inside the districts, districts drawn uniformly."""
    out = []
    for _ in range(n):
        code, polygons = rng.choice(districts)
        xs = [p[0] for poly in polygons for p in poly[0]]
        ys = [p[1] for poly in polygons for p in poly[0]]
        while True:
            x = round(rng.uniform(min(xs), max(xs)), 6)
            y = round(rng.uniform(min(ys), max(ys)), 6)
            if any(in_rings(poly, x, y) for poly in polygons):
                out.append((x, y, code))
                break
    return out


def bbox(districts):
    xs = [p[0] for _, polys in districts for poly in polys for p in poly[0]]
    ys = [p[1] for _, polys in districts for poly in polys for p in poly[0]]
    return min(xs), min(ys), max(xs), max(ys)


def answers(rng):
    """Valid answers to the demo campaign's form (src/demo.rs)."""
    building = "apartment" if rng.random() < 0.6 else "house"
    return {
        "households": 1 if building == "house" else rng.randint(2, 40),
        "connection": rng.choice(["adsl", "adsl", "adsl", "cable", "4g-5g", "none"]),
        "building": building,
        "works_from_home": rng.random() < 0.4,
    }


def feature(lon, lat, props):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": props}


# ------------------------------------------------------------------------------- proof of work


def solve(challenge, difficulty):
    """The first decimal nonce such that SHA-256(challenge + ":" + nonce) starts with
    `difficulty` zero bits (src/safety/pow.rs), as the widget finds it, and the seconds the
    search took (without the wait for a free worker)."""
    started = time.perf_counter()
    prefix = hashlib.sha256((challenge + ":").encode())
    limit = (1 << (256 - difficulty)).to_bytes(33, "big")[1:] if difficulty > 0 else b"\xff" * 33
    copy = prefix.copy
    n = 0
    while True:
        h = copy()
        h.update(b"%d" % n)
        if h.digest() < limit:
            return n, time.perf_counter() - started
        n += 1


def _nice():
    os.nice(10)


# ------------------------------------------------------------------------------- helpers


def percentiles(values):
    """p50, p95, p99 and max (nearest rank), in the values' unit; None when empty."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    s = sorted(values)

    def rank(p):
        return s[min(len(s) - 1, max(0, int(-(-p * len(s) // 100)) - 1))]
    return {"n": len(s), "p50": rank(50), "p95": rank(95), "p99": rank(99), "max": s[-1]}


def rounded(d, digits=1):
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in d.items()}


def retry_after(headers):
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return int(value.strip())
    except (AttributeError, ValueError):
        return None


def problem_field(body):
    """The field a 422 is about, as the widget reads it (widget/src/lib/protect.ts)."""
    try:
        p = json.loads(body)
    except (ValueError, TypeError):
        return None
    special = ("website", "form", "proof_of_work")
    for e in p.get("errors") or []:
        if isinstance(e, dict) and e.get("field") in special:
            return e["field"]
    return p.get("field")


def refusal(status, retry, body):
    """What a refused request was told: `429 Retry-After=1: <the problem's detail>`."""
    try:
        detail = json.loads(body).get("detail", "")
    except (ValueError, TypeError, AttributeError):
        detail = ""
    return f"{status} Retry-After={retry}: {detail[:90]}"


# Providers that deliver name+tag@ to name@ (the same list as src/notify/mod.rs).
SUBADDRESSING = {"gmail.com", "googlemail.com", "outlook.com", "outlook.fr", "hotmail.com",
                 "hotmail.fr", "live.com", "live.fr", "icloud.com", "me.com", "proton.me",
                 "protonmail.com"}


def normalised_mailbox(address):
    """One mailbox however it is spelled: case; a +tag where the provider ignores it; and dots
    for Gmail. Elsewhere a +tag or a dot may be another person's mailbox, and counts apart."""
    local, _, domain = address.strip().lower().rpartition("@")
    if domain not in SUBADDRESSING:
        return f"{local}@{domain}"
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def psql(args, sql):
    """The rows of `sql` on the embedded database (psql -qAt), or None on failure."""
    try:
        out = subprocess.run([args.psql, "-h", args.pg_socket, "-U", "civicmap", "-d", "civicmap",
                              "-qAtX", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=sql,
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"psql failed: {e}", file=sys.stderr)
        return None
    if out.returncode != 0:
        print(f"psql failed: {out.stderr.strip()}", file=sys.stderr)
        return None
    return [line for line in out.stdout.splitlines() if line]


def psql_int(args, sql):
    rows = psql(args, sql)
    try:
        return int(rows[0])
    except (TypeError, IndexError, ValueError):
        return None


def event_loop():
    try:
        import uvloop
        return uvloop.new_event_loop(), "uvloop"
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"


async def loop_lag(stop, lags):
    """How late the loop wakes up (ms): a saturated driver would inflate latencies."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.1)
        lags.append((loop.time() - t - 0.1) * 1000)


async def request(session, method, url, body=None, headers=None):
    """(status, headers, body) or (an error's name, None, b"")."""
    try:
        async with session.request(method, url, data=body, headers=headers) as r:
            data = await r.read()
            return r.status, r.headers, data
    except asyncio.TimeoutError:
        return "timeout", None, b""
    except (aiohttp.ClientError, OSError) as e:
        return f"error:{type(e).__name__}", None, b""


def session_for(source, timeout_s, limit):
    connector = aiohttp.TCPConnector(local_addr=(source, 0), limit=limit, limit_per_host=limit,
                                     use_dns_cache=False, force_close=False)
    return aiohttp.ClientSession(connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=timeout_s),
                                 headers={"User-Agent": "civicmap-under-attack/1"})


def base_for(source, port):
    return (f"http://[::1]:{port}" if ipaddress.ip_address(source).version == 6
            else f"http://127.0.0.1:{port}")


async def preflight(sessions, port, path):
    """Every source address reaches the server (binding works): {address: status}."""
    sem = asyncio.Semaphore(50)

    async def one(source, session):
        async with sem:
            status, _, _ = await request(session, "GET", base_for(source, port) + path)
            return source, status
    return dict(await asyncio.gather(*(one(s, sess) for s, sess in sessions)))


# ------------------------------------------------------------------------------- attackers

TREES = ["acacias", "erables", "tilleuls", "chenes", "platanes", "peupliers", "marronniers",
         "bouleaux", "frenes", "saules", "cedres", "charmes"]
STREETS = ["rue", "r", "av", "avenue", "bd", "boulevard", "pl", "place", "all", "allee",
           "impasse", "chemin"]
EXPORTS = {
    # What the public may ask of the demo campaign (each answers 200 on the demo).
    "export_aggregates": [
        "aggregates.geojson", "aggregates.geojson?breakdown=connection",
        "aggregates.geojson?breakdown=works_from_home", "aggregates.csv", "aggregates.csv?excel=1",
        "aggregates.csv?excel=true&breakdown=connection", "aggregates.csv?breakdown=building&excel=1",
        "aggregates.csv?by=district&breakdown=building", "districts.geojson",
    ],
    "export_timeseries": [
        "timeseries.csv", "timeseries.csv?interval=week", "timeseries.csv?excel=1",
        "timeseries.csv?tz=UTC", "timeseries.csv?interval=week&excel=true",
    ],
    "export_story": ["story.atom", "story.atom?lang=en", "story.atom?lang=fr", "story"],
    # Staff-only parameters, bad values, unknown parameters (which also bust naive caches).
    "export_junk": [
        "aggregates.csv?by=h3:8", "aggregates.geojson?by=h3:7&breakdown=connection",
        "aggregates.csv?from=2026-01-01&to=2026-12-31", "aggregates.csv?excel=maybe",
        "aggregates.geojson?by=h3:99", "aggregates.csv?breakdown=comment",
        "aggregates.csv?sum=connection", "aggregates.geojson?sum=households",
        "aggregates.csv?breakdown=works_from_home&sum=households&excel=0",
        "timeseries.csv?interval=day", "timeseries.csv?by=district", "timeseries.csv?tz=Europe/Paris",
        "story.atom?lang=de", "aggregates.csv?{junk}={n}", "aggregates.geojson?breakdown=connection&{junk}={n}",
        "timeseries.csv?{junk}={n}", "story.atom?{junk}={n}", "districts.geojson?{junk}={n}",
    ],
}
ATTACKS = [  # (kind, weight)
    ("challenge", 10), ("submit_bad_json", 5), ("submit_outside", 8), ("submit_bad_answers", 4),
    ("submit_valid_no_pow", 14), ("subscribe_junk", 6), ("subscribe_victim", 14),
    ("address_search", 16), ("export_aggregates", 10), ("export_timeseries", 4),
    ("export_story", 3), ("export_junk", 6),
]


class Attack:
    """Draws attack requests: (kind, method, path, body, headers)."""

    def __init__(self, rng, points, outside_box, codes):
        self.rng = rng
        self.points = points
        self.outside_box = outside_box
        self.codes = codes
        self.kinds = [k for k, _ in ATTACKS]
        self.weights = [w for _, w in ATTACKS]

    def junk(self):
        return "".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(1, 8)))

    def draw(self):
        rng = self.rng
        kind = rng.choices(self.kinds, self.weights)[0]
        json_h = {"Content-Type": "application/json"}
        if kind == "challenge":
            return kind, "POST", f"{CAMPAIGN}/challenges", None, None
        if kind.startswith("submit_"):
            path = f"{CAMPAIGN}/submissions"
            headers = dict(json_h)
            if rng.random() < 0.5:  # half of the bots pose as the widget
                headers.update({"Civicmap-Honeypot": "", "Civicmap-Fill-Ms": str(rng.randint(3000, 60000)),
                                "Idempotency-Key": uuid.uuid4().hex})
            if kind == "submit_bad_json":
                body = rng.choice([b'{"type": "Feature", "geometry": {"type": "Po', b"not json",
                                   b'{"type": "Feature"}', b"[]", b'{"type":"Feature","geometry":null}'])
                return kind, "POST", path, body, headers
            if kind == "submit_outside":
                x0, y0, x1, y1 = self.outside_box
                lon, lat = round(rng.uniform(x0, x1), 6), round(rng.uniform(y0, y1), 6)
                return kind, "POST", path, json.dumps(feature(lon, lat, answers(rng))).encode(), headers
            lon, lat, _ = rng.choice(self.points)
            props = answers(rng)
            if kind == "submit_bad_answers":
                props = rng.choice([{"households": -3, "connection": "adsl", "building": "house"},
                                    {"households": 2, "connection": "fibre", "building": "castle"},
                                    {"households": "many"}, {}, {"comment": "x" * 600, **props}])
            return kind, "POST", path, json.dumps(feature(lon, lat, props)).encode(), headers
        if kind == "subscribe_victim":
            n = rng.randrange(1_000_000)
            email = rng.choice([
                "victim@outlook.fr", "Victim@Outlook.fr", f"victim+{n}@outlook.fr",
                f"VICTIM+{n}@OUTLOOK.FR", f"v.i.c.t.i.m+{n}@gmail.com", f"vic.tim+{n}@gmail.com",
                f"V.Ictim+{n}@Gmail.com", "victim@gmail.com", f"victim+{n}@googlemail.com",
                f"v.ictim+{n}@gmail.com",
            ])
            body = {"email": email, "lang": rng.choice(["fr", "en"])}
            district = rng.choice(self.codes + [None])
            if district:
                body["district"] = district
            headers = dict(json_h)
            if rng.random() < 0.5:
                headers["Civicmap-Honeypot"] = ""
            return kind, "POST", f"{CAMPAIGN}/subscriptions", json.dumps(body).encode(), headers
        if kind == "subscribe_junk":
            headers = dict(json_h)
            choice = rng.randrange(7)
            if choice == 0:
                body = json.dumps({"email": "not an address"}).encode()
            elif choice == 1:
                body = json.dumps({"email": f"{self.junk()}@example.org", "district": "atlantis"}).encode()
            elif choice == 2:
                body = b'{"email": "victim@exam'
            elif choice == 3:
                body = json.dumps({"email": "a@b.fr", "lang": "de"}).encode()
            elif choice == 4:
                body = json.dumps({"email": "victim@example.org", "extra": 1}).encode()
            elif choice == 5:
                body = json.dumps({"email": "victim@example.org", "pad": "x" * 5000}).encode()
            else:  # a bot filling the honeypot
                headers["Civicmap-Honeypot"] = "https://cheap-pills.example"
                body = json.dumps({"email": f"victim+{rng.randrange(10**6)}@example.org"}).encode()
            return kind, "POST", f"{CAMPAIGN}/subscriptions", body, headers
        if kind == "address_search":
            choice = rng.randrange(10)
            if choice < 5:
                q = f"{rng.randint(1, 120)} {rng.choice(STREETS)} synthetique des {rng.choice(TREES)}"
            elif choice < 7:
                full = f"{rng.choice(STREETS)} synthetique des {rng.choice(TREES)}"
                q = full[:rng.randint(1, len(full))]
            elif choice == 7:
                q = self.junk() + " " + self.junk()
            elif choice == 8:
                q = "x" * rng.choice([199, 200, 201, 1000])
            else:
                q = ""
            query = "q=" + urllib.parse.quote(q)
            if rng.random() < 0.3:
                query += f"&limit={rng.randint(0, 30)}"
            return kind, "GET", f"{CAMPAIGN}/addresses?{query}", None, None
        path = rng.choice(EXPORTS[kind]).format(junk=self.junk(), n=rng.randrange(10**6))
        return kind, "GET", f"{CAMPAIGN}/{path}" if path else CAMPAIGN, None, None


CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")


class RawHttp(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a request and reads the status of its
    answer, skipping the body: a fraction of aiohttp's cost a request, so that the one core the
    attackers share sends as much as it can."""

    def __init__(self):
        self.buf = bytearray()
        self.waiter = None
        self.transport = None
        self.lost = False
        self.until_close = None  # the status of an answer delimited by the connection's end

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            if self.until_close is not None:
                self.waiter.set_result((self.until_close, True))
            else:
                self.waiter.set_exception(ConnectionResetError("closed by the server"))

    def send(self, raw):
        self.waiter = asyncio.get_running_loop().create_future()
        self.until_close = None
        self.transport.write(raw)
        return self.waiter

    def data_received(self, data):
        self.buf += data
        if self.waiter is None or self.waiter.done() or self.until_close is not None:
            return
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        status = int(head[9:12])
        close = b"\r\nconnection: close" in head
        start = end + 4
        length = CONTENT_LENGTH.search(head)
        if length:
            stop = start + int(length.group(1))
            if len(buf) < stop:
                return
        elif b"\r\ntransfer-encoding: chunked" in head:
            pos = start
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                if size == 0:
                    if len(buf) < eol + 4:
                        return
                    stop = eol + 4  # no trailers: hyper sends none
                    break
                pos = eol + 2 + size + 2
                if len(buf) < pos:
                    return
        elif status in (204, 304) or status < 200:
            stop = start
        else:
            self.until_close = status
            return
        del buf[:stop]
        self.waiter.set_result((status, close))


def raw_request(method, path, host, body, headers):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: civicmap-under-attack/1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None or method == "POST":
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Attacker:
    """One attacker's address and its connections, one per request in flight."""

    def __init__(self, source, port, timeout):
        self.source = source
        self.v6 = ipaddress.ip_address(source).version == 6
        self.target = "::1" if self.v6 else "127.0.0.1"
        self.host = f"[::1]:{port}" if self.v6 else f"127.0.0.1:{port}"
        self.port = port
        self.timeout = timeout

    async def connect(self):
        _, conn = await asyncio.wait_for(asyncio.get_running_loop().create_connection(
            RawHttp, self.target, self.port, local_addr=(self.source, 0)), self.timeout)
        return conn

    async def exchange(self, conn, method, path, body=None, headers=None):
        """(status or an error's name, the connection to use next or None)."""
        try:
            if conn is None or conn.lost:
                conn = await self.connect()
            status, close = await asyncio.wait_for(
                conn.send(raw_request(method, path, self.host, body, headers)), self.timeout)
        except asyncio.TimeoutError:
            status, close = "timeout", True
        except OSError as e:
            status, close = f"error:{type(e).__name__}", True
        if close and conn is not None:
            conn.transport.abort()
            conn = None
        return status, conn

    async def run(self, attack, stats, timeline, t0, deadline):
        conn = None
        while time.time() < deadline:
            kind, method, path, body, headers = attack.draw()
            status, conn = await self.exchange(conn, method, path, body, headers)
            stats[kind][str(status)] += 1
            timeline[int(time.time() - t0)] += 1
            if not isinstance(status, int):
                await asyncio.sleep(0.05)  # refused or reset: do not spin
        if conn is not None:
            conn.transport.close()


# ------------------------------------------------------------------------------- honest citizens


class Citizen:
    """A citizen at their browser: the widget's requests from one address."""

    def __init__(self, number, source, session, base, rng, points, pool):
        self.number = number
        self.source = source
        self.session = session
        self.base = base
        self.rng = rng
        self.points = points
        self.pool = pool
        self.count = 0

    async def contribute(self, rec):
        """One contribution as the widget sends it; fills `rec`."""
        rng = self.rng
        self.count += 1
        key = f"soak-{self.number}-{self.count}-{uuid.uuid4().hex[:12]}"
        lon, lat, code = rng.choice(self.points)
        body = json.dumps(feature(lon, lat, answers(rng))).encode()
        fill_ms = rng.randint(6000, 40000)
        url = self.base + f"{CAMPAIGN}/submissions"
        proof, proof_attempts, waits, network_retries = None, 0, 0, 0
        trail = rec["trail"]
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        status = None
        while True:
            headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                       "Civicmap-Honeypot": "", "Civicmap-Fill-Ms": str(fill_ms)}
            if proof:
                headers["Civicmap-Proof"] = proof
            status, rheaders, data = await self.session.post_(url, body, headers)
            trail.append(status)
            if isinstance(status, int) and status not in (200, 201):
                rec["refusals"].append(refusal(status, retry_after(rheaders), data))
            if status in (200, 201):
                try:
                    rec["id"] = json.loads(data)["id"]
                except (ValueError, KeyError, TypeError):
                    location = rheaders.get("Location", "")
                    rec["id"] = location.rsplit("/", 1)[-1] or None
                rec["acknowledged"] = True
                rec["replayed"] = rheaders.get("Idempotent-Replayed") == "true"
                break
            if not isinstance(status, int):
                # A browser resends once when a kept-alive connection was closed under it.
                if network_retries < 1:
                    network_retries += 1
                    continue
                break
            if status == 422 and problem_field(data) == "proof_of_work" and proof_attempts < 3:
                proof_attempts += 1
                rec["needed_pow"] = True
                challenge = None
                while True:
                    cstatus, cheaders, cdata = await self.session.post_(
                        self.base + f"{CAMPAIGN}/challenges", None, None)
                    trail.append(f"challenge:{cstatus}")
                    if cstatus == 201:
                        challenge = json.loads(cdata)
                        break
                    ra = retry_after(cheaders)
                    rec["refusals"].append(refusal(f"challenge:{cstatus}", ra, cdata))
                    if cstatus in (429, 503) and ra is not None and ra <= 10 and waits < 3:
                        waits += 1
                        await asyncio.sleep(max(ra, 0.05))
                        continue
                    break
                if challenge is None:
                    status = f"challenge:{cstatus}"
                    break
                t = time.monotonic()
                nonce, computing = await loop.run_in_executor(
                    self.pool, solve, challenge["challenge"], int(challenge["difficulty"]))
                rec["pow_s"] += time.monotonic() - t
                rec["pow_compute_s"] += computing
                rec["difficulties"].append(int(challenge["difficulty"]))
                proof = f"{challenge['challenge']}:{nonce}"
                continue
            ra = retry_after(rheaders)
            if status in (429, 503) and ra is not None and ra <= 10 and waits < 3:
                waits += 1
                await asyncio.sleep(max(ra, 0.05))
                continue
            if status in (429, 503):
                rec["retry_after_refused"] = ra
            break
        rec["final"] = str(status)
        rec["latency_s"] = time.monotonic() - started
        rec["waits"] = waits


class HonestSession:
    """An aiohttp session bound to one citizen's address."""

    def __init__(self, source):
        self.session = session_for(source, 30, 2)

    async def post_(self, url, body, headers):
        return await request(self.session, "POST", url, body, headers)


def honest_main(cfg):
    """The honest citizens' process: writes its records to cfg["out"]/honest.json."""
    loop, _ = event_loop()
    asyncio.set_event_loop(loop)
    result = loop.run_until_complete(honest(cfg))
    with open(os.path.join(cfg["out"], "honest.json"), "w") as f:
        json.dump(result, f)


async def honest(cfg):
    rng = random.Random(cfg["seed"] * 7919 + 1)
    points = points_inside(load_districts(cfg["districts"]), 2000, rng)
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=cfg["pow_workers"], mp_context=multiprocessing.get_context("spawn"),
        initializer=_nice)
    # Start the workers now, not at the first challenge.
    await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(pool, solve, "warm", 1)
                           for _ in range(cfg["pow_workers"])))
    sources = honest_ipv4(cfg["citizens"])
    port = cfg["port"]
    sessions = [HonestSession(s) for s in sources]
    reach = await preflight([(s, h.session) for s, h in zip(sources, sessions)], port, CAMPAIGN)
    bad = {s: st for s, st in reach.items() if st != 200}
    records = []
    stop = asyncio.Event()
    lags = []
    lagger = asyncio.create_task(loop_lag(stop, lags))

    async def citizen(i):
        c = Citizen(i, sources[i], sessions[i], base_for(sources[i], port),
                    random.Random(cfg["seed"] * 1000 + i), points, pool)
        await asyncio.sleep(max(0.0, cfg["t0"] - time.time()) + c.rng.uniform(0, 6))
        while time.time() < cfg["deadline"]:
            rec = {"citizen": i, "t": time.time() - cfg["t0"], "acknowledged": False,
                   "final": "unfinished", "trail": [], "needed_pow": False, "pow_s": 0.0,
                   "pow_compute_s": 0.0, "difficulties": [], "refusals": [], "id": None,
                   "latency_s": None}
            records.append(rec)
            try:
                await c.contribute(rec)
            except Exception as e:  # a bug of the driver's, counted rather than fatal
                rec["final"] = f"driver-error:{type(e).__name__}: {e}"[:120]
            # Reading, placing the next pin (not past the end).
            await asyncio.sleep(min(c.rng.uniform(4.0, 8.0), max(0.0, cfg["deadline"] - time.time())))

    tasks = [asyncio.create_task(citizen(i)) for i in range(len(sources))]
    cap = cfg["deadline"] + cfg["finish_grace"] - time.time()
    done, pending = await asyncio.wait(tasks, timeout=max(cap, 1))
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    stop.set()
    await lagger
    for h in sessions:
        await h.session.close()
    pool.shutdown(cancel_futures=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"records": records, "unreachable": bad, "loop_lag_ms": rounded(percentiles(lags)),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "pow_workers_cpu_s": round(children.ru_utime + children.ru_stime, 1)}


# ------------------------------------------------------------------------------- resources


CLK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in seconds, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK, (int(fields[13]) + int(fields[14])) / CLK


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def postgres_cpu(postmaster):
    """CPU seconds of the postmaster and its children (those gone are in its cutime)."""
    own = proc_stat(postmaster)
    if own is None:
        return None
    total = own[1] + own[2]
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(name)
            if st and st[0] == postmaster:
                total += st[1]
    return total


async def sample(args, stop, samples, t0):
    """Every second: the server's RSS and CPU, PostgreSQL's CPU."""
    while not stop.is_set():
        st = proc_stat(args.server_pid)
        pg = postgres_cpu(args.postmaster_pid) if args.postmaster_pid else None
        samples.append({
            "t": round(time.time() - t0, 1),
            "rss_kib": rss_kib(args.server_pid),
            "cpu_s": round(st[1], 2) if st else None,
            "postgres_cpu_s": round(pg, 2) if pg is not None else None,
        })
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


# ------------------------------------------------------------------------------- mail


def mail_received(sink_dir):
    """[(mtime, kind, [recipients])] of the messages the sink accepted."""
    folder = os.path.join(sink_dir, "json")
    out = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                m = json.load(f)
            out.append((os.path.getmtime(path), m.get("headers", {}).get("x-civicmap-notice", ""),
                        m.get("to", [])))
        except (OSError, ValueError):
            pass
    return out


def mail_report(messages, t0, end, minutes):
    per = collections.defaultdict(lambda: {"during_run": 0, "after_drain": 0, "spellings": set()})
    kinds = collections.Counter()
    for mtime, kind, to in messages:
        kinds[kind or "?"] += 1
        if kind != "confirm":
            continue
        for address in to:
            box = per[normalised_mailbox(address)]
            box["after_drain"] += 1
            box["spellings"].add(address)
            if mtime <= end:
                box["during_run"] += 1
    return {
        "kinds": dict(kinds),
        "confirmations_per_mailbox": {
            box: {"during_run": v["during_run"], "after_drain": v["after_drain"],
                  "per_minute_during_run": round(v["during_run"] / minutes, 1),
                  "distinct_spellings": len(v["spellings"])}
            for box, v in sorted(per.items())},
    }


# ------------------------------------------------------------------------------- the run


async def attack_phase(args, cfg, t0, deadline):
    rng = random.Random(args.seed)
    districts = load_districts(cfg["districts"])
    points = points_inside(districts, 2000, rng)
    x0, y0, x1, y1 = bbox(districts)
    outside = (x1 + 0.03, y0 - 0.05, x1 + 0.2, y1 + 0.05)  # Paris, east of Nanterre
    codes = [c for c, _ in districts]
    attackers = [Attacker(s, args.port, args.request_timeout)
                 for s in attacker_ipv4() + attacker_ipv6()]
    # Every address reaches the server (its binding works) before the clock starts.
    reach = await asyncio.gather(*(a.exchange(None, "GET", "/readyz") for a in attackers))
    bad = {a.source: st for a, (st, _) in zip(attackers, reach) if st != 200}
    for _, conn in reach:
        if conn is not None:
            conn.transport.close()
    if bad:
        print(f"unreachable from {len(bad)} attacker addresses: {list(bad.items())[:5]}",
              file=sys.stderr)
    stats = collections.defaultdict(collections.Counter)
    timeline = collections.Counter()
    await asyncio.sleep(max(0.0, t0 - time.time()))
    tasks = []
    for i, a in enumerate(attackers):
        attack = Attack(random.Random(args.seed * 100003 + i), points, outside, codes)
        for _ in range(args.in_flight):
            tasks.append(asyncio.create_task(a.run(attack, stats, timeline, t0, deadline)))
    await asyncio.gather(*tasks)
    return stats, timeline, bad


async def main_run(args):
    os.makedirs(args.out, exist_ok=True)
    honest_file = os.path.join(args.out, "honest.json")
    if os.path.exists(honest_file):
        os.remove(honest_file)
    try:
        with open(f"/proc/{args.server_pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        comm = None
    if comm != "civicmap":
        print(f"warning: process {args.server_pid} is {comm!r}, not civicmap: its RSS and CPU "
              "are not the server's", file=sys.stderr)
    before = psql_int(args, "SELECT count(*) FROM submissions")
    async with aiohttp.ClientSession() as s:
        campaign_status, _, campaign_body = await request(
            s, "GET", f"http://127.0.0.1:{args.port}{CAMPAIGN}")
    if campaign_status != 200:
        sys.exit(f"the demo campaign does not answer: GET {CAMPAIGN} -> {campaign_status}")
    campaign = json.loads(campaign_body)

    t0 = time.time() + 4  # the citizens' process needs a moment to start
    deadline = t0 + args.seconds
    cfg = {"seed": args.seed, "districts": args.districts, "port": args.port, "out": args.out,
           "citizens": args.citizens, "pow_workers": args.pow_workers, "t0": t0,
           "deadline": deadline, "finish_grace": args.finish_grace}
    honest_process = multiprocessing.get_context("spawn").Process(target=honest_main, args=(cfg,))
    honest_process.start()

    stop = asyncio.Event()
    samples, lags = [], []
    sampler = asyncio.create_task(sample(args, stop, samples, t0))
    lagger = asyncio.create_task(loop_lag(stop, lags))
    print(f"attack from {len(attacker_ipv4())} IPv4 + {len(attacker_ipv6())} IPv6 addresses, "
          f"{args.citizens} citizens, {args.seconds} s ...", file=sys.stderr, flush=True)
    stats, timeline, unreachable = await attack_phase(args, cfg, t0, deadline)
    attack_end = time.time()
    # The citizens finish what they started (bounded by --finish-grace).
    while honest_process.is_alive() and time.time() < deadline + args.finish_grace + 30:
        await asyncio.sleep(0.5)
    if honest_process.is_alive():
        honest_process.terminate()
    honest_process.join()
    honest_end = time.time()
    stop.set()
    await sampler
    await lagger

    # The outbox drains at --notices-per-second: wait up to --mail-drain for it.
    pending_sql = ("SELECT count(*) FROM outbox WHERE kind = 'confirm' AND sent_at IS NULL "
                   "AND failed_at IS NULL")
    drain_until = time.time() + args.mail_drain
    while time.time() < drain_until and (psql_int(args, pending_sql) or 0) > 0:
        await asyncio.sleep(1)
    pending_mail = psql_int(args, pending_sql)
    subscriptions = psql_int(args, "SELECT count(*) FROM subscriptions")
    messages = mail_received(args.sink_dir)

    try:
        with open(honest_file) as f:
            h = json.load(f)
    except (OSError, ValueError):
        h = {"records": [], "unreachable": {"process": "no result"}, "loop_lag_ms": {}, "cpu_s": None,
             "pow_workers_cpu_s": None}
    records = h["records"]

    # Rows lost: acknowledged ids not in the database.
    ids = sorted({r["id"] for r in records if r["acknowledged"] and r["id"]})
    found = set()
    if ids:
        rows = psql(args, "SELECT id::text FROM submissions WHERE id = ANY(ARRAY[{}]::uuid[])".format(
            ",".join(f"'{i}'" for i in ids if all(c in string.hexdigits + "-" for c in i))))
        found = set(rows or [])
    lost = [i for i in ids if i not in found]
    after = psql_int(args, "SELECT count(*) FROM submissions")

    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = build_report(args, campaign, stats, timeline, unreachable, h, records, samples, lags,
                          messages, t0, deadline, attack_end, honest_end, pending_mail,
                          subscriptions, ids, lost, before, after,
                          round(usage.ru_utime + usage.ru_stime, 1))
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print_report(report)
    return report


def build_report(args, campaign, stats, timeline, unreachable, h, records, samples, lags, messages,
                 t0, deadline, attack_end, honest_end, pending_mail, subscriptions, ids, lost,
                 before, after, driver_cpu):
    duration = args.seconds
    kinds = {}
    for kind, _ in ATTACKS:
        c = stats.get(kind, collections.Counter())
        kinds[kind] = {"sent": sum(c.values()),
                       "statuses": dict(sorted(c.items()))}
    total = sum(k["sent"] for k in kinds.values())
    acked = [r for r in records if r["acknowledged"]]
    finished = [r for r in records if r["latency_s"] is not None]

    def ms(rs, key):
        return rounded(percentiles([key(r) * 1000 for r in rs]))

    cpu = [s["cpu_s"] for s in samples if s["cpu_s"] is not None]
    rss = [s["rss_kib"] for s in samples if s["rss_kib"] is not None]
    pg = [s["postgres_cpu_s"] for s in samples if s["postgres_cpu_s"] is not None]
    in_run = [s for s in samples if 0 <= s["t"] <= duration]
    cpu_run = [s["cpu_s"] for s in in_run if s["cpu_s"] is not None]
    honest_timeline = collections.defaultdict(lambda: [0, 0])
    for r in records:
        bucket = int(r["t"] // 10) * 10
        honest_timeline[bucket][0] += 1
        honest_timeline[bucket][1] += r["acknowledged"]
    return {
        "benchmark": "under-attack",
        "campaign": {"slug": SLUG, "proof_of_work": campaign.get("proof_of_work"),
                     "min_fill_seconds": campaign.get("min_fill_seconds")},
        "config": {"seconds": duration, "seed": args.seed, "attackers_ipv4": len(attacker_ipv4()),
                   "attackers_ipv6": len(attacker_ipv6()), "in_flight_per_attacker": args.in_flight,
                   "citizens": args.citizens, "pow_workers": args.pow_workers,
                   "mail_drain_s": args.mail_drain, "server": args.server_info},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
        "attack": {
            "total_sent": total, "per_second": round(total / duration, 1),
            "unreachable_sources": unreachable, "kinds": kinds,
            "timeline_per_second": [timeline.get(i, 0) for i in range(int(duration) + 1)],
        },
        "honest": {
            "attempted": len(records), "acknowledged": len(acked),
            "acknowledged_pct": round(100 * len(acked) / len(records), 1) if records else None,
            "final_statuses": dict(collections.Counter(r["final"] for r in records).most_common()),
            # What the widget itself gets: it shows a 429 to the citizen instead of waiting.
            "acknowledged_without_waiting": sum(1 for r in acked if not r.get("waits")),
            "needed_pow": sum(r["needed_pow"] for r in records),
            "acknowledged_after_pow": sum(r["needed_pow"] for r in acked),
            "waited_retry_after": sum(1 for r in records if r.get("waits")),
            "refused_retry_after_over_10s": sum(1 for r in records if r.get("retry_after_refused") is not None
                                                and r["retry_after_refused"] > 10),
            "replayed": sum(1 for r in acked if r.get("replayed")),
            "difficulties": dict(collections.Counter(d for r in records for d in r["difficulties"])),
            "latency_ms_acknowledged": ms(acked, lambda r: r["latency_s"]),
            "latency_ms_acknowledged_without_pow": ms(acked, lambda r: r["latency_s"] - r["pow_s"]),
            "pow_solve_ms": ms([r for r in records if r["needed_pow"]], lambda r: r["pow_s"]),
            "pow_compute_ms": ms([r for r in records if r["needed_pow"]], lambda r: r["pow_compute_s"]),
            "refusals_seen": dict(collections.Counter(x for r in records for x in r["refusals"]).most_common(12)),
            "latency_ms_all_finished": ms(finished, lambda r: r["latency_s"]),
            "per_10s": {str(k): {"attempted": v[0], "acknowledged": v[1]}
                        for k, v in sorted(honest_timeline.items())},
            "unreachable_sources": h.get("unreachable"),
            "finished_s_after_deadline": round(honest_end - deadline, 1),
        },
        "mail": {
            **mail_report(messages, t0, attack_end, duration / 60),
            "confirmations_pending_in_outbox": pending_mail,
            "subscription_rows": subscriptions,
        },
        "server": {
            "pid": args.server_pid,
            "rss_start_mib": round(rss[0] / 1024, 1) if rss else None,
            "rss_peak_mib": round(max(rss) / 1024, 1) if rss else None,
            "rss_end_mib": round(rss[-1] / 1024, 1) if rss else None,
            "cpu_s": round(cpu[-1] - cpu[0], 1) if cpu else None,
            "cpu_s_during_attack": round(cpu_run[-1] - cpu_run[0], 1) if len(cpu_run) > 1 else None,
            "cpu_cores_during_attack": (round((cpu_run[-1] - cpu_run[0]) / (in_run[-1]["t"] - in_run[0]["t"]), 2)
                                        if len(cpu_run) > 1 and in_run[-1]["t"] > in_run[0]["t"] else None),
            "postgres_cpu_s": round(pg[-1] - pg[0], 1) if pg else None,
            "samples": samples,
        },
        "driver": {"attackers_cpu_s": driver_cpu, "attackers_loop_lag_ms": rounded(percentiles(lags)),
                   "citizens_cpu_s": h.get("cpu_s"), "citizens_loop_lag_ms": h.get("loop_lag_ms"),
                   "pow_workers_cpu_s": h.get("pow_workers_cpu_s")},
        "rows": {"acknowledged_ids": len(ids), "lost": len(lost), "lost_ids": lost,
                 "submissions_before": before, "submissions_after": after},
    }


def print_report(r):
    out = []
    cfg = r["config"]
    out.append(f"under attack: {cfg['seconds']} s, {cfg['attackers_ipv4']} IPv4 + {cfg['attackers_ipv6']} IPv6 "
               f"attackers ({cfg['in_flight_per_attacker']} in flight each), {cfg['citizens']} citizens; "
               f"campaign proof_of_work={r['campaign']['proof_of_work']}")
    a = r["attack"]
    out.append(f"\nattack requests: {a['total_sent']} ({a['per_second']}/s)")
    out.append(f"  {'kind':<22}{'sent':>8}  statuses")
    for kind, k in a["kinds"].items():
        statuses = " ".join(f"{s}:{n}" for s, n in k["statuses"].items())
        out.append(f"  {kind:<22}{k['sent']:>8}  {statuses}")
    h = r["honest"]
    out.append(f"\nhonest submissions: {h['attempted']} attempted, {h['acknowledged']} acknowledged "
               f"({h['acknowledged_pct']} %; {h['acknowledged_without_waiting']} without waiting a Retry-After), "
               f"{h['needed_pow']} needed a proof of work "
               f"({h['acknowledged_after_pow']} of them acknowledged), {h['waited_retry_after']} waited a Retry-After, "
               f"{h['refused_retry_after_over_10s']} refused with Retry-After > 10 s")
    out.append("  final statuses: " + " ".join(f"{s}:{n}" for s, n in h["final_statuses"].items()))

    def pct(p):
        return "/".join("-" if p[k] is None else f"{p[k]:.0f}" for k in ("p50", "p95", "p99"))
    out.append(f"  latency p50/p95/p99 ms (acknowledged): {pct(h['latency_ms_acknowledged'])}; "
               f"without PoW solving: {pct(h['latency_ms_acknowledged_without_pow'])}; "
               f"PoW solving: {pct(h['pow_solve_ms'])} (computing alone: {pct(h['pow_compute_ms'])})"
               + (f" (difficulties {h['difficulties']})" if h["difficulties"] else ""))
    out.append(f"  latency p50/p95/p99 ms (every finished one, refused too): {pct(h['latency_ms_all_finished'])}")
    for what, n in h["refusals_seen"].items():
        out.append(f"  {n:>6} x {what}")
    m = r["mail"]
    out.append(f"\nconfirmation e-mails ({cfg['seconds']} s run, then up to {cfg['mail_drain_s']} s drain): "
               f"{m['confirmations_pending_in_outbox']} still queued, {m['subscription_rows']} subscription rows")
    boxes = m["confirmations_per_mailbox"] or {"(none)": None}
    for box, v in boxes.items():
        if v is None:
            out.append("  none received")
            continue
        out.append(f"  {box:<24} {v['during_run']:>6} during the run ({v['per_minute_during_run']}/min), "
                   f"{v['after_drain']} after the drain, {v['distinct_spellings']} spellings")
    s = r["server"]
    out.append(f"\nserver: RSS {s['rss_start_mib']} -> peak {s['rss_peak_mib']} MiB; CPU {s['cpu_s']} s "
               f"({s['cpu_cores_during_attack']} cores during the attack); PostgreSQL CPU {s['postgres_cpu_s']} s")
    d = r["driver"]
    out.append(f"driver: attackers {d['attackers_cpu_s']} CPU s (loop lag p99 {d['attackers_loop_lag_ms'].get('p99')} ms), "
               f"citizens {d['citizens_cpu_s']} CPU s (loop lag p99 {(d['citizens_loop_lag_ms'] or {}).get('p99')} ms), "
               f"PoW workers {d['pow_workers_cpu_s']} CPU s")
    rows = r["rows"]
    out.append(f"rows lost: {rows['lost']} of {rows['acknowledged_ids']} acknowledged "
               f"(submissions {rows['submissions_before']} -> {rows['submissions_after']})")
    print("\n".join(out), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ipv6", help="print the attackers' IPv6 addresses")
    run = sub.add_parser("run", help="run the soak")
    run.add_argument("--port", type=int, required=True)
    run.add_argument("--seconds", type=float, default=300)
    run.add_argument("--out", required=True)
    run.add_argument("--server-pid", type=int, required=True)
    run.add_argument("--postmaster-pid", type=int)
    run.add_argument("--sink-dir", required=True)
    run.add_argument("--psql", required=True)
    run.add_argument("--pg-socket", required=True)
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--citizens", type=int, default=50)
    run.add_argument("--in-flight", type=int, default=2, help="requests in flight per attacker")
    run.add_argument("--pow-workers", type=int, default=2, help="processes solving proofs (niced)")
    run.add_argument("--request-timeout", type=float, default=15)
    run.add_argument("--finish-grace", type=float, default=60,
                     help="seconds the citizens get after the end to finish what they started")
    run.add_argument("--mail-drain", type=float, default=30)
    run.add_argument("--districts", default=os.path.normpath(DISTRICTS_FILE))
    run.add_argument("--server-info", default="")
    args = parser.parse_args()
    if args.command == "ipv6":
        print("\n".join(attacker_ipv6()))
        return
    if aiohttp is None:
        sys.exit("needs aiohttp (benches/under-attack.sh installs it in a venv)")
    loop, name = event_loop()
    asyncio.set_event_loop(loop)
    print(f"driver loop: {name}", file=sys.stderr)
    loop.run_until_complete(main_run(args))


if __name__ == "__main__":
    main()
