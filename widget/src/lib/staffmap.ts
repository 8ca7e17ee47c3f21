// Pure logic of the staff console's maps (src/admin/maps.ts, src/admin/main.ts), here so that
// the unit tests reach it: which basemap the console may draw without a third-party request,
// the bounds of what a map shows, and the classes of progress toward a target.
import type { Basemap } from './types';
import type { BBox } from './geo';

/** A MapLibre style: a URL, or a document with raster sources and background/raster layers. */
export type ConsoleStyle =
  | string
  | { version: 8; sources: Record<string, { type: 'raster'; tiles: string[]; tileSize: number; maxzoom: number; attribution: string }>; layers: ({ id: string; type: 'background'; paint: Record<string, string> } | { id: string; type: 'raster'; source: string; paint: Record<string, number> })[] };

function sameOrigin(u: string, origin: string): boolean {
  try {
    return new URL(u, origin).origin === origin;
  } catch {
    return false;
  }
}

/**
 * The style of the console's maps: the campaign's basemap (as the public campaign endpoint gives
 * it: its own, or the server's /basemap/style.json) when it is served from `origin`, this server;
 * anything on another site would be a third-party request from the console, so then (and with no
 * basemap) a plain background.
 */
export function consoleStyle(bm: Basemap | null | undefined, origin: string): ConsoleStyle {
  if (bm && bm.type === 'style' && sameOrigin(bm.url, origin)) return bm.url;
  const raster = bm && bm.type === 'raster' && bm.tiles.length && bm.tiles.every((t) => sameOrigin(t, origin)) ? bm : null;
  return {
    version: 8,
    sources: raster ? { basemap: { type: 'raster', tiles: raster.tiles, tileSize: raster.tileSize ?? 256, maxzoom: raster.maxzoom ?? 19, attribution: raster.attribution ?? '' } } : {},
    layers: [
      { id: 'cm-background', type: 'background', paint: { 'background-color': '#eef1f4' } },
      ...(raster ? [{ id: 'cm-basemap', type: 'raster' as const, source: 'basemap', paint: { 'raster-saturation': -0.4 } }] : []),
    ],
  };
}

/** The bounds of a FeatureCollection's geometries (polygons and points alike); null when it has none. */
export function boundsOf(fc: { features: { geometry?: { coordinates: unknown } | null }[] }): BBox | null {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  const walk = (c: unknown): void => {
    if (!Array.isArray(c)) return;
    if (typeof c[0] === 'number' && typeof c[1] === 'number') {
      minX = Math.min(minX, c[0]); maxX = Math.max(maxX, c[0]);
      minY = Math.min(minY, c[1]); maxY = Math.max(maxY, c[1]);
    } else c.forEach(walk);
  };
  for (const f of fc.features) if (f.geometry) walk(f.geometry.coordinates);
  return minX === Infinity ? null : [minX, minY, maxX, maxY];
}

/** Classes of progress toward a target in %, light to dark (ColorBrewer YlGnBu, colour-blind safe). */
export const PROGRESS_CLASSES: { from: number; color: string }[] = [
  { from: 0, color: '#ffffcc' }, { from: 25, color: '#a1dab4' }, { from: 50, color: '#41b6c4' }, { from: 75, color: '#2c7fb8' }, { from: 100, color: '#253494' },
];

/** The class (index into PROGRESS_CLASSES) of `count` toward `target`; null without a target. */
export function progressClass(count: number, target: number | null | undefined): number | null {
  if (!target || target <= 0) return null;
  const pct = (100 * count) / target;
  let i = 0;
  PROGRESS_CLASSES.forEach((c, j) => { if (pct >= c.from) i = j; });
  return i;
}
