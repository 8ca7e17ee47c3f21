// Pure logic of the location picker (src/lib/location.ts, used by src/app/location.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCoord, pinError, geocoderQueryUrl, geocoderResults, validateLonLat } from '../../.build/lib.mjs';

test('formatCoord: fixed decimals, decimal comma in French', () => {
  assert.equal(formatCoord(2.2, 'en', 5), '2.20000');
  assert.equal(formatCoord(2.2, 'fr', 5), '2,20000');
  assert.equal(formatCoord(48.8912345, 'fr', 6), '48,891235');
  assert.equal(formatCoord(-0.1234567, 'en', 6), '-0.123457');
  assert.equal(formatCoord(-0.1234567, 'en', 5), '-0.12346');
});

test('formatCoord: what the inputs show is read back as the same point when typed by hand', () => {
  for (const [lon, lat] of [[2.201234, 48.891234], [-1.5, 47.25], [179.999999, -89.5]]) {
    for (const lang of ['fr', 'en']) {
      const v = validateLonLat(formatCoord(lon, lang, 6), formatCoord(lat, lang, 6));
      assert.deepEqual(v, { ok: true, lon, lat }, `${lang}: ${lon}, ${lat}`);
    }
  }
});

test('pinError: missing, in a district always fine, elsewhere within the bounds', () => {
  const b = [2.18, 48.87, 2.24, 48.91];
  assert.equal(pinError(null, false, b), 'missing');
  assert.equal(pinError(null, true, null), 'missing');
  assert.equal(pinError({ lon: 2.2, lat: 48.89 }, false, b), null);
  assert.equal(pinError({ lon: 2.3, lat: 48.89 }, false, b), 'outside');
  assert.equal(pinError({ lon: 2.3, lat: 48.89 }, true, b), null, 'a pin in a district is accepted even outside the bounds');
  assert.equal(pinError({ lon: 2.3, lat: 48.89 }, false, null), null, 'no bounds: anywhere');
  assert.equal(pinError({ lon: 200, lat: 48.89 }, false, null), 'lon');
  assert.equal(pinError({ lon: 2.2, lat: -91 }, false, null), 'lat');
});

test('geocoderQueryUrl: the query encoded and trimmed, lang and bbox filled in', () => {
  const tpl = 'https://geo.example/search?q={q}&lang={lang}&bbox={bbox}';
  assert.equal(geocoderQueryUrl(tpl, '  12 rue de l’Église & Co ', 'fr', [2.18, 48.87, 2.24, 48.91]),
    'https://geo.example/search?q=12%20rue%20de%20l%E2%80%99%C3%89glise%20%26%20Co&lang=fr&bbox=2.18,48.87,2.24,48.91');
  assert.equal(geocoderQueryUrl(tpl, 'x', 'en', null), 'https://geo.example/search?q=x&lang=en&bbox=');
  assert.equal(geocoderQueryUrl('https://g/?q={q}', 'a b', 'en', null), 'https://g/?q=a%20b');
});

test('geocoderResults: GeoJSON points (addok, photon) and Nominatim arrays; anything else gives nothing', () => {
  const fc = {
    type: 'FeatureCollection',
    features: [
      { type: 'Feature', geometry: { type: 'Point', coordinates: [2.2, 48.89] }, properties: { label: '1 Rue A' } },
      { type: 'Feature', geometry: { type: 'Point', coordinates: [2.21, 48.9] }, properties: { name: 'Place B' } },
      { type: 'Feature', geometry: { type: 'Point', coordinates: [2.22, 48.88] }, properties: {} },
      { type: 'Feature', geometry: { type: 'LineString', coordinates: [[0, 0], [1, 1]] }, properties: { label: 'a road' } },
      null,
    ],
  };
  assert.deepEqual(geocoderResults(fc), [
    { label: '1 Rue A', lon: 2.2, lat: 48.89 },
    { label: 'Place B', lon: 2.21, lat: 48.9 },
    { label: '2.22, 48.88', lon: 2.22, lat: 48.88 },
  ]);
  assert.deepEqual(geocoderResults([
    { lat: '48.89', lon: '2.2', display_name: 'Mairie' },
    { lat: '48.9', lon: '2.21', name: 'Gare' },
    { lat: '48.9' },
  ]), [
    { label: 'Mairie', lon: 2.2, lat: 48.89 },
    { label: 'Gare', lon: 2.21, lat: 48.9 },
  ]);
  for (const j of [null, {}, 'oops', 42, { features: 'no' }]) assert.deepEqual(geocoderResults(j), []);
});

test('addressSearchUrl: civicmap\'s own search, asked only with at least 3 characters, trimmed and encoded', async () => {
  const { addressSearchUrl, ADDRESS_MIN_CHARS } = await import('../../.build/lib.mjs');
  const base = 'https://city.example/api/v1/campaigns/fibre-pour-tous/addresses';
  assert.equal(ADDRESS_MIN_CHARS, 3);
  assert.equal(addressSearchUrl(base, '  12 bis r de l’Église & Co '), `${base}?q=12%20bis%20r%20de%20l%E2%80%99%C3%89glise%20%26%20Co&limit=8`);
  assert.equal(addressSearchUrl(base, 'rue', 5), `${base}?q=rue&limit=5`);
  assert.equal(addressSearchUrl(base, ' 12 '), null);
  assert.equal(addressSearchUrl(base, ''), null);
  assert.equal(addressSearchUrl(base, 'éé'), null, 'characters, not bytes');
  const long = addressSearchUrl(base, 'a'.repeat(300));
  assert.equal(long, `${base}?q=${'a'.repeat(200)}&limit=8`, 'never longer than the server accepts');
});

test('addressSuggestions: the server\'s list; anything malformed left out', async () => {
  const { addressSuggestions } = await import('../../.build/lib.mjs');
  assert.deepEqual(addressSuggestions([
    { id: 'a', label: '12 bis Rue de la Paix, 92000 Nanterre', lon: 2.2, lat: 48.89 },
    { id: 'b', label: 'no position' },
    { id: 'c', label: 7, lon: 1, lat: 1 },
    null,
    { id: 'd', label: 'Place B', lon: '2.21', lat: '48.9' },
  ]), [
    { label: '12 bis Rue de la Paix, 92000 Nanterre', lon: 2.2, lat: 48.89 },
    { label: 'Place B', lon: 2.21, lat: 48.9 },
  ]);
  for (const j of [null, {}, 'x', { features: [] }]) assert.deepEqual(addressSuggestions(j), []);
});

test('moveActive: arrows move through the suggestions and wrap; other keys stay with the text', async () => {
  const { moveActive } = await import('../../.build/lib.mjs');
  assert.equal(moveActive(-1, 3, 'ArrowDown'), 0);
  assert.equal(moveActive(0, 3, 'ArrowDown'), 1);
  assert.equal(moveActive(2, 3, 'ArrowDown'), 0);
  assert.equal(moveActive(-1, 3, 'ArrowUp'), 2);
  assert.equal(moveActive(0, 3, 'ArrowUp'), 2);
  assert.equal(moveActive(2, 3, 'ArrowUp'), 1);
  assert.equal(moveActive(1, 3, 'Home'), 0);
  assert.equal(moveActive(1, 3, 'End'), 2);
  assert.equal(moveActive(-1, 3, 'Home'), null, 'Home moves the caret while no option is active');
  assert.equal(moveActive(1, 3, 'a'), null);
  assert.equal(moveActive(-1, 0, 'ArrowDown'), null, 'no suggestions: nothing to move to');
});
