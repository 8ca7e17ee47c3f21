// Pure logic of the location picker (app/location.ts): how coordinates are shown, whether a pin can be
// sent, and the geocoder's URL and answer. Coordinates typed by hand are parsed by validateLonLat.
import type { BBox } from './geo';
import type { Lang } from './types';
import { validateLonLat, type LocationError } from './validate';

export interface Pin { lon: number; lat: number }
export interface GeocoderResult { label: string; lon: number; lat: number }

/** A coordinate as the inputs and the status line show it: fixed decimals, decimal comma in French. */
export function formatCoord(n: number, lang: Lang, decimals: number): string {
  const s = n.toFixed(decimals);
  return lang === 'fr' ? s.replace('.', ',') : s;
}

/**
 * Why a pin cannot be sent, or null when it can: no pin is 'missing'; a pin inside a district is
 * always accepted; elsewhere it must lie within the campaign's bounds (when it has some).
 */
export function pinError(pin: Pin | null, inDistrict: boolean, bounds?: BBox | null): LocationError | null {
  if (!pin) return 'missing';
  const v = validateLonLat(pin.lon, pin.lat, inDistrict ? null : bounds);
  return v.ok ? null : v.error;
}

/** The geocoder's URL for a query: `{q}`, `{lang}` and `{bbox}` (the campaign's bounds, or empty) filled in. */
export function geocoderQueryUrl(template: string, q: string, lang: Lang, bounds?: BBox | null): string {
  return template.replace('{q}', encodeURIComponent(q.trim())).replace('{lang}', lang).replace('{bbox}', bounds ? bounds.join(',') : '');
}

/**
 * The places in a geocoder's answer: a GeoJSON FeatureCollection of Points (addok/BAN, photon, pelias:
 * `properties.label|name|display_name`) or a Nominatim-style array (`lat`, `lon`, `display_name|name`).
 */
export function geocoderResults(j: unknown): GeocoderResult[] {
  const items: GeocoderResult[] = [];
  const o = j as { features?: unknown } | null;
  if (o && Array.isArray(o.features)) {
    for (const f of o.features) {
      const c = f?.geometry?.coordinates;
      if (f?.geometry?.type === 'Point' && Array.isArray(c)) items.push({ label: String(f.properties?.label ?? f.properties?.name ?? f.properties?.display_name ?? `${c[0]}, ${c[1]}`), lon: +c[0], lat: +c[1] });
    }
  } else if (Array.isArray(j)) {
    for (const r of j) if (r && r.lat != null && r.lon != null) items.push({ label: String(r.display_name ?? r.name ?? `${r.lon}, ${r.lat}`), lon: +r.lon, lat: +r.lat });
  }
  return items;
}
