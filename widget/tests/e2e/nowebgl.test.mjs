// Without WebGL (or with ?map=0) the widget shows the form and the table without the map, and a
// citizen can still contribute by picking a district.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, embedUrl, getCampaign, getDistricts, countOf, validAnswers, visibleDistrict, waitForWidget, fillForm } from './helpers.mjs';

const browser = await launch(['--disable-webgl', '--disable-webgl2', '--disable-3d-apis']);
test.after(() => browser.close());

test('no WebGL: no map, a notice, the form and the table; contributing by district works', async () => {
  const campaign = await getCampaign();
  const { feature, count: before } = await visibleDistrict(campaign);
  const page = await newPage(browser, { viewport: { width: 375, height: 740 } });
  await page.goto(embedUrl('lang=fr'));
  await waitForWidget(page, { map: false });
  assert.equal(await page.evaluate(() => !!document.createElement('canvas').getContext('webgl')), false, 'this browser really has no WebGL');
  await page.locator('civicmap-map .cm-nomap').waitFor({ state: 'visible' });
  assert.equal(await page.locator('civicmap-map .cm-mapbox').isVisible(), false);
  assert.ok(await page.locator('civicmap-map table.cm-table tbody tr').count() > 0);
  await page.locator('civicmap-map select[name="cm-district"]').selectOption(feature.properties.code);
  await page.locator('civicmap-map .cm-locstatus', { hasText: feature.properties.name }).waitFor();
  await fillForm(page, campaign, validAnswers(campaign));
  await page.locator('civicmap-map button.cm-submit').click();
  const success = page.locator('civicmap-map .cm-success');
  await success.waitFor({ timeout: 15000 });
  if (campaign.moderation !== 'pre') {
    assert.ok((await success.innerText()).includes(feature.properties.name));
    assert.equal(countOf(await getDistricts(), feature.properties.code), before + 1);
  }
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('coordinates typed by hand place the pin (no map)', async () => {
  const campaign = await getCampaign();
  const { feature, point } = await visibleDistrict(campaign);
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=en&map=0'));
  await waitForWidget(page, { map: false });
  await page.locator('civicmap-map .cm-form summary').click();
  await page.locator('civicmap-map input[name="cm-lon"]').fill(point[0].toFixed(6));
  await page.locator('civicmap-map input[name="cm-lat"]').fill(point[1].toFixed(6));
  await page.locator('civicmap-map input[name="cm-lat"]').press('Enter');
  await page.locator('civicmap-map .cm-locstatus', { hasText: feature.properties.name }).waitFor();
  // Invalid coordinates get an error next to the location block.
  await page.locator('civicmap-map input[name="cm-lon"]').fill('200');
  await page.locator('civicmap-map input[name="cm-lon"]').press('Enter');
  const err = page.locator('civicmap-map fieldset[data-field="geometry"] .cm-error');
  await err.waitFor({ state: 'visible' });
  assert.match(await err.innerText(), /longitude/i);
  assert.equal(await page.locator('civicmap-map input[name="cm-lon"]').getAttribute('aria-invalid'), 'true');
  await page.context().close();
});
