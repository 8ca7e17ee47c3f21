// A citizen drops a pin, fills the form, submits, sees the confirmation naming the district, and the
// district's count rises by one in the widget and in the API. Double submit = one submission. Erase works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, embedUrl, getCampaign, getDistricts, countOf, validAnswers, visibleDistrict, waitForWidget, mapPoint, fillForm } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());

async function tableCount(page, code) {
  return page.locator(`civicmap-map tr[data-code="${code}"] td[data-count]`).getAttribute('data-count');
}

test('drop a pin on the map, submit, see the confirmation and the count rise (widget + API)', async () => {
  const campaign = await getCampaign();
  assert.equal(campaign.status, 'open', 'the e2e campaign must be open');
  const { feature, point, count: before } = await visibleDistrict(campaign);
  const code = feature.properties.code;
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=fr'));
  await waitForWidget(page);
  assert.equal(await tableCount(page, code), String(before), 'the table shows the API count before submitting');

  const { x, y } = await mapPoint(page, point);
  await page.mouse.click(x, y);
  await assert.doesNotReject(page.locator('civicmap-map .cm-locstatus', { hasText: feature.properties.name }).waitFor({ timeout: 5000 }), 'the location block names the district of the pin');

  await fillForm(page, campaign, validAnswers(campaign));
  await page.locator('civicmap-map button.cm-submit').click();
  const success = page.locator('civicmap-map .cm-success');
  await success.waitFor({ timeout: 15000 });
  const text = await success.innerText();
  assert.match(text, /Merci/);
  if (campaign.moderation === 'pre') {
    assert.match(text, /modération/);
  } else {
    assert.ok(text.includes(feature.properties.name), `confirmation names the district: ${text}`);
    // The widget re-fetched the counts: the table shows before + 1 without a reload.
    await page.waitForFunction(([c, n]) => {
      const td = document.querySelector('civicmap-map').shadowRoot.querySelector(`tr[data-code="${c}"] td`);
      return td && td.getAttribute('data-count') === String(n);
    }, [code, before + 1], { timeout: 10000 });
    // The confirmation never states the count from before the submission; once re-fetched,
    // it gives the new one.
    assert.ok(!text.includes(`maintenant ${new Intl.NumberFormat('fr-FR').format(before)} `), `confirmation never gives the old count: ${text}`);
    const refreshed = await success.innerText();
    assert.ok(refreshed.includes(new Intl.NumberFormat('fr-FR').format(before + 1)), `confirmation gives the new count: ${refreshed}`);
    assert.equal(countOf(await getDistricts(), code), before + 1, 'the API count rose by one');
  }
  // The submitter gets the edit/erase link.
  const href = await page.locator('civicmap-map a.cm-editanchor').getAttribute('href');
  assert.match(href, /\/embed\/[^/]+\/edit\?lang=fr#id=[^&]+&token=.+/);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a double click on submit makes one submission; the edit link erases it', async () => {
  const campaign = await getCampaign();
  const { feature, point, count: before } = await visibleDistrict(campaign);
  const code = feature.properties.code;
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page);
  const { x, y } = await mapPoint(page, point);
  await page.mouse.click(x, y);
  await fillForm(page, campaign, validAnswers(campaign));
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().includes('/submissions')) posts.push(r.headers()['idempotency-key']); });
  await page.locator('civicmap-map button.cm-submit').dblclick();
  await page.locator('civicmap-map .cm-success').waitFor({ timeout: 15000 });
  assert.ok(posts.length >= 1);
  assert.equal(new Set(posts).size, 1, 'every POST of one attempt carries the same Idempotency-Key');
  assert.match(posts[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  if (campaign.moderation !== 'pre') assert.equal(countOf(await getDistricts(), code), before + 1, 'exactly one submission was counted');

  // Erase through the link given to the submitter.
  const href = await page.locator('civicmap-map a.cm-editanchor').getAttribute('href');
  const edit = await newPage(browser);
  await edit.goto(href);
  await edit.getByRole('button', { name: 'Erase permanently' }).click();
  await edit.getByText('Your contribution has been erased.').waitFor({ timeout: 10000 });
  assert.ok(!(await edit.evaluate(() => location.hash)).includes('token'), 'the token is dropped from the URL after erasure');
  assert.equal(countOf(await getDistricts(), code), before, 'the count is back where it was');
  assert.deepEqual(page.errors, []);
  assert.deepEqual(edit.errors, []);
  await page.context().close();
  await edit.context().close();
});
