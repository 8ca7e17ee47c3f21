import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDecimal, charLength, validateField, validateAnswers, validateLonLat, mapServerErrors, errorMessage } from '../../.build/lib.mjs';

const households = { key: 'households', type: 'number', label: { fr: 'Foyers', en: 'Households' }, required: true, min: 1, max: 500, integer: true };
const ratio = { key: 'ratio', type: 'number', label: 'Ratio', required: false, min: null, max: null, integer: false };
const connection = { key: 'connection', type: 'choice', label: { fr: 'Connexion', en: 'Connection' }, required: true, options: [{ value: 'adsl', label: { fr: 'ADSL', en: 'ADSL' } }, { value: '4g', label: { fr: '4G', en: '4G' } }] };
const comment = { key: 'comment', type: 'text', label: { fr: 'Commentaire', en: 'Comment' }, required: false, max_length: 5 };
const consent = { key: 'consent', type: 'boolean', label: { fr: 'Accord', en: 'Consent' }, required: false };
const mustAgree = { key: 'agree', type: 'boolean', label: { fr: 'Accord', en: 'Agree' }, required: true };

test('parseDecimal accepts dot and French comma, rejects junk', () => {
  assert.equal(parseDecimal('12'), 12);
  assert.equal(parseDecimal(' 12 '), 12);
  assert.equal(parseDecimal('12,5'), 12.5);
  assert.equal(parseDecimal('-3.25'), -3.25);
  assert.equal(parseDecimal('.5'), 0.5);
  for (const bad of ['', ' ', 'abc', '1e3', '12abc', '1 000', '1,2,3', '0x10', 'Infinity', 'NaN']) assert.equal(parseDecimal(bad), null, bad);
});

test('number: required, integer, min, max', () => {
  assert.deepEqual(validateField(households, ''), { ok: false, error: { code: 'required' } });
  assert.deepEqual(validateField(households, '   '), { ok: false, error: { code: 'required' } });
  assert.deepEqual(validateField(households, 'deux'), { ok: false, error: { code: 'number' } });
  assert.deepEqual(validateField(households, '2.5'), { ok: false, error: { code: 'integer' } });
  assert.deepEqual(validateField(households, '0'), { ok: false, error: { code: 'min', limit: 1 } });
  assert.deepEqual(validateField(households, '501'), { ok: false, error: { code: 'max', limit: 500 } });
  assert.deepEqual(validateField(households, '1'), { ok: true, value: 1, present: true });
  assert.deepEqual(validateField(households, '500'), { ok: true, value: 500, present: true });
  assert.deepEqual(validateField(ratio, ''), { ok: true, value: undefined, present: false });
  assert.deepEqual(validateField(ratio, '0,75'), { ok: true, value: 0.75, present: true });
});

test('choice: required and must be one of the options', () => {
  assert.deepEqual(validateField(connection, ''), { ok: false, error: { code: 'required' } });
  assert.deepEqual(validateField(connection, 'fibre'), { ok: false, error: { code: 'choice' } });
  assert.deepEqual(validateField(connection, '4g'), { ok: true, value: '4g', present: true });
  assert.deepEqual(validateField({ ...connection, required: false }, ''), { ok: true, value: undefined, present: false });
});

test('text: max_length counts characters as the server does (code points), trims', () => {
  assert.equal(charLength('héllo'), 5);
  assert.equal(charLength('👍👍'), 2); // 4 UTF-16 units
  assert.deepEqual(validateField(comment, '👍👍👍👍👍'), { ok: true, value: '👍👍👍👍👍', present: true });
  assert.deepEqual(validateField(comment, '123456'), { ok: false, error: { code: 'max_length', limit: 5, length: 6 } });
  assert.deepEqual(validateField(comment, '  abc  '), { ok: true, value: 'abc', present: true });
  assert.deepEqual(validateField(comment, '   '), { ok: true, value: undefined, present: false });
  assert.deepEqual(validateField({ ...comment, required: true }, ''), { ok: false, error: { code: 'required' } });
});

