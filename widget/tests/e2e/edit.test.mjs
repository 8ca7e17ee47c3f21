// The submitter's edit page: loads their entry with the token of the link, shows the answers in the
// widget's form and the point on the map, saves a corrected answer and a point moved with the keyboard,
// shows a server 422 next to its field; the token leaves the address bar at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, getCampaign, validAnswers, visibleDistrict, postSubmission, editUrlOf, serverHasOwnRead, api, BASE, SLUG } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());

/** A field whose answer can be changed to another valid value, and that value. */
function changeable(campaign, answers) {
  for (const f of campaign.form.fields) {
    if (f.type === 'number') {
      const v = answers[f.key] + 1;
      if (f.max == null || v <= f.max) return { field: f, value: v, text: String(v) };
      if (f.min == null || answers[f.key] - 1 >= f.min) return { field: f, value: answers[f.key] - 1, text: String(answers[f.key] - 1) };
    }
  }
  const text = campaign.form.fields.find((f) => f.type === 'text');
  if (text) return { field: text, value: 'corrected', text: 'corrected' };
  return null;
}

async function ownEntry(receipt) {
  const r = await api(`/api/v1/campaigns/${SLUG}/submissions/${receipt.id}`, { headers: { 'X-Edit-Token': receipt.edit_token } });
  assert.equal(r.status, 200, `GET own entry: ${JSON.stringify(r.body)}`);
  return r.body;
}

