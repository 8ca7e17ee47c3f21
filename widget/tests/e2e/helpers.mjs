// Shared helpers of the end-to-end tests: a real Chromium (playwright-core, Debian's /usr/bin/chromium)
// against a real civicmap server at $CIVICMAP_URL. Nothing is mocked, except where a test says so.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { interiorPoint } from '../../.build/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const WIDGET_DIR = resolve(here, '../..');
export const BASE = (process.env.CIVICMAP_URL ?? '').replace(/\/+$/, '');
export const ORIGIN = BASE ? new URL(BASE).origin : '';
export const SLUG = process.env.CIVICMAP_CAMPAIGN || 'fibre-pour-tous';
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

export function screenshotDir() {
  const d = process.env.SCREENSHOT_DIR || '../docs/screenshots';
  const abs = isAbsolute(d) ? d : join(WIDGET_DIR, d);
  mkdirSync(abs, { recursive: true });
  return abs;
}

if (!BASE) throw new Error('CIVICMAP_URL is not set: run the e2e tests through `npm run e2e`');

export async function launch(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...extraArgs] });
}

/** A page that fails the test on uncaught errors, and records console errors. */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  return page;
}

export async function api(path, init) {
  const res = await fetch(BASE + path, init);
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  return { status: res.status, body, headers: res.headers };
}

export async function getCampaign() {
  const r = await api(`/api/v1/campaigns/${SLUG}`);
  if (r.status !== 200) throw new Error(`GET campaign: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function getDistricts() {
  const r = await api(`/api/v1/campaigns/${SLUG}/districts.geojson?t=${Date.now()}`, { cache: 'no-store' });
  if (r.status !== 200) throw new Error(`GET districts: HTTP ${r.status}`);
  return r.body;
}

export function countOf(fc, code) {
  const f = fc.features.find((x) => x.properties.code === code);
  if (!f) throw new Error(`no district ${code}`);
  return f.properties.withheld ? null : f.properties.count;
}

/** Valid answers for every field of the campaign's form. */
export function validAnswers(campaign) {
  const out = {};
  for (const f of campaign.form.fields) {
    if (f.type === 'number') {
      let v = 2;
      if (f.min != null && v < f.min) v = Math.ceil(f.min);
      if (f.max != null && v > f.max) v = Math.floor(f.max);
      out[f.key] = v;
    } else if (f.type === 'choice') out[f.key] = f.options[0].value;
    else if (f.type === 'text') out[f.key] = 'e2e test'.slice(0, f.max_length ?? 100);
    else if (f.type === 'boolean') out[f.key] = !!f.required;
  }
  return out;
}

/** POSTs a submission straight to the API (used to set up data, e.g. to get a district past the k threshold). */
export async function postSubmission(lonlat, properties) {
  return api(`/api/v1/campaigns/${SLUG}/submissions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': crypto.randomUUID() },
    body: JSON.stringify({ type: 'Feature', geometry: { type: 'Point', coordinates: lonlat }, properties }),
  });
}

/**
 * A district whose count is visible (>= k), with a point inside it. When every district is withheld,
 * posts k submissions into one so that the count can be seen to rise.
 */
