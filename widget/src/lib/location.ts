// Pure logic of the location picker (app/location.ts): how coordinates are shown, whether a pin can be
// sent, the geocoder's URL and answer, and civicmap's own address search (its URL, its answer, and the
// keyboard moves of its suggestion list). Coordinates typed by hand are parsed by validateLonLat.
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

/** Characters typed before civicmap's address search is asked (fewer match too much to help). */
export const ADDRESS_MIN_CHARS = 3;
/** Milliseconds without typing before the address search is asked. */
export const ADDRESS_DEBOUNCE_MS = 200;

/**
 * The URL of civicmap's own address search for what was typed: `base` is the route
 * (`…/api/v1/campaigns/{slug}/addresses`); null when there is too little to search for.
 */
export function addressSearchUrl(base: string, q: string, limit = 8): string | null {
  const t = q.trim();
  if ([...t].length < ADDRESS_MIN_CHARS) return null;
  return `${base}?q=${encodeURIComponent([...t].slice(0, 200).join(''))}&limit=${limit}`;
}

/** The suggestions in civicmap's answer (`[{id, label, lon, lat}]`); anything malformed is left out. */
export function addressSuggestions(j: unknown): GeocoderResult[] {
  if (!Array.isArray(j)) return [];
  const items: GeocoderResult[] = [];
  for (const s of j) {
    const lon = Number(s?.lon);
    const lat = Number(s?.lat);
    if (typeof s?.label === 'string' && Number.isFinite(lon) && Number.isFinite(lat)) items.push({ label: s.label, lon, lat });
  }
  return items;
}

/**
 * The option a key makes active in a list of `count` suggestions (the ARIA combobox pattern), from
 * `active` (-1: none, the focus stays in the text): ArrowDown/ArrowUp move and wrap, Home/End jump;
 * null for any other key (the key is left to the input).
 */
export function moveActive(active: number, count: number, key: string): number | null {
  if (count <= 0) return null;
  switch (key) {
    case 'ArrowDown': return active < 0 || active >= count - 1 ? 0 : active + 1;
    case 'ArrowUp': return active <= 0 ? count - 1 : active - 1;
    case 'Home': return active < 0 ? null : 0;
    case 'End': return active < 0 ? null : count - 1;
    default: return null;
  }
}