test('edit page: see the entry, correct an answer and the point (keyboard on the map), reload shows the correction', async (t) => {
  const campaign = await getCampaign();
  const { point } = await visibleDistrict(campaign);
  const answers = validAnswers(campaign);
  const post = await postSubmission(point, answers);
  assert.equal(post.status, 201, JSON.stringify(post.body));
  const receipt = post.body;
  if (!(await serverHasOwnRead(receipt))) return t.skip('the server does not serve GET …/submissions/{id} with X-Edit-Token yet');
  const change = changeable(campaign, answers);
  assert.ok(change, 'the campaign has a number or text field to correct');
  const url = editUrlOf(receipt, 'en');

  const page = await newPage(browser);
  await page.goto(url);
  const form = page.locator('form.cm-form');
  await form.waitFor({ timeout: 20000 });
  assert.equal(await page.evaluate(() => location.hash), '', 'the token left the address bar');
  assert.equal(await page.evaluate((tok) => location.href.includes(tok), receipt.edit_token), false);
  // The answers, in the widget's controls.
  const input = form.locator(`[data-field="${change.field.key}"] input, [data-field="${change.field.key}"] textarea`).first();
  assert.equal(await input.inputValue(), String(answers[change.field.key]));
  const lon = form.locator('input[name="cm-lon"]');
  const lat = form.locator('input[name="cm-lat"]');
  assert.equal(Number(await lon.inputValue()), Number(point[0].toFixed(6)));
  assert.equal(Number(await lat.inputValue()), Number(point[1].toFixed(6)));

  // Move the pin with the keyboard on the map.
  const canvas = page.locator('.cm-edit-map canvas.maplibregl-canvas');
  await canvas.waitFor({ timeout: 30000 });
  await page.waitForTimeout(500);
  await canvas.focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowUp');
  const newLon = Number(await lon.inputValue());
  const newLat = Number(await lat.inputValue());
  assert.ok(newLon > point[0] && newLat > point[1], `the pin moved right and up: ${newLon}, ${newLat}`);
  await input.fill(change.text);
  await form.locator('button.cm-submit').click();
  await page.getByText('Your corrections have been saved.').waitFor({ timeout: 15000 });

  const saved = await ownEntry(receipt);
  assert.equal(saved.properties[change.field.key], change.value, 'the API has the corrected answer');
  assert.ok(Math.abs(saved.geometry.coordinates[0] - newLon) < 2e-6 && Math.abs(saved.geometry.coordinates[1] - newLat) < 2e-6, `the API has the moved point: ${saved.geometry.coordinates}`);

  // A reload of the page has no token any more (it was only in memory)…
  await page.reload();
  await page.getByText('This link is incomplete').waitFor({ timeout: 15000 });
  // …opening the link again shows the corrected entry.
  await page.goto('about:blank');
  await page.goto(url);
  await form.waitFor({ timeout: 20000 });
  assert.equal(await form.locator(`[data-field="${change.field.key}"] input, [data-field="${change.field.key}"] textarea`).first().inputValue(), change.text);
  assert.equal(Number(await form.locator('input[name="cm-lon"]').inputValue()), newLon);
  assert.equal(Number(await form.locator('input[name="cm-lat"]').inputValue()), newLat);

  // Erasing still works from the same page.
  await page.getByRole('button', { name: 'Erase permanently' }).click();
  await page.getByText('Your contribution has been erased.').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('form.cm-form').count(), 0, 'the form is gone after erasing');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('edit page without WebGL, in French: coordinates typed by hand; a 422 from the server is shown next to its field', async (t) => {
  const campaign = await getCampaign();
  const { point } = await visibleDistrict(campaign);
  const post = await postSubmission(point, validAnswers(campaign));
  assert.equal(post.status, 201);
  const receipt = post.body;
  if (!(await serverHasOwnRead(receipt))) return t.skip('the server does not serve GET …/submissions/{id} with X-Edit-Token yet');
  const target = campaign.form.fields.find((f) => f.type === 'number' && f.max != null) ?? campaign.form.fields.find((f) => f.type === 'text' && f.max_length != null);
  const nowebgl = await launch(['--disable-webgl', '--disable-webgl2', '--disable-3d-apis']);
  const page = await newPage(nowebgl);
  // The page gets the campaign without one limit, so that only the (real) server can refuse the value.
  if (target) {
    await page.route(`${BASE}/api/v1/campaigns/${SLUG}`, async (route) => {
      const res = await route.fetch();
      const c = await res.json();
      for (const f of c.form.fields) if (f.key === target.key) { if (f.type === 'number') { f.max = null; f.integer = false; } else f.max_length = null; }
      await route.fulfill({ response: res, json: c });
    });
  }
  await page.goto(editUrlOf(receipt, 'fr'));
  const form = page.locator('form.cm-form');
  await form.waitFor({ timeout: 20000 });
  assert.equal(await page.locator('.cm-edit-map').isVisible(), false, 'no map without WebGL');
  const lon = form.locator('input[name="cm-lon"]');
  const lat = form.locator('input[name="cm-lat"]');
  const moved = [Number((point[0] + 0.0004).toFixed(6)), Number((point[1] - 0.0003).toFixed(6))];
  await lon.fill(String(moved[0]).replace('.', ','));
  await lat.fill(String(moved[1]).replace('.', ','));
  await lat.press('Enter');
  if (target) {
    const box = form.locator(`[data-field="${target.key}"]`);
    await box.locator('input, textarea').first().fill(target.type === 'number' ? String(target.max + 1) : 'y'.repeat(target.max_length + 1));
    const resp = page.waitForResponse((r) => r.request().method() === 'PATCH');
    await form.locator('button.cm-submit').click();
    assert.equal((await resp).status(), 422);
    const err = box.locator('.cm-error');
    await err.waitFor({ state: 'visible', timeout: 10000 });
    const errId = await err.getAttribute('id');
    const control = box.locator('input, textarea').first();
    assert.equal(await control.getAttribute('aria-invalid'), 'true');
    assert.ok((await control.getAttribute('aria-describedby')).split(/\s+/).includes(errId));
    await control.fill(target.type === 'number' ? String(target.max) : 'ok');
  }
  await form.locator('button.cm-submit').click();
  await page.getByText('Vos corrections ont été enregistrées.').waitFor({ timeout: 15000 });
  const saved = await ownEntry(receipt);
  assert.deepEqual(saved.geometry.coordinates.map((c) => Number(c.toFixed(6))), moved);
  await api(`/api/v1/campaigns/${SLUG}/submissions/${receipt.id}`, { method: 'DELETE', headers: { 'X-Edit-Token': receipt.edit_token } });
  assert.deepEqual(page.errors, []);
  await page.context().close();
  await nowebgl.close();
});
