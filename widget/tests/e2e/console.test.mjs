// The staff console at /admin, each role's story end to end in a real Chromium against a real
// server, under the console's own strict CSP (no bypass):
//   1. the web team signs in with an admin token and creates a campaign from nothing: the form
//      (with the builder and its preview), districts from a GeoJSON file, pre-moderation, opens it,
//      copies the snippet, and issues a moderator's and a planner's token (shown once);
//   2. a citizen contributes through the snippet pasted on a host page of another origin;
//   3. the moderator signs in and approves it (it then counts);
//   4. the planner signs in and downloads the districts GeoJSON, which GDAL's ogrinfo reads;
// then every console page, in French and English, is checked by axe-core and screenshotted into
// docs/screenshots/ (console-*.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE, launch, newPage, adminToken, api, screenshotDir, mapPoint, fillForm } from './helpers.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const browser = await launch();
test.after(() => browser.close());

const ADMIN = await adminToken();
const SLUG = `console-e2e-${Date.now().toString(36)}`;
const state = { moderator: null, planner: null, element: null, submission: null };

/** Two districts side by side near Lyon. */
function districtsFile() {
  const square = (x, y, name, code) => ({
    type: 'Feature',
    properties: { name, code },
    geometry: { type: 'Polygon', coordinates: [[[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]] },
  });
  const dir = mkdtempSync(join(tmpdir(), 'console-'));
  const file = join(dir, 'quartiers.geojson');
  writeFileSync(file, JSON.stringify({ type: 'FeatureCollection', features: [square(4.83, 45.75, 'Croix-Rousse', 'CR'), square(4.84, 45.75, 'Presqu’île', 'PI')] }));
  return file;
}

async function signIn(page, token, lang = 'fr') {
  await page.goto(`${BASE}/admin?lang=${lang}`);
  await page.locator('input[name="token"]').fill(token);
  await page.locator('form button[type="submit"]').click();
  await page.locator('header nav').waitFor({ timeout: 10000 });
}

async function axe(page) {
  await page.addScriptTag({ content: axeSource });
  const res = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] }));
  return res.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help}\n${v.nodes.slice(0, 5).map((n) => '   ' + n.target.join(' ') + ' — ' + n.failureSummary.replace(/\n/g, ' ')).join('\n')}`);
}

test('the web team signs in and runs a campaign from nothing: form, districts, open, snippet, tokens', { skip: !ADMIN && 'no admin token (set CIVICMAP_ADMIN_TOKEN or DATABASE_URL)' }, async () => {
  const page = await newPage(browser, { permissions: ['clipboard-read', 'clipboard-write'] });
  const violations = [];
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/.test(m.text())) violations.push(m.text()); });
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));

  // A wrong token is refused, saying so; the right one signs in. The token is never stored.
  await page.goto(`${BASE}/admin?lang=fr`);
  await page.locator('input[name="token"]').fill('cmk_1_wrong');
  await page.locator('form button[type="submit"]').click();
  await page.locator('.status.error').waitFor();
  assert.match(await page.locator('.status.error').innerText(), /pas valide|not valid/);
  await signIn(page, ADMIN);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie + location.href);
  assert.ok(!stored.includes(ADMIN.split('_')[2]), 'the token is in storage, a script-readable cookie or the URL');

  // The campaign, its form written with the builder; the preview follows.
  await page.getByRole('link', { name: 'Nouvelle campagne' }).click();
  await page.getByLabel('Identifiant (lettres minuscules').fill(SLUG);
  await page.getByLabel('Titre (français)').fill('Fibre à la Croix-Rousse');
  await page.getByLabel('Titre (anglais)').fill('Fibre in Croix-Rousse');
  await page.getByLabel('Mode de modération').selectOption('pre');
  await page.getByLabel('Seuil k').fill('1');
  await page.getByLabel('Précision publique').fill('50');
  const q1 = page.locator('fieldset.question').nth(0);
  await q1.getByLabel('Clé (technique)').fill('connexion');
  await q1.getByLabel('Libellé (français)').fill('Votre connexion');
  await q1.getByLabel('Libellé (anglais)').fill('Your connection');
  await q1.getByLabel('Options').fill('adsl | ADSL | ADSL\naucune | Aucune | None');
  await page.getByRole('button', { name: 'Ajouter une question' }).click();
  const q2 = page.locator('fieldset.question').nth(1);
  await q2.getByLabel('Clé (technique)').fill('foyers');
  await q2.getByLabel('Type').selectOption('number');
  await q2.getByLabel('Libellé (français)').fill('Foyers dans l’immeuble');
  await q2.getByLabel('Libellé (anglais)').fill('Households in the building');
  await q2.getByLabel('Minimum').fill('1');
  await q2.getByLabel('Maximum').fill('80');
  const preview = page.locator('.preview');
  assert.match(await preview.innerText(), /Votre connexion \*[\s\S]*Aucune[\s\S]*Foyers dans l’immeuble/);
  assert.equal(await preview.locator('input[type=number]').getAttribute('max'), '80');
  await page.getByRole('button', { name: 'Créer la campagne' }).click();
  await page.waitForURL(new RegExp(`#/campaign/${SLUG}$`));
  await page.locator('#d-h').waitFor();

  // Districts from a file: listed, then imported on confirmation.
  await page.locator('input[type=file]').setInputFiles(districtsFile());
  await page.getByText('2 secteurs lus dans le fichier').waitFor();
  assert.match(await page.locator('.districts-preview').innerText(), /Croix-Rousse \(CR\)[\s\S]*Presqu’île \(PI\)/);
  await page.getByRole('button', { name: 'Remplacer les secteurs' }).click();
  await page.getByText('2 secteurs importés.').waitFor();
  // A target for one district, saved with the settings.
  await page.getByLabel('Objectifs par secteur').fill('CR = 10');
  await page.getByRole('button', { name: 'Enregistrer' }).click();
  await page.getByText('Enregistré.').waitFor();

  // Open it.
  await page.getByRole('button', { name: 'Ouvrir la campagne' }).click();
  await page.locator('#o-h + p .badge.open').waitFor();
  const campaign = await api(`/api/v1/campaigns/${SLUG}`);
  assert.equal(campaign.status, 200);
  assert.equal(campaign.body.status, 'open');
  assert.equal(campaign.body.moderation, 'pre');
  assert.deepEqual(campaign.body.form.fields.map((f) => [f.key, f.type, !!f.required]), [['connexion', 'choice', true], ['foyers', 'number', true]]);

  // The snippet, copied; the live preview shows the widget in both languages.
  const element = page.locator('textarea[data-snippet="element"]');
  state.element = await element.inputValue();
  assert.match(state.element, new RegExp(`<civicmap-map campaign="${SLUG}"></civicmap-map><script src="${BASE}/widget/civicmap.js" defer></script>`));
  await page.locator('div:has(> .field > textarea[data-snippet="element"]) > button').click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), state.element);
  const frames = page.frameLocator(`iframe[src="/embed/${SLUG}?lang=en"]`);
  await frames.locator('civicmap-map').waitFor({ timeout: 20000 });

  // Tokens for the moderator and the planner, each shown once.
  for (const role of ['moderator', 'planner']) {
    await page.goto(`${BASE}/admin?lang=fr#/tokens`);
    await page.getByLabel('Nom (qui le détient)').fill(`console e2e ${role}`);
    await page.getByLabel('Rôle').selectOption(role);
    await page.getByRole('button', { name: 'Créer le jeton' }).last().click();
    state[role] = await page.locator('#new-token').inputValue();
    assert.match(state[role], /^cmk_\d+_/);
    await page.reload();
    assert.ok(!(await page.content()).includes(state[role]), 'a token is shown once');
  }

  // Signing out ends the session: the API refuses the cookie afterwards.
  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await page.locator('input[name="token"]').waitFor();
  const after = await page.evaluate(async () => (await fetch('/api/v1/admin/campaigns')).status);
  assert.equal(after, 401);

  const origin = new URL(BASE).origin;
  assert.deepEqual(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')), [], 'no third-party request');
  assert.deepEqual(violations, [], 'the console runs under its CSP');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a citizen contributes through the snippet on a host page', { skip: !ADMIN && 'no admin token' }, async () => {
  assert.ok(state.element, 'the snippet was copied');
  // The city's page, on a site of its own (another origin), with the snippet pasted in.
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Ville</title></head><body><h1>Ma ville</h1>${state.element}</body></html>`);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  test.after(() => server.close());
  const page = await newPage(browser);
  await page.goto(`http://127.0.0.1:${server.address().port}/quartiers.html`);
  await page.locator('civicmap-map .cm-title').first().waitFor({ timeout: 20000 });
  await page.waitForFunction(() => {
    const m = document.querySelector('civicmap-map')?.map;
    return m && m.loaded();
  }, null, { timeout: 20000 });
  const campaign = (await api(`/api/v1/campaigns/${SLUG}`)).body;
  const { x, y } = await mapPoint(page, [4.835, 45.755]);
  await page.mouse.click(x, y);
  await fillForm(page, campaign, { connexion: 'aucune', foyers: 12 });
  await page.waitForTimeout(3200); // the campaign's minimum fill time
  await page.locator('civicmap-map button.cm-submit').click();
  const success = page.locator('civicmap-map .cm-success');
  await success.waitFor({ timeout: 15000 });
  assert.match(await success.innerText(), /modération/);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('the moderator signs in and approves the contribution', { skip: !ADMIN && 'no admin token' }, async () => {
  const page = await newPage(browser);
  await signIn(page, state.moderator);
  // A moderator sees moderation only.
  assert.deepEqual(await page.locator('header nav a').allInnerTexts(), ['Modération', 'Tableau de bord']);
  await page.getByLabel('Identifiant de la campagne').fill(SLUG);
  await page.getByRole('button', { name: 'Afficher' }).click();
  const item = page.locator('li.item').first();
  await item.waitFor({ timeout: 10000 });
  assert.match(await item.innerText(), /connexion: aucune · foyers: 12/);
  assert.match(await item.innerText(), /Croix-Rousse \(CR\)/);
  // Keyboard: focus the item, `a` approves.
  await item.focus();
  await page.keyboard.press('a');
  await page.getByText('1 décision(s) enregistrée(s).').waitFor();
  await page.getByText('Rien à modérer.').waitFor({ timeout: 10000 });
  // The other queues are a tab away; the approved contribution is in none of them.
  await page.getByRole('link', { name: 'Signalées' }).click();
  await page.waitForURL(/status=reported$/);
  await page.getByText('Rien à modérer.').waitFor();
  assert.equal(await page.getByLabel('Identifiant de la campagne').inputValue(), SLUG);
  // An admin page is refused by the server, whatever the UI shows.
  assert.equal(await page.evaluate(async () => (await fetch('/api/v1/admin/tokens')).status), 403);
  const fc = (await api(`/api/v1/campaigns/${SLUG}/districts.geojson?t=${Date.now()}`)).body;
  assert.equal(fc.features.find((f) => f.properties.code === 'CR').properties.count, 1, 'the approved contribution counts');
  const audit = await api('/api/v1/admin/audit?action=submission.approve', { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.ok(audit.body.entries.some((e) => e.actor.includes('console e2e moderator')), JSON.stringify(audit.body).slice(0, 400));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('the planner downloads the districts GeoJSON and GDAL reads it', { skip: !ADMIN && 'no admin token' }, async () => {
  const page = await newPage(browser, { acceptDownloads: true });
  await signIn(page, state.planner, 'en');
  assert.deepEqual(await page.locator('header nav a').allInnerTexts(), ['Downloads', 'Dashboard']);
  await page.getByLabel('Campaign identifier').fill(SLUG);
  await page.getByRole('button', { name: 'Show' }).click();
  const link = page.getByRole('link', { name: /Districts with their counts \(GeoJSON\)/ });
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const file = join(mkdtempSync(join(tmpdir(), 'planner-')), download.suggestedFilename());
  await download.saveAs(file);
  const info = spawnSync('ogrinfo', ['-ro', '-al', '-so', file], { encoding: 'utf8' });
  assert.equal(info.status, 0, info.stderr);
  assert.match(info.stdout, /Feature Count: 2/);
  assert.match(info.stdout, /code: String/);
  const all = spawnSync('ogrinfo', ['-ro', '-al', file], { encoding: 'utf8' });
  assert.match(all.stdout, /name \(String\) = Croix-Rousse/);
  // The dashboard counts the approved contribution, per district and over time.
  await page.goto(`${BASE}/admin?lang=en#/dashboard/${SLUG}`);
  await page.locator('p.total strong').waitFor();
  assert.equal(await page.locator('p.total strong').innerText(), '1');
  assert.match(await page.locator('tbody tr', { hasText: 'Croix-Rousse (CR)' }).innerText(), /1\s+10\s+10 %/);
  // The operator's report, one click from the downloads: a PDF with the district's count.
  await page.goto(`${BASE}/admin?lang=en#/downloads/${SLUG}`);
  const report = page.getByRole('link', { name: /Report for the operator \(PDF/ });
  const [pdf] = await Promise.all([page.waitForEvent('download'), report.click()]);
  const pdfFile = join(mkdtempSync(join(tmpdir(), 'report-')), pdf.suggestedFilename());
  await pdf.saveAs(pdfFile);
  const text = spawnSync('pdftotext', ['-layout', pdfFile, '-'], { encoding: 'utf8' });
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /Croix-Rousse\s+CR\s+1\s+10\s+10\.0 %/);
  // The raw export (exact positions) is there for the planner, and audited.
  const raw = await page.evaluate(async (s) => (await fetch(`/api/v1/admin/campaigns/${s}/submissions.geojson`)).status, SLUG);
  assert.equal(raw, 200);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('every console page passes axe-core and is screenshotted in French and English', { skip: !ADMIN && 'no admin token' }, async () => {
  const dir = screenshotDir();
  const pages = [
    ['campaigns', '#/campaigns'],
    ['campaign', `#/campaign/${SLUG}`],
    ['new-campaign', '#/campaign/new'],
    ['moderation', `#/moderation/${SLUG}?status=pending`],
    ['downloads', `#/downloads/${SLUG}`],
    ['dashboard', `#/dashboard/${SLUG}`],
    ['tokens', '#/tokens'],
    ['audit', '#/audit'],
  ];
  for (const lang of ['fr', 'en']) {
    const page = await newPage(browser, { bypassCSP: true });
    await page.goto(`${BASE}/admin?lang=${lang}`);
    await page.locator('input[name="token"]').waitFor();
    let vs = await axe(page);
    assert.deepEqual(vs, [], `sign-in (${lang})`);
    await page.screenshot({ path: join(dir, `console-signin-${lang}.png`), fullPage: true });
    await signIn(page, ADMIN, lang);
    for (const [name, hash] of pages) {
      await page.goto(`${BASE}/admin?lang=${lang}${hash}`);
      await page.locator('main h1').waitFor();
      await page.waitForTimeout(name === 'campaign' ? 2500 : 300);
      vs = await axe(page);
      assert.deepEqual(vs, [], `${name} (${lang})`);
      await page.screenshot({ path: join(dir, `console-${name}-${lang}.png`), fullPage: true });
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});
