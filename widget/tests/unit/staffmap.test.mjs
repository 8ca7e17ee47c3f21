// The staff console's map logic (src/lib/staffmap.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleStyle, boundsOf, progressClass, PROGRESS_CLASSES } from '../../.build/lib.mjs';

const here = 'https://carte.ville.fr';

test('the console draws a basemap served by its own server, the server default included', () => {
  assert.equal(consoleStyle({ type: 'style', url: `${here}/basemap/style.json` }, here), `${here}/basemap/style.json`);
  assert.equal(consoleStyle({ type: 'style', url: '/basemap/style.json' }, here), '/basemap/style.json');
  const raster = consoleStyle({ type: 'raster', tiles: [`${here}/t/{z}/{x}/{y}.png`], attribution: '© Ville', maxzoom: 17 }, here);
  assert.deepEqual(raster.sources.basemap, { type: 'raster', tiles: [`${here}/t/{z}/{x}/{y}.png`], tileSize: 256, maxzoom: 17, attribution: '© Ville' });
  assert.deepEqual(raster.layers.map((l) => l.id), ['cm-background', 'cm-basemap']);
});

test('a basemap on another site, or none, gives a plain background (no third-party request)', () => {
  for (const bm of [
    { type: 'style', url: 'https://tiles.example.org/style.json' },
    { type: 'style', url: 'https://carte.ville.fr.example.org/style.json' },
    { type: 'raster', tiles: [`${here}/t/{z}/{x}/{y}.png`, 'https://b.tiles.example.org/{z}/{x}/{y}.png'] },
    { type: 'raster', tiles: [] },
    { type: 'style', url: 'javascript:alert(1)' },
    null,
    undefined,
  ]) {
    const s = consoleStyle(bm, here);
    assert.equal(typeof s, 'object', JSON.stringify(bm));
    assert.deepEqual(s.sources, {}, JSON.stringify(bm));
    assert.deepEqual(s.layers.map((l) => l.type), ['background']);
  }
});

test('bounds of polygons and points, none for no geometry', () => {
  const fc = { features: [
    { geometry: { type: 'Polygon', coordinates: [[[4.83, 45.75], [4.84, 45.75], [4.84, 45.76], [4.83, 45.75]]] } },
    { geometry: { type: 'Point', coordinates: [4.9, 45.7] } },
    { geometry: null },
  ] };
  assert.deepEqual(boundsOf(fc), [4.83, 45.7, 4.9, 45.76]);
  assert.equal(boundsOf({ features: [] }), null);
  assert.equal(boundsOf({ features: [{ geometry: null }] }), null);
});

test('progress classes: 0–24, 25–49, 50–74, 75–99, 100 % and more; none without a target', () => {
  assert.deepEqual([0, 1, 2, 3, 5, 7, 8, 10, 25].map((n) => progressClass(n, 10)), [0, 0, 0, 1, 2, 2, 3, 4, 4]);
  assert.equal(progressClass(5, null), null);
  assert.equal(progressClass(5, 0), null);
  assert.equal(PROGRESS_CLASSES.length, 5);
});
