// Loads MapLibre (dist/maplibre-gl.js, a classic script exposing window.maplibregl) once per page.
import type * as ML from 'maplibre-gl';

export type MapLibre = typeof ML;
declare global {
  interface Window { maplibregl?: MapLibre }
}

let loading: Promise<MapLibre> | null = null;

export function hasWebGL(): boolean {
  try {
    const c = document.createElement('canvas');
    return !!(c.getContext('webgl2') || c.getContext('webgl'));
  } catch {
    return false;
  }
}

export function loadMapLibre(assets: string): Promise<MapLibre> {
  const ready = (ml: MapLibre) => {
    try {
      // Our IIFE build has no import.meta.url: point MapLibre at its worker next to it.
      if (!ml.getWorkerUrl || !ml.getWorkerUrl()) ml.setWorkerUrl(new URL('maplibre-gl-worker.js', assets).href);
    } catch { /* older API */ }
    return ml;
  };
  if (window.maplibregl) return Promise.resolve(ready(window.maplibregl));
  if (loading) return loading;
  loading = new Promise<MapLibre>((resolve, reject) => {
    const existing = document.querySelector<HTMLScriptElement>('script[src$="/maplibre-gl.js"]');
    const s = existing ?? document.createElement('script');
    const done = () => (window.maplibregl ? resolve(ready(window.maplibregl)) : reject(new Error('maplibre-gl.js did not define maplibregl')));
    s.addEventListener('load', done);
    s.addEventListener('error', () => reject(new Error('could not load maplibre-gl.js')));
    setTimeout(() => reject(new Error('timed out loading maplibre-gl.js')), 60000);
    if (!existing) {
      s.src = new URL('maplibre-gl.js', assets).href;
      s.async = true;
      document.head.appendChild(s);
    }
  });
  loading.catch(() => { loading = null; });
  return loading;
}
