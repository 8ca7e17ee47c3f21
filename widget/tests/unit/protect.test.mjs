// Anti-abuse parts of a submission: the proof-of-work solver (checked against node:crypto), the headers,
// waiting out the minimum fill time (fake timers), the retry with a new proof, and the 409/429 messages.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import {
  powKernel, checkNonce, solveSliced, solvePow, workerSource, submissionHeaders, fillWaitMs, waitForMinFill, minFillSeconds,
  ProofOfWork, sendProtected, describeSubmitError, problemField, Api, ApiError, msg, parseOwn,
} from '../../.build/lib.mjs';

/** Leading zero bits of SHA-256(challenge:nonce), computed independently with node:crypto. */
function zeroBits(challenge, nonce) {
  const d = createHash('sha256').update(`${challenge}:${nonce}`, 'utf8').digest();
  let n = 0;
  for (const b of d) {
    if (b === 0) { n += 8; continue; }
    return n + Math.clz32(b) - 24;
  }
  return n;
}
function reference(challenge, difficulty) {
  for (let n = 0; ; n++) if (zeroBits(challenge, n) >= difficulty) return n;
}

test('solver: the smallest nonce, as node:crypto finds it (known vectors, multi-byte UTF-8, block boundaries)', async () => {
  const search = powKernel();
  const challenges = ['abc', 'c1vicmap-ch4llenge', 'défi-été-ü-🗺', 'x'.repeat(50), 'y'.repeat(54), 'z'.repeat(55), 'w'.repeat(62), 'v'.repeat(119)];
  for (const c of challenges) {
    const want = reference(c, 8);
    assert.equal(search(c, 8, 0, 1e6), want, `challenge ${JSON.stringify(c)}`);
    assert.equal(await solveSliced(c, 8), want);
  }
  // A fixed vector: SHA-256("civicmap:N") with ≥ 12 leading zero bits.
  const n12 = reference('civicmap', 12);
  assert.equal(await solvePow('civicmap', 12, { worker: false }), String(n12));
  assert.ok(zeroBits('civicmap', n12) >= 12);
  assert.equal(checkNonce('civicmap', 12, n12), true);
  assert.equal(checkNonce('civicmap', 12, n12 + 1), zeroBits('civicmap', n12 + 1) >= 12);
});

test('solver: difficulty 16 in slices that yield to the event loop', async () => {
  const want = reference('slices', 16);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const got = await solveSliced('slices', 16, { sliceMs: 5 });
  clearInterval(timer);
  assert.equal(got, want);
  assert.ok(ticks > 0, 'other tasks ran while solving');
});

test('solver: abortable', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(solveSliced('x', 30, { signal: ac.signal }), (e) => e.name === 'AbortError');
});

async function runWorkerSource(src, challenge, difficulty) {
  return new Promise((resolve) => {
    const ctx = { TextEncoder, Uint8Array, Uint32Array, Math, String, postMessage: resolve };
    vm.runInNewContext(src, ctx);
    ctx.onmessage({ data: { c: challenge, d: difficulty } });
  });
}

test('worker source is self-contained, also once minified as in civicmap.js', async () => {
  const want = reference('worker', 10);
  assert.equal(await runWorkerSource(workerSource(), 'worker', 10), want);
  // Same esbuild settings as build.mjs, then evaluate workerSource() from the minified bundle.
  const r = await esbuild.build({
    entryPoints: [fileURLToPath(new URL('../../src/lib/pow.ts', import.meta.url))], bundle: true, minify: true, target: ['es2020'],
    format: 'iife', globalName: 'pow', write: false, logLevel: 'silent',
  });
  const ctx = {};
  vm.runInNewContext(r.outputFiles[0].text, ctx);
  assert.equal(await runWorkerSource(ctx.pow.workerSource(), 'worker', 10), want);
});

