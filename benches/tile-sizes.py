#!/usr/bin/env python3
"""Largest gzipped civicmap tile at every zoom 0 to 18 over Nanterre's bounds (at most 60 tiles a
zoom, evenly sampled). Usage: benches/tile-sizes.py http://127.0.0.1:PORT [campaign]"""
import math
import subprocess
import sys

base = sys.argv[1].rstrip("/")
slug = sys.argv[2] if len(sys.argv) > 2 else "fibre-pour-tous"
w, s, e, n = 2.1693, 48.87423, 2.23423, 48.9206


def tile(lon, lat, z):
    k = 2 ** z
    r = math.radians(lat)
    return int((lon + 180) / 360 * k), int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * k)


for z in range(0, 19):
    x0, y0 = tile(w, n, z)
    x1, y1 = tile(e, s, z)
    tiles = [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    sample = tiles[:: max(1, len(tiles) // 60)]
    sizes = []
    for x, y in sample:
        out = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "-H", "Accept-Encoding: gzip",
             f"{base}/tiles/{slug}/{z}/{x}/{y}.mvt"],
            capture_output=True, text=True, check=True).stdout
        sizes.append(int(out))
    print(f"z{z}: {len(sample)} of {len(tiles)} tiles, largest gzipped {max(sizes)} B")
