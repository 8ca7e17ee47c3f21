// The address box with civicmap's own address search (the demo has synthetic addresses): typing an
// address with the keyboard shows suggestions in an ARIA listbox, Enter on one places the pin there,
// the citizen can move it on the map, and the submission is stored at the pin. Every request stays on
// civicmap's server. axe finds nothing serious with the suggestions open, in French and English.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { launch, newPage, embedUrl, getCampaign, validAnswers, fillForm, waitForWidget, mapPoint, api, BASE, ORIGIN, SLUG } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());

const TYPED = '3 r synthetique des acacias';
const EXPECTED = '3 Rue Synthétique des Acacias, 92000 Nanterre';

async function expectedSuggestion() {
  const r = await api(`/api/v1/campaigns/${SLUG}/addresses?q=${encodeURIComponent(TYPED)}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body[0]?.label, EXPECTED, 'the demo has its synthetic addresses');
  return r.body[0];
}

/** Types into the address box with the keyboard and waits for the suggestions. */
async function typeAddress(page) {
  const box = page.locator('civicmap-map input[role="combobox"]');
  await box.focus();
  await page.keyboard.type(TYPED, { delay: 20 });
  const option = page.locator('civicmap-map [role="listbox"] [role="option"]').first();
  await option.waitFor({ timeout: 10000 });
  return box;
}

test('an address typed and chosen with the keyboard places the pin there, and the submission is stored at it', async () => {
  const campaign = await getCampaign();
  assert.equal(campaign.address_search, true);
  const expected = await expectedSuggestion();
  const page = await newPage(browser);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const posted = [];
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/submissions')) posted.push(JSON.parse(r.postData())); });
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page);

  const box = await typeAddress(page);
  assert.equal(await box.getAttribute('aria-expanded'), 'true');
  assert.equal(await box.getAttribute('aria-autocomplete'), 'list');
  const listId = await box.getAttribute('aria-controls');
  const options = page.locator(`civicmap-map #${listId} [role="option"]`);
  assert.equal(await options.first().innerText(), EXPECTED);
  await page.locator('civicmap-map [role="status"]').filter({ hasText: 'suggested' }).waitFor({ timeout: 5000 });
  // The arrow keys walk the list; the focus stays in the text.
  await page.keyboard.press('ArrowDown');
  const first = await options.first().getAttribute('id');
  assert.equal(await box.getAttribute('aria-activedescendant'), first);
  assert.equal(await options.first().getAttribute('aria-selected'), 'true');
  if (await options.count() > 1) {
    await page.keyboard.press('ArrowDown');
    assert.equal(await box.getAttribute('aria-activedescendant'), await options.nth(1).getAttribute('id'));
    await page.keyboard.press('ArrowUp');
  }
  await page.keyboard.press('Enter');

  // The pin is at the address: the status, the coordinates and the map's marker say so.
  const status = page.locator('civicmap-map .cm-locstatus');
  await status.filter({ hasText: 'Pin placed' }).waitFor({ timeout: 5000 });
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
  assert.equal(await box.inputValue(), EXPECTED);
  const lon = await page.locator('civicmap-map input[name="cm-lon"]').inputValue();
  const lat = await page.locator('civicmap-map input[name="cm-lat"]').inputValue();
  assert.equal(lon, expected.lon.toFixed(5));
  assert.equal(lat, expected.lat.toFixed(5));
  // The map eases to the pin.
  await page.waitForFunction(([lon, lat]) => {
    const m = document.querySelector('civicmap-map').map;
    const c = m.getCenter();
    return !m.isMoving() && Math.abs(c.lng - lon) < 1e-4 && Math.abs(c.lat - lat) < 1e-4;
  }, [expected.lon, expected.lat], { timeout: 5000 });

  await fillForm(page, campaign, validAnswers(campaign));
  await page.locator('civicmap-map button.cm-submit').click();
  await page.locator('civicmap-map .cm-success').waitFor({ timeout: 15000 });
  assert.equal(posted.length, 1);
  assert.deepEqual(posted[0].geometry.coordinates, [+expected.lon.toFixed(6), +expected.lat.toFixed(6)]);
  // Nothing typed went anywhere but civicmap's server.
  const elsewhere = requests.filter((u) => !u.startsWith(ORIGIN) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(elsewhere, []);
  assert.ok(requests.some((u) => u.startsWith(`${BASE}/api/v1/campaigns/${SLUG}/addresses?q=`)));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('the pin placed from an address can then be moved on the map', async () => {
  const expected = await expectedSuggestion();
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=fr'));
  await waitForWidget(page);
  await typeAddress(page);
  await page.locator('civicmap-map [role="option"]').first().click();
  const lonInput = page.locator('civicmap-map input[name="cm-lon"]');
  await page.locator('civicmap-map .cm-locstatus').filter({ hasText: 'Repère placé' }).waitFor({ timeout: 5000 });
  assert.equal(await lonInput.inputValue(), expected.lon.toFixed(5).replace('.', ','));
  // Once the map has eased to the pin, a click some 300 m east (clear of the marker) moves it.
  await page.waitForFunction(([lon, lat]) => {
    const m = document.querySelector('civicmap-map').map;
    const c = m.getCenter();
    return !m.isMoving() && Math.abs(c.lng - lon) < 1e-4 && Math.abs(c.lat - lat) < 1e-4;
  }, [expected.lon, expected.lat], { timeout: 5000 });
  await page.waitForTimeout(200);
  const target = await mapPoint(page, [expected.lon + 0.004, expected.lat]);
  const before = await lonInput.inputValue();
  await page.mouse.click(target.x, target.y);
  await page.waitForFunction((before) => {
    const host = document.querySelector('civicmap-map');
    const input = (host.shadowRoot ?? document).querySelector('input[name="cm-lon"]');
    return input && input.value !== before;
  }, before, { timeout: 5000 });
  const moved = Number((await lonInput.inputValue()).replace(',', '.'));
  assert.ok(Math.abs(moved - (expected.lon + 0.004)) < 2e-4, `moved to ${moved}`);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

for (const lang of ['fr', 'en']) {
  test(`axe: no serious/critical violation with the suggestions open (${lang})`, async () => {
    await expectedSuggestion();
    const page = await newPage(browser, { bypassCSP: true });
    await page.goto(embedUrl(`lang=${lang}`));
    await waitForWidget(page);
    await typeAddress(page);
    await page.keyboard.press('ArrowDown');
    await page.addScriptTag({ content: axeSource });
    const res = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] }));
    const vs = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.equal(vs.length, 0, '\n' + vs.map((v) => `${v.impact} ${v.id}: ${v.help} ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`).join('\n'));
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}