test('solvePow: in a worker made from a Blob (posts the challenge, terminates it); falls back to the main thread when workers are refused', async (t) => {
  const saved = { Worker: globalThis.Worker, create: URL.createObjectURL, revoke: URL.revokeObjectURL };
  t.after(() => { globalThis.Worker = saved.Worker; URL.createObjectURL = saved.create; URL.revokeObjectURL = saved.revoke; });
  const blobs = new Map();
  URL.createObjectURL = (blob) => { const u = `blob:test/${blobs.size}`; blobs.set(u, blob); return u; };
  URL.revokeObjectURL = (u) => blobs.delete(u);
  const made = [];
  // A browser-like Worker: runs the Blob's script in its own context, messages cross asynchronously.
  globalThis.Worker = class {
    constructor(url) {
      this.terminated = false;
      made.push(this);
      const ctx = { TextEncoder, Uint8Array, Uint32Array, Math, String, postMessage: (data) => setTimeout(() => !this.terminated && this.onmessage?.({ data }), 0) };
      this.ready = blobs.get(url).text().then((src) => { vm.runInNewContext(src, ctx); return ctx; });
    }
    postMessage(data) { this.ready.then((ctx) => setTimeout(() => ctx.onmessage({ data }), 0)); }
    terminate() { this.terminated = true; }
  };
  assert.equal(await solvePow('in-worker', 10), String(reference('in-worker', 10)));
  assert.equal(made.length, 1);
  assert.equal(made[0].terminated, true, 'the worker is terminated once it answered');
  assert.equal(blobs.size, 0, 'the Blob URL is revoked');
  // A CSP without blob: workers makes the constructor throw: the main thread does the work.
  globalThis.Worker = class { constructor() { throw new Error('SecurityError: refused by worker-src'); } };
  assert.equal(await solvePow('no-worker', 10), String(reference('no-worker', 10)));
});

test('headers: honeypot value and fill time, proof when there is one', () => {
  assert.deepEqual(submissionHeaders({ honeypot: '', fillMs: 4321.7 }), { 'Civicmap-Honeypot': '', 'Civicmap-Fill-Ms': '4321' });
  assert.deepEqual(submissionHeaders({ honeypot: 'http://spam', fillMs: -5, proof: 'abc:17' }), { 'Civicmap-Honeypot': 'http://spam', 'Civicmap-Fill-Ms': '0', 'Civicmap-Proof': 'abc:17' });
  assert.equal(minFillSeconds({}), 3);
  assert.equal(minFillSeconds({ min_fill_seconds: 0 }), 0);
  assert.equal(minFillSeconds({ min_fill_seconds: 8 }), 8);
  assert.equal(minFillSeconds(null), 3);
});

test('api: submit carries the extra headers; challenge, own, update, erase', async () => {
  const calls = [];
  const f = async (url, init = {}) => {
    calls.push({ url, init });
    if (url.endsWith('/challenges')) return Response.json({ challenge: 'c', difficulty: 4, expires_at: '2030-01-01T00:00:00Z' });
    if (init.method === 'PATCH') return new Response(null, { status: 204 });
    return Response.json({ type: 'Feature', id: 'i', geometry: { type: 'Point', coordinates: [2.2, 48.9] }, properties: { a: 1 } });
  };
  const api = new Api('https://h', f);
  await api.submit('s', {}, 'k', submissionHeaders({ honeypot: '', fillMs: 3000, proof: 'c:1' }));
  assert.equal(calls[0].init.headers['Civicmap-Honeypot'], '');
  assert.equal(calls[0].init.headers['Civicmap-Fill-Ms'], '3000');
  assert.equal(calls[0].init.headers['Civicmap-Proof'], 'c:1');
  assert.equal(calls[0].init.headers['Idempotency-Key'], 'k');
  const c = await api.challenge('s');
  assert.deepEqual([calls[1].url, calls[1].init.method, c.difficulty], ['https://h/api/v1/campaigns/s/challenges', 'POST', 4]);
  const own = await api.own('s', 'i', 'tok');
  assert.deepEqual([calls[2].url, calls[2].init.method, calls[2].init.headers['X-Edit-Token']], ['https://h/api/v1/campaigns/s/submissions/i', undefined, 'tok']);
  assert.equal(own.properties.a, 1);
  assert.equal(await api.update('s', 'i', 'tok', { type: 'Feature' }), null);
  assert.deepEqual([calls[3].init.method, calls[3].init.headers['X-Edit-Token'], calls[3].init.body], ['PATCH', 'tok', '{"type":"Feature"}']);
  assert.ok(!calls.some((x) => x.url.includes('tok')), 'the token never goes in a URL');
});

