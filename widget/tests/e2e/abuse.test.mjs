// Anti-abuse parts of the widget in a real browser: the honeypot field nobody sees or reaches, the
// fill-time and honeypot headers of a fast human's submission (which waits, never fails), the messages
// of a 429 and a 409, and the proof of work of a campaign that asks for one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  launch, newPage, embedUrl, getCampaign, getDistricts, validAnswers, waitForWidget, fillForm, deepFocus,
  serverHasAbuse, adminToken, api, BASE, SLUG,
} from './helpers.mjs';
import { bboxOf } from '../../.build/lib.mjs';

const browser = await launch();
test.after(() => browser.close());

/** Records every text put in the widget's polite live region(s). */
async function recordAnnouncements(page) {
  await page.evaluate(() => {
    const root = document.querySelector('civicmap-map').shadowRoot;
    window.__announced = [];
    new MutationObserver(() => {
      for (const r of root.querySelectorAll('[aria-live="polite"].cm-sr')) if (r.textContent) window.__announced.push(r.textContent);
    }).observe(root, { childList: true, characterData: true, subtree: true });
  });
}

async function pickFirstDistrict(page) {
  const select = page.locator('civicmap-map select[name="cm-district"]');
  await select.selectOption(await select.locator('option').nth(1).getAttribute('value'));
}