test('boolean: always sent; required means it must be ticked', () => {
  assert.deepEqual(validateField(consent, undefined), { ok: true, value: false, present: true });
  assert.deepEqual(validateField(consent, true), { ok: true, value: true, present: true });
  assert.deepEqual(validateField(mustAgree, false), { ok: false, error: { code: 'required_check' } });
  assert.deepEqual(validateField(mustAgree, true), { ok: true, value: true, present: true });
});

test('validateAnswers builds the properties and the errors by key', () => {
  const fields = [households, connection, comment, consent];
  const ok = validateAnswers(fields, { households: '3', connection: 'adsl', comment: '', consent: true });
  assert.deepEqual(ok, { properties: { households: 3, connection: 'adsl', consent: true }, errors: {} });
  const bad = validateAnswers(fields, { households: '600', connection: 'x', comment: 'toolong' });
  assert.deepEqual(Object.keys(bad.errors).sort(), ['comment', 'connection', 'households']);
  assert.deepEqual(bad.properties, { consent: false });
  // Unknown field types from a newer server are left to the server.
  assert.deepEqual(validateAnswers([{ key: 'future', type: 'date', label: 'x' }], { future: 'x' }), { properties: {}, errors: {} });
});

test('error messages exist in both languages', () => {
  const errs = [{ code: 'required' }, { code: 'required_check' }, { code: 'number' }, { code: 'integer' }, { code: 'min', limit: 1 }, { code: 'max', limit: 2.5 }, { code: 'max_length', limit: 5, length: 6 }, { code: 'choice' }];
  for (const e of errs) for (const l of ['fr', 'en']) {
    const m = errorMessage(e, l);
    assert.ok(m && !m.includes('{'), `${e.code} ${l}: ${m}`);
  }
  assert.equal(errorMessage({ code: 'max', limit: 2.5 }, 'fr'), 'La valeur doit être au plus 2,5.');
  assert.equal(errorMessage({ code: 'max', limit: 500 }, 'en'), 'The value must be at most 500.');
});

test('validateLonLat: ranges, comma decimals, campaign bounds', () => {
  const b = [2.18, 48.87, 2.24, 48.91];
  assert.deepEqual(validateLonLat('2,2', '48,89', b), { ok: true, lon: 2.2, lat: 48.89 });
  assert.deepEqual(validateLonLat('', '', b), { ok: false, error: 'missing' });
  assert.deepEqual(validateLonLat('200', '48', null), { ok: false, error: 'lon' });
  assert.deepEqual(validateLonLat('2', 'north', null), { ok: false, error: 'lat' });
  assert.deepEqual(validateLonLat(2.3, 48.89, b), { ok: false, error: 'outside' });
  assert.deepEqual(validateLonLat(2.3, 48.89, null), { ok: true, lon: 2.3, lat: 48.89 });
});

test('mapServerErrors puts each server error where it belongs', () => {
  const p = { status: 422, detail: 'invalid', errors: [
    { field: 'properties.households', detail: 'must be at most 500' },
    { field: 'geometry', detail: 'is outside the campaign area' },
    { field: 'properties.unknown', detail: 'not in the form' },
    { field: 'type', detail: 'must be Feature' },
  ] };
  assert.deepEqual(mapServerErrors(p, ['households', 'comment']), {
    fields: { households: 'must be at most 500' },
    geometry: 'is outside the campaign area',
    general: ['properties.unknown: not in the form', 'type: must be Feature'],
  });
  assert.deepEqual(mapServerErrors({ status: 400, detail: 'body is not JSON' }, []), { fields: {}, geometry: null, general: ['body is not JSON'] });
  assert.deepEqual(mapServerErrors({ errors: [{ field: 'geometry.coordinates', detail: 'bad' }] }, []).geometry, 'bad');
});