test('minimum fill time: a fast human waits quietly, then sends (fake timers)', async (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  t.after(() => mock.timers.reset());
  assert.equal(fillWaitMs(1_000_000, 1_001_200, 3), 1800);
  assert.equal(fillWaitMs(1_000_000, 1_004_000, 3), 0);
  const start = Date.now();
  mock.timers.tick(1200); // the citizen sends after 1.2 s
  const sent = [];
  const waits = [];
  const p = sendProtected({
    send: async (headers) => { sent.push(headers); return 'ok'; },
    formStart: start, minFillSeconds: 3, honeypot: () => '', pow: null, onWait: () => waits.push(Date.now() - start),
  });
  await Promise.resolve();
  assert.deepEqual(waits, [1200], 'told to wait (aria-live) at once');
  mock.timers.tick(1000);
  await Promise.resolve();
  assert.equal(sent.length, 0, 'not sent before 3 s');
  mock.timers.tick(800);
  assert.equal(await p, 'ok');
  assert.equal(sent.length, 1);
  assert.ok(Number(sent[0]['Civicmap-Fill-Ms']) >= 3000, `fill ms ${sent[0]['Civicmap-Fill-Ms']}`);
  assert.equal(sent[0]['Civicmap-Honeypot'], '');
  assert.equal('Civicmap-Proof' in sent[0], false);
});

test('minimum fill time: no wait once it has passed', async (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 5000 });
  t.after(() => mock.timers.reset());
  let waited = false;
  const ms = await waitForMinFill(1000, 3, () => { waited = true; });
  assert.equal(waited, false);
  assert.equal(ms, 4000);
});

test('proof of work: started early, used once, renewed and retried once on 422 proof_of_work', async () => {
  let n = 0;
  const challenges = [];
  const pow = new ProofOfWork(async () => { const c = { challenge: `ch${++n}`, difficulty: 4, expires_at: '2999-01-01T00:00:00Z' }; challenges.push(c.challenge); return c; }, async (c) => `${c.length}`);
  pow.start();
  pow.start();
  await new Promise((ok) => setTimeout(ok, 0));
  assert.equal(n, 1, 'one challenge at a time');
  assert.equal(pow.ready, true);
  const sent = [];
  const bad = new ApiError(422, { status: 422, type: 'urn:civicmap:problem:validation', errors: [{ field: 'proof_of_work', detail: 'expired' }] });
  let fails = 1;
  const r = await sendProtected({
    send: async (h) => { sent.push(h['Civicmap-Proof']); if (fails-- > 0) throw bad; return 'ok'; },
    formStart: 0, minFillSeconds: 0, honeypot: () => '', pow,
  });
  assert.equal(r, 'ok');
  assert.deepEqual(sent, ['ch1:3', 'ch2:3'], 'a new challenge after the 422');
  // Twice in a row: the second 422 is shown, no third attempt.
  fails = 2;
  sent.length = 0;
  await assert.rejects(sendProtected({ send: async (h) => { sent.push(h['Civicmap-Proof']); if (fails-- > 0) throw bad; return 'ok'; }, formStart: 0, minFillSeconds: 0, honeypot: () => '', pow }), (e) => e === bad);
  assert.equal(sent.length, 2);
  // Other errors are not retried.
  sent.length = 0;
  const other = new ApiError(422, { errors: [{ field: 'properties.x', detail: 'bad' }] });
  await assert.rejects(sendProtected({ send: async (h) => { sent.push(h); throw other; }, formStart: 0, minFillSeconds: 0, honeypot: () => '', pow }), (e) => e === other);
  assert.equal(sent.length, 1);
});

