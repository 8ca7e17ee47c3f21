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
import { hatchImage } from '../lib/choropleth';
import { boundsOf, consoleStyle as styleFor } from '../lib/staffmap';
import type { Basemap as LibBasemap } from '../lib/types';

const consoleStyle = (bm: Basemap) => styleFor(bm, location.origin) as ML.StyleSpecification | string;

export type Basemap = LibBasemap | null | undefined;

export const ASSETS = () => new URL('/widget/', location.origin).href;

export { boundsOf };

export interface ConsoleMap { map: ML.Map; ml: MapLibre }

/** This browser has no WebGL: no map, the list or table (always there) says it all. */
export class NoWebGL extends Error {}

/**
 * A map in `container` (already on the page or about to be), fitted to `bounds`; resolves once
 * its style is loaded, so that layers can be added. Without WebGL it rejects with NoWebGL: the
 * caller leaves the list or table (which is always there) and says why there is no map.
 */
export async function consoleMap(container: HTMLElement, bm: Basemap, bounds: BBox | null, label: string): Promise<ConsoleMap> {
  if (!hasWebGL()) throw new NoWebGL('WebGL');
  const assets = ASSETS();
  const [chunk] = await Promise.all([loadMap(assets), linkMapStyles(container, assets)]);
  for (let i = 0; i < 100 && !container.isConnected; i++) await new Promise((r) => setTimeout(r, 20));
  // The page moved on meanwhile: no map for a page nobody sees.
  if (!container.isConnected) throw new Error('the page changed');
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
  // The container may have settled (a stylesheet, the layout) since the map measured it.
  map.resize();
  return { map, ml };
}

/** Ends the maps under `root` (their WebGL contexts and workers) before it is redrawn. */
export function removeMaps(root: ParentNode): void {
  root.querySelectorAll<HTMLElement & { map?: ML.Map }>('[data-map]').forEach((el) => {
    try { el.map?.remove(); } catch { /* already gone */ }
    el.map = undefined;
  });
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