export async function visibleDistrict(campaign) {
  let fc = await getDistricts();
  const pick = (c) => [...c.features].filter((f) => !f.properties.withheld && f.properties.count != null).sort((a, b) => b.properties.count - a.properties.count)[0];
  let f = pick(fc);
  if (!f) {
    f = fc.features[0];
    const k = fc.min_count ?? campaign.privacy?.min_count ?? 5;
    for (let i = 0; i < k; i++) {
      const r = await postSubmission(interiorPoint(f), validAnswers(campaign));
      if (r.status !== 201) throw new Error(`seeding ${f.properties.code}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    }
    fc = await getDistricts();
    f = fc.features.find((x) => x.properties.code === f.properties.code);
  }
  return { feature: f, point: interiorPoint(f), count: f.properties.count };
}

export function embedUrl(query = '') {
  return `${BASE}/embed/${SLUG}${query ? '?' + query : ''}`;
}

/** Waits until the widget has rendered (and its map is idle, when there is one). */
export async function waitForWidget(page, { map = true } = {}) {
  await page.locator('civicmap-map .cm-title').first().waitFor({ timeout: 20000 });
  if (!map) return;
  await page.waitForFunction(() => {
    const el = document.querySelector('civicmap-map');
    const m = el && el.map;
    return !!(m && m.loaded() && m.isStyleLoaded() && !m.isMoving() && m.getLayer('cm-fill'));
  }, null, { timeout: 30000 });
  await page.waitForTimeout(300);
}

/** Screen position of [lon, lat] on the map of the first <civicmap-map>, re-centring the map if needed. */
export async function mapPoint(page, lonlat) {
  return page.evaluate(async ([lon, lat]) => {
    const m = document.querySelector('civicmap-map').map;
    m.getCanvas().scrollIntoView({ block: 'center' });
    await new Promise((ok) => requestAnimationFrame(ok));
    const r = m.getCanvas().getBoundingClientRect();
    let p = m.project([lon, lat]);
    if (p.x < 70 || p.y < 70 || p.x > r.width - 70 || p.y > r.height - 40) {
      m.jumpTo({ center: [lon, lat] });
      await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
      p = m.project([lon, lat]);
    }
    return { x: r.left + p.x, y: r.top + p.y };
  }, lonlat);
}

/** Fills the widget's form with `answers` (by field key) through the UI. */
export async function fillForm(page, campaign, answers) {
  const w = page.locator('civicmap-map').first();
  for (const f of campaign.form.fields) {
    const v = answers[f.key];
    if (v === undefined) continue;
    const box = w.locator(`[data-field="${f.key}"]`);
    if (f.type === 'boolean') {
      const c = box.locator('input[type=checkbox]');
      if (v) await c.check(); else await c.uncheck();
    } else if (f.type === 'choice') {
      const radios = box.locator('input[type=radio]');
      if (await radios.count()) await box.locator(`input[type=radio][value="${v}"]`).check();
      else await box.locator('select').selectOption(String(v));
    } else {
      await box.locator('input, textarea').first().fill(String(v));
    }
  }
}

/** The deepest focused element, through shadow roots: {tag, name, type, text, cls}. */
export async function deepFocus(page) {
  return page.evaluate(() => {
    let a = document.activeElement;
    while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
    if (!a) return null;
    return { tag: a.tagName.toLowerCase(), name: a.getAttribute('name'), type: a.getAttribute('type'), text: (a.textContent || '').trim().slice(0, 200), cls: String(a.className || '') };
  });
}

/** The edit page URL of a receipt (POST …/submissions answer), with ?lang= before the fragment. */
export function editUrlOf(receipt, lang) {
  const u = new URL(receipt.edit_url, BASE + '/');
  if (lang) u.searchParams.set('lang', lang);
  return u.href;
}

/** Whether the server has the anti-abuse settings (campaign metadata carries min_fill_seconds). */
export async function serverHasAbuse() {
  return 'min_fill_seconds' in (await getCampaign());
}

/** Whether the server lets a submitter read back their own entry (GET …/submissions/{id} + X-Edit-Token). */
export async function serverHasOwnRead(receipt) {
  const r = await api(`/api/v1/campaigns/${SLUG}/submissions/${receipt.id}`, { headers: { 'X-Edit-Token': receipt.edit_token } });
  return r.status === 200;
}

/**
 * An admin token: $CIVICMAP_ADMIN_TOKEN, else one made with `civicmap token create` when the runner
 * has the server's database (scripts/test.sh exports DATABASE_URL); null otherwise.
 */
export async function adminToken() {
  if (process.env.CIVICMAP_ADMIN_TOKEN) return process.env.CIVICMAP_ADMIN_TOKEN;
  if (!process.env.DATABASE_URL) return null;
  const { existsSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const bin = process.env.CIVICMAP_BIN || resolve(WIDGET_DIR, '../target/debug/civicmap');
  if (!existsSync(bin)) return null;
  const r = spawnSync(bin, ['token', 'create', '--name', 'widget-e2e', '--role', 'admin', '--expires-in-days', '1'], { encoding: 'utf8', env: process.env });
  if (r.status !== 0) return null;
  return r.stdout.trim().split('\n').pop().trim() || null;
}
