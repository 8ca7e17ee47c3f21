// Keyboard only (no mouse or touch event at all): focus the map, place the pin with the arrow keys,
// confirm with Enter, fill the form, submit; the submission is counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, embedUrl, getCampaign, getDistricts, countOf, validAnswers, visibleDistrict, waitForWidget, deepFocus } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());

async function tabTo(page, pred, max = 60) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await deepFocus(page);
    if (f && pred(f)) return f;
  }
  throw new Error('could not reach the element with Tab');
}

test('keyboard-only path submits a point', async () => {
  const campaign = await getCampaign();
  const { feature, point, count: before } = await visibleDistrict(campaign);
  const page = await newPage(browser);
  await page.addInitScript(() => {
    window.__pointerEvents = [];
    for (const t of ['pointerdown', 'pointerup', 'mousedown', 'mouseup', 'touchstart', 'wheel']) window.addEventListener(t, (e) => window.__pointerEvents.push(e.type), true);
  });
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page);
  // Setup, not user input: centre the map on a district so that the keyboard pin starts inside it.
  await page.evaluate((p) => document.querySelector('civicmap-map').map.jumpTo({ center: p }), point);

  await tabTo(page, (f) => f.tag === 'canvas');
  await page.keyboard.press('ArrowUp'); // first arrow: the pin appears at the centre
  await page.keyboard.press('Shift+ArrowRight'); // a small step
  const status = page.locator('civicmap-map .cm-locstatus');
  await status.filter({ hasText: feature.properties.name }).waitFor({ timeout: 5000 });
  assert.match(await status.innerText(), /Pin placed/);
  // Record every announcement, so that a later one (the map under load) cannot hide an earlier one.
  await page.evaluate(() => {
    const host = document.querySelector('civicmap-map');
    const root = host.shadowRoot ?? document.body;
    window.__announced = [];
    new MutationObserver(() => {
      for (const region of root.querySelectorAll('[aria-live="polite"].cm-sr')) {
        if (region.textContent) window.__announced.push(region.textContent);
      }
    }).observe(root, { childList: true, characterData: true, subtree: true });
  });
  await page.keyboard.press('Enter');
  // From the record: on a loaded machine a later announcement may replace it before a poll sees it.
  await page.waitForFunction(() => window.__announced.some((t) => /Location confirmed/.test(t)), null, { timeout: 10000 });

  // Enter moved the focus to the first field; fill every field with the keyboard.
  const answers = validAnswers(campaign);
  const fields = campaign.form.fields;
  let f = await deepFocus(page);
  assert.equal(f.name, fields[0].key, 'Enter on the map moves the focus to the first field');
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    if (i > 0) f = await tabTo(page, (x) => x.name === field.key, 10);
    const v = answers[field.key];
    if (field.type === 'number' || field.type === 'text') await page.keyboard.type(String(v));
    else if (field.type === 'boolean') { if (v) await page.keyboard.press('Space'); }
    else if (field.type === 'choice') {
      if (f.tag === 'select') await page.keyboard.press('ArrowDown'); // first option after the placeholder
      else await page.keyboard.press('Space'); // first radio of the group
    }
  }
  await tabTo(page, (x) => x.cls.includes('cm-submit'), 10);
  await page.keyboard.press('Enter');
  await page.locator('civicmap-map .cm-success').waitFor({ timeout: 15000 });
  for (let i = 0; i < 20 && !/Thank you/.test((f = await deepFocus(page))?.text ?? ''); i++) await page.waitForTimeout(100);
  assert.match(f.text, /Thank you/, 'the focus moves to the confirmation');
  await page.waitForFunction(() => window.__announced.some((t) => /Thank you/.test(t)), null, { timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => window.__pointerEvents), [], 'no pointer event was used');
  if (campaign.moderation !== 'pre') assert.equal(countOf(await getDistricts(), feature.properties.code), before + 1);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('keyboard on the map in view mode announces the district under the cursor', async () => {
  const campaign = await getCampaign();
  const { feature, point } = await visibleDistrict(campaign);
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=fr&mode=view'));
  await waitForWidget(page);
  await page.evaluate((p) => document.querySelector('civicmap-map').map.jumpTo({ center: p }), point);
  await tabTo(page, (f) => f.tag === 'canvas');
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('ArrowDown');
  const live = page.locator('civicmap-map .cm [aria-live="polite"].cm-sr');
  await live.filter({ hasText: feature.properties.name }).waitFor({ timeout: 5000 });
  assert.match(await live.innerText(), /contribution/);
  assert.equal(await page.locator('civicmap-map .cm-panel').count(), 0, 'view mode has no form');
  await page.context().close();
});
