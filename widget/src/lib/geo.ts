import type { DistrictCollection, DistrictFeature, PolygonCoords, Position } from './types';

export type BBox = [number, number, number, number];

export function polygonsOf(f: DistrictFeature): PolygonCoords[] {
  return f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
}

function ringContains(ring: Position[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export function polygonContains(poly: PolygonCoords, x: number, y: number): boolean {
  if (!poly.length || !ringContains(poly[0], x, y)) return false;
  for (let i = 1; i < poly.length; i++) if (ringContains(poly[i], x, y)) return false;
  return true;
}

export function featureContains(f: DistrictFeature, x: number, y: number): boolean {
  return polygonsOf(f).some((p) => polygonContains(p, x, y));
}

/** The district containing [lon, lat], if any. */
export function districtAt(fc: DistrictCollection | null, lon: number, lat: number): DistrictFeature | null {
  if (!fc) return null;
  for (const f of fc.features) if (f.geometry && featureContains(f, lon, lat)) return f;
  return null;
}

export function bboxOf(fc: DistrictCollection): BBox | null {
  let b: BBox | null = null;
  for (const f of fc.features) {
    if (!f.geometry) continue;
    for (const poly of polygonsOf(f)) for (const [x, y] of poly[0] ?? []) {
      if (!b) b = [x, y, x, y];
      else { b[0] = Math.min(b[0], x); b[1] = Math.min(b[1], y); b[2] = Math.max(b[2], x); b[3] = Math.max(b[3], y); }
    }
  }
  return b;
}

function ringArea(ring: Position[]): number {
  let a = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) a += ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
  return a / 2;
}

function ringCentroid(ring: Position[]): [number, number, number] {
  let a = 0, cx = 0, cy = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const f = ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
    a += f;
    cx += (ring[j][0] + ring[i][0]) * f;
    cy += (ring[j][1] + ring[i][1]) * f;
  }
  a /= 2;
  if (a === 0) return [ring[0][0], ring[0][1], 0];
  return [cx / (6 * a), cy / (6 * a), Math.abs(a)];
}

function distToRing(ring: Position[], x: number, y: number): number {
  let d = Infinity;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [ax, ay] = ring[j];
    const [bx, by] = ring[i];
    const dx = bx - ax, dy = by - ay;
    const t = dx || dy ? Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy))) : 0;
    d = Math.min(d, Math.hypot(x - (ax + t * dx), y - (ay + t * dy)));
  }
  return d;
}

/**
 * A point inside the district, near its visual centre: the area centroid of its largest polygon when
 * that lies inside; otherwise the grid point farthest from the edges (a coarse "pole of inaccessibility").
 * Used to place the pin when a citizen picks their district from the list.
 */
export function interiorPoint(f: DistrictFeature): [number, number] {
  const polys = polygonsOf(f).filter((p) => p.length && p[0].length >= 3);
  if (!polys.length) return [0, 0];
  const largest = polys.reduce((a, b) => (Math.abs(ringArea(b[0])) > Math.abs(ringArea(a[0])) ? b : a));
  const [cx, cy] = ringCentroid(largest[0]);
  const margin = (p: PolygonCoords, x: number, y: number) => Math.min(...p.map((r) => distToRing(r, x, y)));
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [x, y] of largest[0]) { minX = Math.min(minX, x); minY = Math.min(minY, y); maxX = Math.max(maxX, x); maxY = Math.max(maxY, y); }
  const size = Math.max(maxX - minX, maxY - minY);
  if (polygonContains(largest, cx, cy) && margin(largest, cx, cy) > size / 20) return [cx, cy];
  let best: [number, number] = [cx, cy];
  let bestD = polygonContains(largest, cx, cy) ? margin(largest, cx, cy) : -1;
  const n = 40;
  for (let i = 0; i <= n; i++) for (let j = 0; j <= n; j++) {
    const x = minX + ((maxX - minX) * i) / n;
    const y = minY + ((maxY - minY) * j) / n;
    if (!polygonContains(largest, x, y)) continue;
    const d = margin(largest, x, y);
    if (d > bestD) { bestD = d; best = [x, y]; }
  }
  return best;
}

export function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
