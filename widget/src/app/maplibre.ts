// Loads the map lazily: dist/civicmap-map.js (src/map.ts, an ES module with MapLibre GL JS and
// MapView) through a dynamic import() of its absolute URL, next to civicmap.js (`assets`), so that
// it resolves on any page (the iframe page, or a host page with the custom element; the server
// sends Access-Control-Allow-Origin on /widget/*, which module scripts from another origin need).
// Once per page; a failure is forgotten so that a later start tries again.
import type * as ML from 'maplibre-gl';
import type * as MapModule from '../map';

export type MapLibre = typeof ML;
export type MapChunk = typeof MapModule;

/** File name of the lazy chunk in dist/ (build.mjs writes it). */
export const MAP_CHUNK = 'civicmap-map.js';

let loading: Promise<MapChunk> | null = null;

export function hasWebGL(): boolean {
  try {
    const c = document.createElement('canvas');
    return !!(c.getContext('webgl2') || c.getContext('webgl'));
  } catch {
    return false;
  }
}

/**
 * Starts fetching (and compiling) the map chunk without running it: a <link rel="modulepreload">, so
 * that its bytes travel while the campaign and districts are fetched, and running it (loadMap) waits
 * until the form is on screen. Same request as import() makes (CORS, same-origin credentials).
 */
export function preloadMap(assets: string): void {
  if (loading) return;
  try {
    const href = new URL(MAP_CHUNK, assets).href;
    if (Array.from(document.querySelectorAll<HTMLLinkElement>('link[rel="modulepreload"]')).some((l) => l.href === href)) return;
    const link = document.createElement('link');
    link.rel = 'modulepreload';
    link.href = href;
    (document.head ?? document.documentElement).appendChild(link);
  } catch { /* a hint only */ }
}

export function loadMap(assets: string): Promise<MapChunk> {
  if (loading) return loading;
  const url = new URL(MAP_CHUNK, assets).href;
  loading = new Promise<MapChunk>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out loading ${MAP_CHUNK}`)), 60000);
    (import(url) as Promise<MapChunk>).then((m) => {
      clearTimeout(timer);
      try {
        // Its worker sits next to it in dist/ (under the name the server has always served).
        m.maplibregl.setWorkerUrl(new URL('maplibre-gl-worker.js', assets).href);
        // Start its workers now: they load while the map sets up its WebGL context.
        m.maplibregl.prewarm();
      } catch { /* older API */ }
      resolve(m);
    }, (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  loading.catch(() => { loading = null; });
  return loading;
}

/**
 * Links MapLibre's stylesheet into the shadow root that holds `el` (once), and resolves when it
 * has loaded or failed: the map is created after it, the form never waits for it.
 */
export function linkMapStyles(el: Node, assets: string): Promise<void> {
  const root = el.getRootNode();
  const parent: ParentNode & Node = root instanceof ShadowRoot ? root : document.head;
  const href = new URL('maplibre-gl.css', assets).href;
  let link = Array.from(parent.querySelectorAll<HTMLLinkElement>('link[rel="stylesheet"]')).find((l) => l.href === href);
  if (link && link.sheet) return Promise.resolve();
  if (!link) {
    link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    parent.insertBefore(link, parent.firstChild);
  }
  const l = link;
  return new Promise((resolve) => {
    l.addEventListener('load', () => resolve(), { once: true });
    l.addEventListener('error', () => resolve(), { once: true });
    setTimeout(resolve, 5000);
  });
}
