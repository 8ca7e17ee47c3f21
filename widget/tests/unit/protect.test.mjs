// Anti-abuse parts of a submission: the proof-of-work solver (checked against node:crypto), the headers,
// waiting out the minimum fill time (fake timers), the retry with a new proof, the proof asked by a
// campaign under pressure, sending again after a short 429/503, and the 409/429 messages.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import {
  powKernel, checkNonce, solveSliced, solvePow, workerSource, submissionHeaders, fillWaitMs, waitForMinFill, minFillSeconds,
  ProofOfWork, sendProtected, describeSubmitError, problemField, busyRetrySeconds, Api, ApiError, msg, parseOwn,
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

test('proof of work: started early, used once, renewed on 422 proof_of_work (3 proofs at most)', async () => {
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
  // Three times in a row: the third 422 is shown, no fourth attempt (3 proofs at most).
  fails = 3;
  sent.length = 0;
  await assert.rejects(sendProtected({ send: async (h) => { sent.push(h['Civicmap-Proof']); if (fails-- > 0) throw bad; return 'ok'; }, formStart: 0, minFillSeconds: 0, honeypot: () => '', pow }), (e) => e === bad);
  assert.equal(sent.length, 3);
  assert.equal(new Set(sent).size, 3, 'a new proof each time');
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

// ------------------------------------------------------------------ under pressure, busy server

/**
 * A fake civicmap server: POST …/challenges answers the next of `challenges` (201); POST
 * …/submissions and …/subscriptions answer `answer(n, headers)`, n counting them from 1.
 */
function fakeServer(answer, challenges = []) {
  const calls = [];
  const f = async (url, init = {}) => {
    calls.push({ url, init });
    if (url.endsWith('/challenges')) return Response.json(challenges.shift(), { status: 201 });
    return answer(calls.filter((c) => !c.url.endsWith('/challenges')).length, init.headers);
  };
  f.calls = calls;
  f.paths = () => calls.map((c) => c.url.split('/').pop());
  f.sent = () => calls.filter((c) => !c.url.endsWith('/challenges'));
  return f;
}
const problem = (status, body, headers = {}) => new Response(JSON.stringify({ status, ...body }), { status, headers: { 'Content-Type': 'application/problem+json', ...headers } });
const proofNeeded = (detail) => problem(422, { type: 'urn:civicmap:problem:proof-of-work-needed', title: 'Proof of work needed', detail, field: 'proof_of_work', errors: [{ field: 'proof_of_work', detail }] });
const busyAnswer = (status, retryAfter) => problem(status, { type: `urn:civicmap:problem:${status === 429 ? 'rate-limited' : 'unavailable'}`, detail: 'busy' }, { 'Retry-After': String(retryAfter) });
const receipt = () => Response.json({ id: 'i', status: 'published', district: null, edit_token: 't', edit_url: '/embed/s/edit#id=i&token=t' }, { status: 201 });
/** Whether the Civicmap-Proof header has at least `difficulty` leading zero bits. */
function proves(headers, difficulty) {
  const p = headers['Civicmap-Proof'];
  if (!p) return false;
  const at = p.lastIndexOf(':');
  return zeroBits(p.slice(0, at), p.slice(at + 1)) >= difficulty;
}
const BODY = { type: 'Feature', geometry: { type: 'Point', coordinates: [2.2069, 48.8924] }, properties: { households: 2 } };
const FAR = '2999-01-01T00:00:00Z';

test('under pressure: a 422 proof_of_work without a proof of work at load fetches a challenge, solves it, and sends the same request again with the proof', async () => {
  const f = fakeServer((n, h) => (n > 1 && proves(h, 8) ? receipt() : proofNeeded('is required while the campaign is under pressure')),
    [{ challenge: 'press1', difficulty: 8, expires_at: FAR }]);
  const api = new Api('https://h', f);
  const told = [];
  const r = await sendProtected({
    send: (h) => api.submit('s', BODY, 'key-1', h), formStart: Date.now() - 5000, minFillSeconds: 3, honeypot: () => '',
    pow: null, challenge: () => api.challenge('s'), onWait: () => told.push('wait'), onBusy: () => told.push('busy'),
  });
  assert.equal(r.id, 'i');
  assert.deepEqual(f.paths(), ['submissions', 'challenges', 'submissions']);
  assert.equal(f.calls[1].init.method, 'POST');
  const [first, second] = f.sent();
  assert.equal('Civicmap-Proof' in first.init.headers, false, 'no proof at first: the campaign asked for none at load');
  const { 'Civicmap-Proof': proof, ...rest } = second.init.headers;
  assert.deepEqual(rest, first.init.headers, 'the same headers (Idempotency-Key, honeypot, fill time), the proof apart');
  assert.equal(rest['Idempotency-Key'], 'key-1');
  assert.equal(second.init.body, first.init.body);
  assert.match(proof, /^press1:\d+$/);
  assert.ok(proves(second.init.headers, 8));
  assert.deepEqual(told, ['wait'], 'told to wait while the proof is solved');
});

test('under pressure: the difficulty rises between two attempts: a second proof, at the new difficulty; 3 proofs at most, then the message', async () => {
  let f = fakeServer((n, h) => {
    if (n === 1) return proofNeeded('is required while the campaign is under pressure');
    // The flood goes on: by the time the first proof arrives, the server asks for 10 bits.
    if (n === 2) return proofNeeded('SHA-256 of challenge:nonce starts with 4 zero bits; this campaign needs 10');
    return proves(h, 10) ? receipt() : proofNeeded('not enough');
  }, [{ challenge: 'rise1', difficulty: 4, expires_at: FAR }, { challenge: 'rise2', difficulty: 10, expires_at: FAR }]);
  let api = new Api('https://h', f);
  const r = await sendProtected({ send: (h) => api.submit('s', BODY, 'key-2', h), formStart: 0, minFillSeconds: 0, honeypot: () => '', pow: null, challenge: () => api.challenge('s') });
  assert.equal(r.id, 'i');
  assert.deepEqual(f.paths(), ['submissions', 'challenges', 'submissions', 'challenges', 'submissions']);
  const proofs = f.sent().map((c) => c.init.headers['Civicmap-Proof']);
  assert.equal(proofs[0], undefined);
  assert.match(proofs[1], /^rise1:/);
  assert.match(proofs[2], /^rise2:/);
  assert.ok(proves(f.sent()[2].init.headers, 10), 'the second proof meets the new difficulty');
  assert.ok(f.sent().every((c) => c.init.headers['Idempotency-Key'] === 'key-2'));

  // Refused every time: one try without a proof, then 3 proofs, then the error is shown.
  const challenges = Array.from({ length: 5 }, (_, i) => ({ challenge: `again${i}`, difficulty: 1, expires_at: FAR }));
  f = fakeServer(() => proofNeeded('needs 22'), challenges);
  api = new Api('https://h', f);
  const err = await sendProtected({ send: (h) => api.submit('s', BODY, 'key-3', h), formStart: 0, minFillSeconds: 0, honeypot: () => '', pow: null, challenge: () => api.challenge('s') }).catch((e) => e);
  assert.ok(err instanceof ApiError && err.status === 422);
  assert.deepEqual(f.paths(), ['submissions', 'challenges', 'submissions', 'challenges', 'submissions', 'challenges', 'submissions']);
  assert.deepEqual(describeSubmitError(err, 'fr', []).general, [msg('fr', 'errProof')]);

  // Without a way to get a challenge, the 422 is shown at once.
  f = fakeServer(() => proofNeeded('required'));
  api = new Api('https://h', f);
  await assert.rejects(sendProtected({ send: (h) => api.submit('s', BODY, 'key-4', h), formStart: 0, minFillSeconds: 0, honeypot: () => '', pow: null }), (e) => e.status === 422);
  assert.equal(f.calls.length, 1);
});

test('a proof asked by the problem type alone (no field) counts as proof_of_work', () => {
  assert.equal(problemField({ type: 'urn:civicmap:problem:proof-of-work-needed', status: 422 }), 'proof_of_work');
  assert.equal(problemField({ type: 'urn:civicmap:problem:validation', status: 422 }), null);
  assert.equal(problemField({ field: 'proof_of_work', errors: [{ field: 'proof_of_work' }] }), 'proof_of_work');
});

test('429 with Retry-After 2: waits 2 s and a jitter under 1 s, tells the citizen, sends again with the same Idempotency-Key, body and proof', async () => {
  const f = fakeServer((n) => (n === 1 ? busyAnswer(429, 2) : receipt()), [{ challenge: 'static1', difficulty: 4, expires_at: FAR }]);
  const api = new Api('https://h', f);
  // A campaign with a proof of work at load: the proof was not spent by the 429, it goes again.
  const pow = new ProofOfWork(() => api.challenge('s'));
  const busy = [];
  const slept = [];
  const r = await sendProtected({
    send: (h) => api.submit('s', BODY, 'key-5', h), formStart: 0, minFillSeconds: 0, honeypot: () => '', pow,
    challenge: () => api.challenge('s'), onBusy: (s) => busy.push(s), sleep: async (ms) => { slept.push(ms); }, random: () => 0.5,
  });
  assert.equal(r.id, 'i');
  assert.deepEqual(busy, [2]);
  assert.deepEqual(slept, [2500], '2 s plus 0.5 s of jitter');
  assert.deepEqual(f.paths(), ['challenges', 'submissions', 'submissions'], 'no new challenge');
  const [a, b] = f.sent();
  assert.deepEqual(b.init.headers, a.init.headers, 'the very same headers: Idempotency-Key, honeypot, fill time, proof');
  assert.equal(b.init.body, a.init.body);
  assert.equal(a.init.headers['Idempotency-Key'], 'key-5');
  assert.match(a.init.headers['Civicmap-Proof'], /^static1:/);
  assert.equal(msg('fr', 'sendingBusy', { s: 2 }), 'Le service est très sollicité, nouvel essai dans 2 s…');
  assert.equal(msg('en', 'sendingBusy', { s: 2 }), 'The service is busy, retrying in 2 s…');
});

test('429 with Retry-After 2: the real timer (fake clock): nothing is sent before 2 s and the jitter', async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  let sends = 0;
  let onBusy;
  const busy = new Promise((ok) => { onBusy = ok; });
  const p = sendProtected({
    send: async () => { if (++sends === 1) throw new ApiError(429, { status: 429 }, 2); return 'ok'; },
    formStart: 0, minFillSeconds: 0, honeypot: () => '', pow: null, onBusy, random: () => 0.25,
  });
  assert.equal(await busy, 2);
  const flush = async () => { for (let i = 0; i < 10; i++) await Promise.resolve(); };
  mock.timers.tick(2249);
  await flush();
  assert.equal(sends, 1, 'not sent again before 2.25 s');
  mock.timers.tick(1);
  assert.equal(await p, 'ok');
  assert.equal(sends, 2);
});

test('429 with Retry-After 60 (or 503 without Retry-After): no automatic retry, the error is shown', async () => {
  for (const answer of [busyAnswer(429, 60), problem(503, { detail: 'busy' })]) {
    const f = fakeServer(() => answer.clone());
    const api = new Api('https://h', f);
    const busy = [];
    const slept = [];
    const err = await sendProtected({
      send: (h) => api.submit('s', BODY, 'key-6', h), formStart: 0, minFillSeconds: 0, honeypot: () => '', pow: null,
      onBusy: (s) => busy.push(s), sleep: async (ms) => { slept.push(ms); },
    }).catch((e) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(f.calls.length, 1);
    assert.deepEqual([busy, slept], [[], []]);
  }
  const e429 = new ApiError(429, { status: 429 }, 60);
  assert.equal(busyRetrySeconds(e429), null);
  assert.deepEqual(describeSubmitError(e429, 'en', []).general, ['Too many contributions from your connection; please try again in 60 seconds.']);
  assert.equal(busyRetrySeconds(new ApiError(429, {}, 10)), 10);
  assert.equal(busyRetrySeconds(new ApiError(503, {}, 0)), 0);
  assert.equal(busyRetrySeconds(new ApiError(503, {}, 11)), null);
  assert.equal(busyRetrySeconds(new ApiError(500, {}, 2)), null);
  assert.equal(busyRetrySeconds(new ApiError(422, {}, 2)), null);
});

test('a busy server: 3 automatic retries at most, then the error is shown', async () => {
  const f = fakeServer(() => busyAnswer(503, 1));
  const api = new Api('https://h', f);
  const busy = [];
  const slept = [];
  const err = await sendProtected({
    send: (h) => api.submit('s', BODY, 'key-7', h), formStart: 0, minFillSeconds: 0, honeypot: () => '', pow: null,
    onBusy: (s) => busy.push(s), sleep: async (ms) => { slept.push(ms); }, random: () => 0.999,
  }).catch((e) => e);
  assert.ok(err instanceof ApiError && err.status === 503 && err.retryAfter === 1);
  assert.equal(f.calls.length, 4, 'the first try and 3 retries');
  assert.ok(f.calls.every((c) => c.init.headers['Idempotency-Key'] === 'key-7'));
  assert.deepEqual(busy, [1, 1, 1]);
  assert.deepEqual(slept, [1999, 1999, 1999], 'the jitter stays under 1 s');
  assert.match(describeSubmitError(err, 'en', []).general[0], /temporarily unavailable/);
});

test('follow: a 422 proof_of_work gets a proof and sends again with Civicmap-Proof only (no honeypot or fill time); a short 429 is waited out too', async () => {
  const f = fakeServer((n, h) => (n === 1 ? proofNeeded('required') : n === 2 ? busyAnswer(429, 1) : proves(h, 6) ? new Response(null, { status: 202 }) : proofNeeded('bad')),
    [{ challenge: 'follow1', difficulty: 6, expires_at: FAR }]);
  const api = new Api('https://h', f);
  const body = { email: 'a@example.org', district: null, lang: 'fr' };
  const slept = [];
  await sendProtected({ send: (h) => api.follow('s', body, h), formStart: 0, minFillSeconds: 0, pow: null, challenge: () => api.challenge('s'), sleep: async (ms) => { slept.push(ms); }, random: () => 0 });
  assert.deepEqual(f.paths(), ['subscriptions', 'challenges', 'subscriptions', 'subscriptions']);
  assert.deepEqual(slept, [1000]);
  const [a, b, c] = f.sent().map((x) => x.init.headers);
  assert.deepEqual(a, { Accept: 'application/json, application/problem+json', 'Content-Type': 'application/json' });
  assert.deepEqual(Object.keys(b).sort(), ['Accept', 'Civicmap-Proof', 'Content-Type']);
  assert.deepEqual(c, b, 'the retry after the 429 carries the same proof');
  assert.ok(f.sent().every((x) => x.init.body === JSON.stringify(body)));
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
