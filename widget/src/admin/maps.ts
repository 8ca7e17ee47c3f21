// The console's maps (districts preview, moderation queue, dashboard choropleth). MapLibre is not
// bundled into admin.js: it is the widget's own lazy chunk, dist/civicmap-map.js, imported by its
// URL under /widget/ with its worker and stylesheet (app/maplibre.ts), all from this server, so
// the console's CSP (script-src 'self', worker-src 'self' blob:) holds and nothing goes to a third
// party. The basemap is the campaign's, as the public campaign endpoint gives it, only when it
// comes from this server (the server's own /basemap/style.json); a basemap on another site would
// be a third-party request, so the console draws a plain background instead.
import type * as ML from 'maplibre-gl';
import { hasWebGL, linkMapStyles, loadMap, type MapLibre } from '../app/maplibre';
import type { BBox } from '../lib/geo';

export type Basemap =
  | { type: 'raster'; tiles: string[]; attribution?: string; tileSize?: number; maxzoom?: number }
  | { type: 'style'; url: string }
  | null
  | undefined;

export const ASSETS = () => new URL('/widget/', location.origin).href;

const sameOrigin = (u: string) => {
  try {
    return new URL(u, location.href).origin === location.origin;
  } catch {
    return false;
  }
};

/** The style for the console's maps: the campaign's basemap when it is this server's, else a plain background. */
export function consoleStyle(bm: Basemap): ML.StyleSpecification | string {
  if (bm && bm.type === 'style' && sameOrigin(bm.url)) return bm.url;
  const raster = bm && bm.type === 'raster' && bm.tiles.length && bm.tiles.every(sameOrigin) ? bm : null;
  return {
    version: 8,
    sources: raster ? { basemap: { type: 'raster', tiles: raster.tiles, tileSize: raster.tileSize ?? 256, maxzoom: raster.maxzoom ?? 19, attribution: raster.attribution ?? '' } } : {},
    layers: [
      { id: 'cm-background', type: 'background', paint: { 'background-color': '#eef1f4' } },
      ...(raster ? [{ id: 'cm-basemap', type: 'raster' as const, source: 'basemap', paint: { 'raster-saturation': -0.4 } }] : []),
    ],
  };
}

/** The bounds of a FeatureCollection of polygons and points. */
export function boundsOf(fc: { features: { geometry?: { type: string; coordinates: unknown } | null }[] }): BBox | null {
  const pts: number[][] = [];
  const walk = (c: unknown) => {
    if (Array.isArray(c) && typeof c[0] === 'number') pts.push(c as number[]);
    else if (Array.isArray(c)) c.forEach(walk);
  };
  for (const f of fc.features) if (f.geometry) walk(f.geometry.coordinates);
  if (!pts.length) return null;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

export interface ConsoleMap { map: ML.Map; ml: MapLibre }

/**
 * A map in `container` (already on the page or about to be), fitted to `bounds`; resolves once
 * its style is loaded, so that layers can be added. Without WebGL it rejects with NoWebGL: the
 * caller leaves the list or table (which is always there) and says why there is no map.
 */
export class NoWebGL extends Error {}

export async function consoleMap(container: HTMLElement, bm: Basemap, bounds: BBox | null, label: string): Promise<ConsoleMap> {
  if (!hasWebGL()) throw new NoWebGL('WebGL');
  const assets = ASSETS();
  const [chunk] = await Promise.all([loadMap(assets), linkMapStyles(container, assets)]);
  for (let i = 0; i < 100 && !container.isConnected; i++) await new Promise((r) => setTimeout(r, 20));
  const ml = chunk.maplibregl;
  const b = bounds ?? [-5, 41, 10, 51.5];
  const map = new ml.Map({
    container,
    style: consoleStyle(bm),
    bounds: b[0] === b[2] && b[1] === b[3] ? [b[0] - 0.005, b[1] - 0.005, b[2] + 0.005, b[3] + 0.005] : b,
    fitBoundsOptions: { padding: 32, maxZoom: 16 },
    attributionControl: { compact: true },
    cooperativeGestures: true,
    dragRotate: false,
    pitchWithRotate: false,
    maxZoom: 19,
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new ml.NavigationControl({ showCompass: false }), 'top-right');
  map.getCanvas().setAttribute('aria-label', label);
  (container as HTMLElement & { map?: ML.Map }).map = map;
  await new Promise<void>((resolve) => {
    let done = false;
    const ready = () => { if (!done) { done = true; resolve(); } };
    map.once('style.load', ready);
    // A basemap style that fails to load: the plain background instead.
    map.once('error', () => {
      if (!done && typeof consoleStyle(bm) === 'string') {
        map.once('style.load', ready);
        map.setStyle(consoleStyle(null));
      }
    });
  });
  return { map, ml };
}

/** An 8×8 hatch (grey on light grey): the pattern of withheld districts, as in the widget. */
export function hatchImage(): { width: number; height: number; data: Uint8Array } {
  const n = 8;
  const data = new Uint8Array(n * n * 4);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    const dark = (x + y) % n < 2;
    const i = (y * n + x) * 4;
    data[i] = data[i + 1] = data[i + 2] = dark ? 0x8a : 0xe6;
    data[i + 3] = 255;
  }
  return { width: n, height: n, data };
}

/** Polygons as a fill (the `color` property, else a light blue; withheld ones hatched) and an outline. */
export function addPolygons(map: ML.Map, id: string, fc: { type: 'FeatureCollection'; features: unknown[] }): void {
  if (!map.hasImage('cm-hatch')) map.addImage('cm-hatch', hatchImage());
  map.addSource(id, { type: 'geojson', data: fc as unknown as ML.GeoJSONSourceSpecification['data'] });
  const withheld: ML.ExpressionSpecification = ['to-boolean', ['get', 'withheld']];
  map.addLayer({ id: `${id}-fill`, type: 'fill', source: id, filter: ['!', withheld], paint: { 'fill-color': ['coalesce', ['get', 'color'], '#9ecae1'], 'fill-opacity': 0.7 } });
  map.addLayer({ id: `${id}-withheld`, type: 'fill', source: id, filter: withheld, paint: { 'fill-pattern': 'cm-hatch', 'fill-opacity': 0.8 } });
  map.addLayer({ id: `${id}-line`, type: 'line', source: id, paint: { 'line-color': '#33475b', 'line-width': 1.5 } });
}

