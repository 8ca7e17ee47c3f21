import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, ApiError, uuid4, parseRetryAfter } from '../../.build/lib.mjs';

function fakeFetch(handler) {
  const calls = [];
  const f = async (url, init = {}) => { calls.push({ url, init }); return handler(url, init); };
  f.calls = calls;
  return f;
}
const json = (status, body, headers = {}) => new Response(body == null ? null : JSON.stringify(body), { status, headers: { 'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers } });

test('uuid4 is an RFC 4122 v4 UUID, different each time', () => {
  const a = uuid4(), b = uuid4();
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(a, b);
});

test('submit posts JSON with the Idempotency-Key', async () => {
  const f = fakeFetch(() => json(201, { id: 'i', status: 'published', district: { code: 'c', name: 'C' }, edit_token: 't', edit_url: '/embed/s/edit#id=i&token=t' }));
  const api = new Api('https://h.example/', f);
  const r = await api.submit('s', { type: 'Feature' }, 'k-1');
  assert.equal(r.id, 'i');
  assert.equal(f.calls[0].url, 'https://h.example/api/v1/campaigns/s/submissions');
  assert.equal(f.calls[0].init.method, 'POST');
  assert.equal(f.calls[0].init.headers['Idempotency-Key'], 'k-1');
  assert.equal(f.calls[0].init.headers['Content-Type'], 'application/json');
  assert.equal(f.calls[0].init.credentials, 'omit');
});

test('errors: 422 problem, 503 Retry-After, network failure', async () => {
  const problem = { status: 422, detail: 'invalid', errors: [{ field: 'properties.households', detail: 'must be at most 500' }] };
  let api = new Api('https://h', fakeFetch(() => json(422, problem)));
  await assert.rejects(api.submit('s', {}, 'k'), (e) => e instanceof ApiError && e.status === 422 && e.problem.errors[0].field === 'properties.households');
  api = new Api('https://h', fakeFetch(() => json(503, { status: 503, detail: 'db down' }, { 'Retry-After': '7' })));
  await assert.rejects(api.submit('s', {}, 'k'), (e) => e.status === 503 && e.retryAfter === 7 && e.message === 'db down');
  api = new Api('https://h', fakeFetch(() => new Response('<html>bad gateway</html>', { status: 502 })));
  await assert.rejects(api.campaign('s'), (e) => e.status === 502 && /bad gateway/.test(e.problem.detail));
  api = new Api('https://h', fakeFetch(() => { throw new TypeError('Failed to fetch'); }));
  await assert.rejects(api.campaign('s'), (e) => e.status === 0);
});

test('erase sends X-Edit-Token; 204 resolves', async () => {
  const f = fakeFetch(() => new Response(null, { status: 204 }));
  await new Api('https://h', f).erase('s', 'id 1', 'tok');
  assert.equal(f.calls[0].url, 'https://h/api/v1/campaigns/s/submissions/id%201');
  assert.equal(f.calls[0].init.method, 'DELETE');
  assert.equal(f.calls[0].init.headers['X-Edit-Token'], 'tok');
});

test('tileJson: the vector source when /tiles/{slug}.json answers, else null (GeoJSON fallback)', async () => {
  let api = new Api('https://h', fakeFetch(() => json(404, { status: 404 })));
  assert.equal(await api.tileJson('s'), null);
  api = new Api('https://h', fakeFetch(() => json(200, { tilejson: '3.0.0', tiles: ['/tiles/s/{z}/{x}/{y}.mvt'], maxzoom: 14 })));
  const tj = await api.tileJson('s');
  assert.deepEqual(tj.tiles, ['https://h/tiles/s/{z}/{x}/{y}.mvt']);
  assert.equal(tj.maxzoom, 14);
  api = new Api('https://h', fakeFetch(() => json(200, { tiles: [] })));
  assert.equal(await api.tileJson('s'), null);
});

test('districts bust caches on refresh', async () => {
  const f = fakeFetch(() => json(200, { type: 'FeatureCollection', features: [] }));
  const api = new Api('https://h', f);
  await api.districts('s');
  await api.districts('s', 123);
  assert.equal(f.calls[0].url, 'https://h/api/v1/campaigns/s/districts.geojson');
  assert.equal(f.calls[1].url, 'https://h/api/v1/campaigns/s/districts.geojson?v=123');
  assert.equal(f.calls[1].init.cache, 'no-store');
});

test('parseRetryAfter', () => {
  assert.equal(parseRetryAfter('30'), 30);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10);
  assert.equal(parseRetryAfter('soon'), null);
});
