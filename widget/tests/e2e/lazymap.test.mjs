// The form comes before the map: civicmap.js shows the campaign, the form and the district picker on
// its own, and the map (civicmap-map.js: MapLibre and our map code) is imported after. Here the map's
// chunk is held back (page.route) to show that a citizen contributes by district while it loads, that
// the map then draws the districts and takes over the pin, that a chunk that never comes leaves a
// working form and a polite note, and that the chunk resolves next to civicmap.js on a foreign page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { launch, newPage, embedUrl, getCampaign, getDistricts, countOf, validAnswers, visibleDistrict, waitForWidget, fillForm, BASE, SLUG } from './helpers.mjs';

const CHUNK = '**/widget/civicmap-map.js';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const browser = await launch();
test.after(() => browser.close());

/** Holds every request for the map chunk until release() is called. */
async function holdChunk(page) {
  let release;
  const gate = new Promise((ok) => { release = ok; });
  const held = [];
  await page.route(CHUNK, async (route) => {
    held.push(route.request().url());
    await gate;
    await route.continue();
  });
  return { release, held };
}

const drawn = () => {
  const m = document.querySelector('civicmap-map')?.map;
  return !!(m && m.loaded() && m.getLayer('cm-fill') && m.queryRenderedFeatures({ layers: ['cm-fill'] }).length > 0);
};

test('map held back: the form is usable and a submission by district succeeds; then the map draws the districts', async () => {
  const campaign = await getCampaign();
  const { feature, count: before } = await visibleDistrict(campaign);
  const code = feature.properties.code;
  const page = await newPage(browser, { bypassCSP: true });
  const chunk = await holdChunk(page);
  await page.goto(embedUrl('lang=fr'));
  await waitForWidget(page, { map: false });
  const w = page.locator('civicmap-map');
  // The form is there and usable while the map is still loading.
  await w.locator('form.cm-form').waitFor();
  assert.ok(chunk.held.length >= 1, 'the map chunk was requested (and is held)');
  assert.equal(await page.evaluate(() => document.querySelector('civicmap-map').map), null, 'no map yet');
  await w.locator('.cm-mapwait').waitFor({ state: 'visible' });
  assert.match(await w.locator('.cm-mapwait').innerText(), /Chargement de la carte/);
  assert.equal(await w.locator('.cm-nomap').isVisible(), false, 'no "map unavailable" note while it loads');
  assert.match(await w.locator('.cm-lochow').innerText(), /Choisissez votre quartier/, 'the hint points to the district list');
  assert.equal(await w.locator('button.cm-submit').isEnabled(), true);
  // As accessible as the rest (axe, WCAG 2.1 A/AA, serious or critical) while the map loads.
  await page.addScriptTag({ content: axeSource });
  const axe = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] }));
  const serious = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(serious, []);

  await w.locator('select[name="cm-district"]').selectOption(code);
  await w.locator('.cm-locstatus', { hasText: feature.properties.name }).waitFor();
  await fillForm(page, campaign, validAnswers(campaign));
  await w.locator('button.cm-submit').click();
  const success = w.locator('.cm-success');
  await success.waitFor({ timeout: 15000 });
  if (campaign.moderation !== 'pre') {
    assert.ok((await success.innerText()).includes(feature.properties.name), 'the confirmation names the district');
    await page.waitForFunction(([c, n]) => document.querySelector('civicmap-map').shadowRoot.querySelector(`tr[data-code="${c}"] td`)?.getAttribute('data-count') === String(n), [code, before + 1], { timeout: 10000 });
    assert.equal(countOf(await getDistricts(), code), before + 1, 'the API count rose by one');
  }
  assert.equal(await page.evaluate(() => document.querySelector('civicmap-map').map), null, 'all of it before the map arrived');

  // The map arrives: it draws the districts, the loading note goes.
  chunk.release();
  await page.waitForFunction(drawn, null, { timeout: 30000 });
  assert.equal(await w.locator('.cm-mapwait').isVisible(), false);
  assert.equal(await w.locator('.cm-help').isVisible(), true, 'the map help shows with the map');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('map arriving while a pin is set takes the pin over (location picker as before)', async () => {
  const campaign = await getCampaign();
  const { feature } = await visibleDistrict(campaign);
  const page = await newPage(browser);
  const chunk = await holdChunk(page);
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page, { map: false });
  const w = page.locator('civicmap-map');
  await w.locator('select[name="cm-district"]').selectOption(feature.properties.code);
  await w.locator('.cm-locstatus', { hasText: feature.properties.name }).waitFor();
  chunk.release();
  await waitForWidget(page);
  // The hint now says the map can be clicked; the map shows the pin where the list put it.
  assert.match(await w.locator('.cm-lochow').innerText(), /Click the map/);
  const lon = await w.locator('input[name="cm-lon"]').inputValue();
  const lat = await w.locator('input[name="cm-lat"]').inputValue();
  const marker = await page.evaluate(() => document.querySelector('civicmap-map').shadowRoot.querySelectorAll('.maplibregl-marker').length);
  assert.ok(marker >= 1, `the map shows the pin (${lon}, ${lat})`);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('map chunk that fails to load: a polite note, the form still works', async () => {
  const page = await newPage(browser);
  await page.route(CHUNK, (route) => route.abort('failed'));
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page, { map: false });
  const w = page.locator('civicmap-map');
  const note = w.locator('.cm-nomap');
  await note.waitFor({ state: 'visible', timeout: 20000 });
  assert.match(await note.innerText(), /map could not be loaded/i);
  assert.equal(await w.locator('.cm-mapbox').isVisible(), false);
  assert.equal(await w.locator('button.cm-submit').isEnabled(), true);
  assert.ok(await w.locator('select[name="cm-district"] option').count() > 1, 'the district list is there');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('<civicmap-map> on a foreign page: the chunk resolves next to civicmap.js and the map draws', async () => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Hôte</title></head><body>
<h1>Article</h1><civicmap-map campaign="${SLUG}"></civicmap-map><script src="${BASE}/widget/civicmap.js"></script></body></html>`);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const page = await newPage(browser);
    const chunks = [];
    page.on('request', (r) => { if (r.url().includes('civicmap-map.js')) chunks.push(r.url()); });
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(drawn, null, { timeout: 30000 });
    assert.ok(chunks.length >= 1 && chunks.every((u) => u === `${BASE}/widget/civicmap-map.js`), `chunk URL: ${chunks}`);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  } finally {
    server.close();
  }
});