test('proof of work: a challenge about to expire is replaced once; a failed fetch is retried on the next get()', async () => {
  let n = 0;
  const now = Date.parse('2030-01-01T00:00:00Z');
  const pow = new ProofOfWork(async () => {
    n++;
    if (n === 1) throw new ApiError(0, {});
    return { challenge: `c${n}`, difficulty: 1, expires_at: new Date(now + (n === 2 ? 2000 : 60000)).toISOString() };
  }, async () => '0', () => now);
  await assert.rejects(pow.get(), (e) => e.status === 0);
  assert.equal(await pow.get(), 'c3:0', 'c2 expired within 5 s: replaced by c3');
});

test('422 anti-abuse fields, 429 and 409 messages (fr, en)', () => {
  const e429 = { status: 429, problem: { status: 429, detail: 'slow down' }, retryAfter: 42 };
  assert.deepEqual(describeSubmitError(e429, 'en', []).general, ['Too many contributions from your connection; please try again in 42 seconds.']);
  assert.deepEqual(describeSubmitError(e429, 'fr', []).general, ['Trop de contributions depuis votre connexion ; veuillez réessayer dans 42 secondes.']);
  assert.match(describeSubmitError({ ...e429, retryAfter: null }, 'en', []).general[0], /in 60 seconds/);
  // A 409 (e.g. campaign closed) says what the server said.
  assert.match(describeSubmitError({ status: 409, problem: { detail: 'closed' } }, 'en', []).general[0], /refused the contribution: closed/);
  const v = (field) => ({ status: 422, problem: { status: 422, errors: [{ field, detail: 'x' }] } });
  assert.equal(describeSubmitError(v('website'), 'en', []).general[0], msg('en', 'errSpam'));
  assert.equal(describeSubmitError(v('form'), 'fr', []).general[0], msg('fr', 'errTooFast'));
  assert.equal(describeSubmitError(v('proof_of_work'), 'en', []).general[0], msg('en', 'errProof'));
  assert.equal(problemField({ field: 'form' }), 'form');
  // Field errors still go next to their fields; `message` is read as well as `detail`.
  const m = describeSubmitError({ status: 422, problem: { errors: [{ field: 'properties.households', message: 'too many' }] } }, 'en', ['households']);
  assert.deepEqual(m.fields, { households: 'too many' });
  assert.match(describeSubmitError({ status: 422, problem: { errors: [{ field: 'properties.q', detail: 'no' }] } }, 'fr', [], 'editRefused').general[0], /refusé les corrections/);
});

test('parseOwn: answers as form values, exact point, metadata in `civicmap` or in properties', () => {
  const fields = [
    { key: 'households', type: 'number', label: 'n' }, { key: 'ok', type: 'boolean', label: 'b' },
    { key: 'kind', type: 'choice', label: 'c', options: [{ value: 'a', label: 'A' }] }, { key: 'note', type: 'text', label: 't' },
  ];
  const a = parseOwn({ type: 'Feature', geometry: { type: 'Point', coordinates: [2.2069, 48.8924] }, properties: { households: 2.5, ok: true, kind: 'a' },
    civicmap: { status: 'published', district: { code: 'd1', name: 'Centre' }, created_at: '2026-01-02T03:04:05Z' } }, fields, 'fr');
  assert.deepEqual(a, { lon: 2.2069, lat: 48.8924, values: { households: '2,5', ok: true, kind: 'a' }, status: 'published', district: 'Centre', created: '2026-01-02T03:04:05Z', updated: null });
  const b = parseOwn({ type: 'Feature', geometry: null, properties: { note: 'hi', status: 'pending', district: 'Nord', updated_at: '2026-02-01T00:00:00Z' } }, fields, 'en');
  assert.deepEqual([b.lon, b.values, b.status, b.district, b.updated], [null, { note: 'hi' }, 'pending', 'Nord', '2026-02-01T00:00:00Z']);
});