test('the honeypot field is neither visible nor reachable with Tab', async () => {
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page);
  const hp = page.locator('civicmap-map input[name="website"]');
  assert.equal(await hp.count(), 1, 'one honeypot field');
  assert.equal(await hp.getAttribute('tabindex'), '-1');
  assert.equal(await hp.getAttribute('autocomplete'), 'off');
  assert.equal(await hp.evaluate((el) => el.closest('[aria-hidden="true"]') != null), true, 'inside an aria-hidden wrapper');
  assert.equal(await hp.evaluate((el) => el.labels[0]?.textContent), 'Leave this empty');
  const box = await hp.boundingBox();
  assert.ok(!box || box.x + box.width <= 0 || box.width <= 1, `off-screen: ${JSON.stringify(box)}`);
  // Tab through the whole widget: the focus never lands on it.
  const seen = [];
  for (let i = 0; i < 120; i++) {
    await page.keyboard.press('Tab');
    const f = await deepFocus(page);
    seen.push(f?.name ?? f?.tag);
    assert.notEqual(f?.name, 'website', `Tab #${i + 1} reached the honeypot`);
    if (f?.cls?.includes('cm-submit')) break;
  }
  assert.ok(seen.includes(null) || seen.some((n) => n && n !== 'body'), 'Tab moved through the widget');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a fast human: the widget waits out min_fill_seconds, then sends Civicmap-Fill-Ms ≥ min and an empty honeypot', async () => {
  const campaign = await getCampaign();
  const min = typeof campaign.min_fill_seconds === 'number' ? campaign.min_fill_seconds : 3;
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=fr&map=0'));
  await waitForWidget(page, { map: false });
  const shownAt = Date.now();
  await recordAnnouncements(page);
  await pickFirstDistrict(page);
  await fillForm(page, campaign, validAnswers(campaign));
  const req = page.waitForRequest((r) => r.method() === 'POST' && r.url().includes(`/campaigns/${SLUG}/submissions`));
  const clickedAt = Date.now();
  await page.locator('civicmap-map button.cm-submit').click();
  const fast = clickedAt - shownAt < min * 1000;
  if (fast) {
    // Sending state and an announcement while it waits; no error.
    assert.equal(await page.locator('civicmap-map button.cm-submit').isDisabled(), true);
    await page.waitForFunction(() => window.__announced.some((t) => /Envoi en cours/.test(t)), null, { timeout: 3000 });
  }
  const r = await req;
  const h = r.headers();
  assert.ok(Number(h['civicmap-fill-ms']) >= min * 1000, `Civicmap-Fill-Ms ${h['civicmap-fill-ms']} ≥ ${min * 1000}`);
  assert.equal(h['civicmap-honeypot'], '', 'empty honeypot header');
  assert.ok(!('civicmap-proof' in h) || campaign.proof_of_work, 'no proof for a campaign without proof of work');
  await page.locator('civicmap-map .cm-success').waitFor({ timeout: 15000 });
  assert.equal(await page.locator('civicmap-map .cm-alert:not([hidden])').count(), 0, 'no error for a fast human');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('429 and 409: clear messages through the alert and the live region (answers simulated)', async () => {
  const campaign = await getCampaign();
  const page = await newPage(browser);
  let answer = 429;
  await page.route(`${BASE}/api/v1/campaigns/${SLUG}/submissions`, (route) => route.fulfill(answer === 429
    ? { status: 429, headers: { 'Retry-After': '37', 'Content-Type': 'application/problem+json' }, body: JSON.stringify({ type: 'urn:civicmap:problem:rate-limited', title: 'Too Many Requests', status: 429, detail: 'slow down' }) }
    : { status: 409, headers: { 'Content-Type': 'application/problem+json' }, body: JSON.stringify({ type: 'urn:civicmap:problem:conflict', title: 'Conflict', status: 409, detail: 'campaign `demo` closed on 2026-11-30' }) }));
  await page.goto(embedUrl('lang=en&map=0'));
  await waitForWidget(page, { map: false });
  await recordAnnouncements(page);
  await pickFirstDistrict(page);
  await fillForm(page, campaign, validAnswers(campaign));
  await page.locator('civicmap-map button.cm-submit').click();
  const alert = page.locator('civicmap-map .cm-alert[role="alert"]');
  await alert.filter({ hasText: 'Too many contributions from your connection; please try again in 37 seconds.' }).waitFor({ timeout: 15000 });
  await page.waitForFunction(() => window.__announced.some((t) => /try again in 37 seconds/.test(t)), null, { timeout: 5000 });
  assert.equal(await page.locator('civicmap-map button.cm-submit').isEnabled(), true);
  answer = 409;
  await page.locator('civicmap-map button.cm-submit').click();
  await alert.filter({ hasText: 'closed on 2026-11-30' }).waitFor({ timeout: 15000 });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

/** Leading zero bits of SHA-256(text), with node:crypto. */
function zeroBits(text) {
  let n = 0;
  for (const b of createHash('sha256').update(text, 'utf8').digest()) {
    if (b === 0) { n += 8; continue; }
    return n + Math.clz32(b) - 24;
  }
  return n;
}

test('proof of work: solved in a blob worker under the embed CSP, sent, and renewed once after a used challenge', async (t) => {
  if (!(await serverHasAbuse())) return t.skip('the server has no anti-abuse settings yet (no min_fill_seconds in the campaign)');
  const token = await adminToken();
  if (!token) return t.skip('no admin token (set CIVICMAP_ADMIN_TOKEN, or DATABASE_URL with target/debug/civicmap) to create a campaign with proof_of_work');
  const demo = await getCampaign();
  const b = demo.bounds ?? bboxOf(await getDistricts());
  const slug = `e2e-pow-${Date.now().toString(36)}`;
  const difficulty = 14;
  const created = await api('/api/v1/admin/campaigns', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({
      slug, title: { fr: 'E2E preuve de travail', en: 'E2E proof of work' }, status: 'open',
      area: { type: 'Polygon', coordinates: [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]] },
      form: demo.form, proof_of_work: { difficulty }, min_fill_seconds: 1,
    }),
  });
  assert.equal(created.status, 201, `create campaign: ${JSON.stringify(created.body)}`);
  const page = await newPage(browser);
  const workers = [];
  page.on('worker', (w) => workers.push(w.url()));
  const csp = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) csp.push(m.text()); });
  await page.goto(`${BASE}/embed/${slug}?lang=en&map=0`);
  await waitForWidget(page, { map: false });
  const challengeReq = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith(`/campaigns/${slug}/challenges`));
  await page.locator('civicmap-map .cm-form summary').click();
  await page.locator('civicmap-map input[name="cm-lon"]').fill(((b[0] + b[2]) / 2).toFixed(6));
  await page.locator('civicmap-map input[name="cm-lat"]').fill(((b[1] + b[3]) / 2).toFixed(6));
  await page.locator('civicmap-map input[name="cm-lat"]').press('Enter');
  await challengeReq; // started at the first use of the form, before sending
  await fillForm(page, demo, validAnswers(demo));
  const sub = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith(`/campaigns/${slug}/submissions`));
  await page.locator('civicmap-map button.cm-submit').click();
  const proof = (await sub).headers()['civicmap-proof'];
  assert.ok(proof, 'Civicmap-Proof sent');
  assert.ok(zeroBits(proof) >= difficulty, `SHA-256(${proof}) has ≥ ${difficulty} leading zero bits`);
  assert.match(proof, /^[^:]+:\d+$/);
  await page.locator('civicmap-map .cm-success').waitFor({ timeout: 30000 });
  assert.ok(workers.some((u) => u.startsWith('blob:')), `solved in a blob: worker (${workers.join(', ')})`);
  assert.deepEqual(csp, [], 'no CSP violation');

  // A second contribution whose first try carries the already used proof: the server says 422
  // proof_of_work, the widget gets a new challenge and sends again, once.
  await page.locator('civicmap-map .cm-success button', { hasText: 'Add another contribution' }).click();
  let replaced = false;
  const proofs = [];
  await page.route(`${BASE}/api/v1/campaigns/${slug}/submissions`, async (route) => {
    const headers = route.request().headers();
    proofs.push(headers['civicmap-proof']);
    if (!replaced) { replaced = true; await route.continue({ headers: { ...headers, 'civicmap-proof': proof } }); } else await route.continue();
  });
  const statuses = [];
  page.on('response', (r) => { if (r.url().endsWith(`/campaigns/${slug}/submissions`)) statuses.push(r.status()); });
  await page.locator('civicmap-map .cm-form summary').click();
  await page.locator('civicmap-map input[name="cm-lon"]').fill(((b[0] * 2 + b[2]) / 3).toFixed(6));
  await page.locator('civicmap-map input[name="cm-lat"]').fill(((b[1] * 2 + b[3]) / 3).toFixed(6));
  await page.locator('civicmap-map input[name="cm-lat"]').press('Enter');
  await fillForm(page, demo, validAnswers(demo));
  await page.locator('civicmap-map button.cm-submit').click();
  await page.locator('civicmap-map .cm-success').waitFor({ timeout: 30000 });
  assert.deepEqual(statuses, [422, 201], 'the used proof is refused, the retry with a new one accepted');
  assert.equal(proofs.length, 2);
  assert.notEqual(proofs[1], proof);
  assert.deepEqual(page.errors, []);
  await api(`/api/v1/admin/campaigns/${slug}`, { method: 'PATCH', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify({ status: 'closed' }) });
  await page.context().close();
});
