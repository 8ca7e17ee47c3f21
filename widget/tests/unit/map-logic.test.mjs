import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { computeBreaks, colorFor, fillColorExpression, totalOf, WITHHELD_COLOR, interiorPoint, districtAt, featureContains, bboxOf } from '../../.build/lib.mjs';

test('computeBreaks: round classes from k to the max', () => {
  const b = computeBreaks([12, 31, 58, 44, 7, 96, 23, 15, 5, null], 5);
  assert.deepEqual(b.map((x) => [x.from, x.to]), [[5, 24], [25, 44], [45, 64], [65, 84], [85, null]]);
  assert.deepEqual(computeBreaks([], 5).map((x) => [x.from, x.to]), [[5, null]]);
  assert.deepEqual(computeBreaks([0, 1, 2], 0).map((x) => [x.from, x.to]), [[0, 0], [1, 1], [2, null]]);
  const big = computeBreaks([5, 2000], 5);
  assert.ok(big.length >= 2 && big.length <= 5);
  for (const x of big) assert.ok(Number.isInteger(x.from));
  // Every shown count falls in exactly one class.
  for (const c of [5, 24, 25, 96]) assert.equal(b.filter((x) => c >= x.from && (x.to == null || c <= x.to)).length, 1);
});

test('colours: withheld grey, classes in order; the MapLibre expression agrees', () => {
  const b = computeBreaks([5, 100], 5);
  assert.equal(colorFor(null, true, b), WITHHELD_COLOR);
  assert.equal(colorFor(5, false, b), b[0].color);
  assert.equal(colorFor(100, false, b), b[b.length - 1].color);
  const e = fillColorExpression(b);
  assert.equal(e[0], 'step');
  assert.equal(e[2], b[0].color);
  assert.equal(e.length, 3 + 2 * (b.length - 1));
});

test('totalOf: server total when present, else the sum of shown counts', () => {
  const f = (count, withheld = false) => ({ properties: { count, withheld } });
  assert.deepEqual(totalOf({ features: [f(5), f(null, true)], total: { count: 7, withheld: false } }), { count: 7, withheld: false });
  assert.deepEqual(totalOf({ features: [f(5), f(null, true), f(6)] }), { count: 11, withheld: false });
});

test('interiorPoint is inside a concave (U-shaped) district', () => {
  const u = { type: 'Feature', properties: { code: 'u', name: 'U' }, geometry: { type: 'Polygon', coordinates: [[[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3], [0, 0]]] } };
  const [x, y] = interiorPoint(u);
  assert.ok(featureContains(u, x, y), `${x},${y} inside`);
  const holed = { type: 'Feature', properties: {}, geometry: { type: 'MultiPolygon', coordinates: [[[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]]] } };
  const [hx, hy] = interiorPoint(holed);
  assert.ok(featureContains(holed, hx, hy), `${hx},${hy} inside the ring, not in the hole`);
});

const DATA = new URL('../../../data/nanterre-quartiers.geojson', import.meta.url);
test('every Nanterre district gets an interior point that falls in that district', { skip: !existsSync(DATA) && 'data file not present' }, () => {
  const fc = JSON.parse(readFileSync(DATA, 'utf8'));
  for (const f of fc.features) {
    const [x, y] = interiorPoint(f);
    assert.equal(districtAt(fc, x, y)?.properties.code, f.properties.code, f.properties.code);
  }
  const b = bboxOf(fc);
  assert.ok(b[0] > 2.1 && b[2] < 2.3 && b[1] > 48.8 && b[3] < 49);
});
