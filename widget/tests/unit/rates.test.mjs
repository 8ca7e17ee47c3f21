import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRate, hasHouseholds } from '../../.build/lib.mjs';

test('formatRate: one decimal in the language; withheld stays withheld; n/a without households', () => {
  assert.equal(formatRate(3.4, false, 'en'), '3.4');
  assert.equal(formatRate(3.4, false, 'fr'), '3,4');
  assert.equal(formatRate(12, false, 'en'), '12.0');
  assert.equal(formatRate(1234.5, false, 'en'), '1,234.5');
  assert.equal(formatRate(1234.5, false, 'fr').replace(/\s/g, ' '), '1 234,5');
  // A withheld count shows no rate, even if one were sent.
  assert.equal(formatRate(3000, true, 'fr'), 'masqué');
  assert.equal(formatRate(null, true, 'en'), 'hidden');
  assert.equal(formatRate(null, false, 'en'), 'n/a');
  assert.equal(formatRate(undefined, false, 'fr'), 'n.d.');
  assert.equal(formatRate(NaN, false, 'en'), 'n/a');
});

test('hasHouseholds: only when a district has a number on file', () => {
  assert.equal(hasHouseholds(null), false);
  assert.equal(hasHouseholds({ features: [] }), false);
  assert.equal(hasHouseholds({ features: [{ properties: { households: null } }, { properties: {} }] }), false);
  assert.equal(hasHouseholds({ features: [{ properties: { households: null } }, { properties: { households: 0 } }] }), true);
});
