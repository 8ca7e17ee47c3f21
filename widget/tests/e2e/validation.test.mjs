// Validation errors are shown next to the field they name, with aria-invalid and aria-describedby:
// first the client-side checks (same rules as the server), then a real 422 from the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, embedUrl, getCampaign, validAnswers, waitForWidget, fillForm, deepFocus, BASE, SLUG } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());

/** Asserts that field `key` shows an error matching `re`, wired to its control(s). */
async function assertFieldError(page, key, re) {
  const box = page.locator(`civicmap-map [data-field="${key}"]`);
  const err = box.locator('.cm-error');
  await err.waitFor({ state: 'visible', timeout: 10000 });
  const text = await err.innerText();
  if (re) assert.match(text, re);
  const errId = await err.getAttribute('id');
  const controls = box.locator('input, select, textarea');
  const n = await controls.count();
  assert.ok(n > 0);
  for (let i = 0; i < n; i++) {
    const c = controls.nth(i);
    assert.equal(await c.getAttribute('aria-invalid'), 'true', `${key}: aria-invalid`);
    assert.ok((await c.getAttribute('aria-describedby') ?? '').split(/\s+/).includes(errId), `${key}: aria-describedby names the error`);
  }
  return text;
}

async function pickFirstDistrict(page) {
  const select = page.locator('civicmap-map select[name="cm-district"]');
  const value = await select.locator('option').nth(1).getAttribute('value');
  await select.selectOption(value);
}

test('client-side: an empty submit lists the errors and marks each field', async () => {
  const campaign = await getCampaign();
  const page = await newPage(browser);
  await page.goto(embedUrl('lang=fr'));
  await waitForWidget(page, { map: false });
  await page.locator('civicmap-map button.cm-submit').click();
  const summary = page.locator('civicmap-map .cm-summary');
  await summary.waitFor({ state: 'visible' });
  assert.equal((await deepFocus(page)).cls.includes('cm-summary'), true, 'focus moves to the error summary');
  // The location block.
  const locErr = page.locator('civicmap-map fieldset[data-field="geometry"] .cm-error');
  assert.match(await locErr.innerText(), /Placez votre repère/);
  const select = page.locator('civicmap-map select[name="cm-district"]');
  assert.equal(await select.getAttribute('aria-invalid'), 'true');
  for (const f of campaign.form.fields) {
    if (f.required) await assertFieldError(page, f.key, f.type === 'boolean' ? /Cochez/ : /obligatoire/);
  }
  // Number rules mirror the server: integer, min, max.
  const num = campaign.form.fields.find((f) => f.type === 'number' && f.max != null);
  if (num) {
    await page.locator(`civicmap-map [data-field="${num.key}"] input`).fill(String(num.max + 1));
    await page.locator('civicmap-map button.cm-submit').click();
    await assertFieldError(page, num.key, /au plus/);
    if (num.integer) {
      await page.locator(`civicmap-map [data-field="${num.key}"] input`).fill('1,5');
      await page.locator('civicmap-map button.cm-submit').click();
      await assertFieldError(page, num.key, /entier/);
    }
  }
  const text = campaign.form.fields.find((f) => f.type === 'text' && f.max_length != null);
  if (text) {
    await page.locator(`civicmap-map [data-field="${text.key}"] textarea, civicmap-map [data-field="${text.key}"] input`).first().fill('x'.repeat(text.max_length + 1));
    await page.locator('civicmap-map button.cm-submit').click();
    await assertFieldError(page, text.key, new RegExp(`${text.max_length} caractères au maximum`));
  }
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('server-side: a 422 from the server is shown next to the field it names', async (t) => {
  const campaign = await getCampaign();
  // Simulate a form schema that changed since the page was loaded: the widget gets the campaign without
  // one limit, so only the (real) server can reject the value.
  const num = campaign.form.fields.find((f) => f.type === 'number' && f.max != null);
  const text = campaign.form.fields.find((f) => f.type === 'text' && f.max_length != null);
  const target = num ?? text;
  if (!target) {
    t.skip('the campaign has no number field with a max nor text field with a max_length');
    return;
  }
  const page = await newPage(browser);
  await page.route(`${BASE}/api/v1/campaigns/${SLUG}`, async (route) => {
    const res = await route.fetch();
    const c = await res.json();
    for (const f of c.form.fields) if (f.key === target.key) { if (f.type === 'number') { f.max = null; f.integer = false; } else f.max_length = null; }
    await route.fulfill({ response: res, json: c });
  });
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page, { map: false });
  await pickFirstDistrict(page);
  const answers = validAnswers(campaign);
  answers[target.key] = target.type === 'number' ? target.max + 1 : 'y'.repeat(target.max_length + 1);
  await fillForm(page, campaign, answers);
  const resp = page.waitForResponse((r) => r.url().includes('/submissions') && r.request().method() === 'POST');
  await page.locator('civicmap-map button.cm-submit').click();
  const r = await resp;
  assert.equal(r.status(), 422, 'the server rejects the value');
  const body = await r.json();
  assert.ok(body.errors.some((e) => e.field === `properties.${target.key}`), `the 422 names properties.${target.key}`);
  const shown = await assertFieldError(page, target.key);
  const detail = body.errors.find((e) => e.field === `properties.${target.key}`).detail;
  assert.ok(shown.includes(detail), `the server's detail "${detail}" is shown: "${shown}"`);
  assert.equal(await page.locator('civicmap-map button.cm-submit').isEnabled(), true, 'the button is enabled again');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
