// The staff console at /admin, each role's story end to end in a real Chromium against a real
// server, under the console's own strict CSP (no bypass):
//   1. the web team signs in with an admin token and creates a campaign from nothing: the form
//      (with the builder and its preview), districts from a GeoJSON file, pre-moderation, opens it,
//      copies the snippet, and issues a moderator's and a planner's token (shown once);
//   2. a citizen contributes through the snippet pasted on a host page of another origin;
//   3. the moderator signs in and approves it (it then counts);
//   4. the planner signs in and downloads the districts GeoJSON, which GDAL's ogrinfo reads;
// with the maps along the way (districts preview with names and codes, the moderation queue's
// numbered markers, the dashboard's choropleth), the breakdowns by answer, the exact figures for
// the planner (and not the moderator), the basemap, geocoder and retention settings; then every
// console page, in French and English, is checked by axe-core and screenshotted into
// docs/screenshots/ (console-*.png), and on a tablet (768×1024, 1024×768) nothing is wider than
// the screen and the main controls are on it (console-tablet-*.png).
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

/** Signs in; sign-ins are rate-limited per address (10 a minute), so a 429 waits as told and retries. */
async function signIn(page, token, lang = 'fr') {
  for (let attempt = 0; ; attempt++) {
    await page.goto(`${BASE}/admin?lang=${lang}`);
    await page.locator('input[name="token"]').fill(token);
    await page.locator('form button[type="submit"]').click();
    await page.locator('header nav, .status.error').first().waitFor({ timeout: 10000 });
    if (await page.locator('header nav').count()) return;
    const m = /retry in (\d+) s/.exec(await page.locator('.status.error').innerText());
    if (!m || attempt > 3) throw new Error(`sign-in failed: ${await page.locator('.status.error').innerText()}`);
    await page.waitForTimeout((Number(m[1]) + 1) * 1000);
  }
}

/** Waits for every map of the page to be drawn (or replaced by its note). */
async function mapsSettled(page) {
  await page.waitForFunction(() => [...document.querySelectorAll('[data-map]')].every((m) => m.dataset.ready === 'true' && m.map?.loaded()), null, { timeout: 30000 });
}

/** Requests to any origin but the server's. */
function thirdParty(requests) {
  const origin = new URL(BASE).origin;
  return requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
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
  // Help in French only: English repeats it rather than showing nothing.
  await q1.getByLabel('Aide sous la question (français').fill('Celle du logement aujourd’hui');
  await page.getByRole('button', { name: 'Ajouter une question' }).click();
  const q2 = page.locator('fieldset.question').nth(1);
  await q2.getByLabel('Clé (technique)').fill('foyers');
  await q2.getByLabel('Type').selectOption('number');
  await q2.getByLabel('Libellé (français)').fill('Foyers dans l’immeuble');
  await q2.getByLabel('Libellé (anglais)').fill('Households in the building');
  await q2.getByLabel('Minimum').fill('1');
  await q2.getByLabel('Maximum').fill('80');
  await q2.getByLabel('Nombres entiers seulement').check();
  // A third, optional yes/no question whose answers may be published (aggregated).
  await page.getByRole('button', { name: 'Ajouter une question' }).click();
  const q3 = page.locator('fieldset.question').nth(2);
  await q3.getByLabel('Clé (technique)').fill('teletravail');
  await q3.getByLabel('Type').selectOption('boolean');
  await q3.getByLabel('Libellé (français)').fill('Télétravail dans le foyer');
  await q3.getByLabel('Libellé (anglais)').fill('Remote work at home');
  await q3.getByLabel('Obligatoire').uncheck();
  await q3.getByLabel('Réponses publiables').check();
  // A fourth, free text: its longest answer is set (the API requires one).
  await page.getByRole('button', { name: 'Ajouter une question' }).click();
  const q4 = page.locator('fieldset.question').nth(3);
  await q4.getByLabel('Clé (technique)').fill('remarque');
  await q4.getByLabel('Type').selectOption('text');
  await q4.getByLabel('Libellé (français)').fill('Une remarque');
  await q4.getByLabel('Libellé (anglais)').fill('A remark');
  await q4.getByLabel('Obligatoire').uncheck();
  await q4.getByLabel('Longueur maximale').fill('200');
  assert.equal(await q4.getByLabel('Réponses publiables').count(), 0, 'free text is never public');
  assert.equal(await q2.getByLabel('Réponses publiables').count(), 0, 'a number field cannot be public');
  const preview = page.locator('.preview');
  assert.match(await preview.innerText(), /Votre connexion \*[\s\S]*Aucune[\s\S]*Foyers dans l’immeuble/);
  assert.equal(await preview.locator('input[type=number]').getAttribute('max'), '80');
  assert.equal(await preview.locator('input[type=number]').getAttribute('step'), '1');
  assert.equal(await preview.locator('input[type=text]').getAttribute('maxlength'), '200');
  assert.match(await preview.innerText(), /Votre connexion \*\s*Celle du logement aujourd’hui/);
  await page.getByRole('button', { name: 'Créer la campagne' }).click();
  await page.waitForURL(new RegExp(`#/campaign/${SLUG}$`));
  await page.locator('#d-h').waitFor();

  // Settings: the API's per-field error for an address search that is not https; then a
  // basemap (image tiles from this server), an address search and a retention, saved and read
  // back after a reload; then the basemap switched to a style and the address search cleared.
  const settings = page.locator('form.card').first();
  await page.getByLabel('Recherche d’adresse').fill('http://geocode.example.org/search?q={q}');
  await page.getByRole('button', { name: 'Enregistrer' }).click();
  await settings.locator('.status.error').waitFor();
  assert.match(await settings.locator('.status.error').innerText(), /geocoder\.url\s*:\s*must be an https URL/);
  const tiles = `${BASE}/widget/e2e-tiles/{z}/{x}/{y}.png`;
  await page.getByLabel('Recherche d’adresse').fill('https://api-adresse.data.gouv.fr/search/?q={q}');
  await page.getByLabel('Fond de carte du widget').selectOption('raster');
  await page.getByLabel('Adresses des tuiles').fill(tiles);
  await page.getByLabel('Crédits affichés sur la carte').fill('© Ville de Lyon');
  await page.getByLabel('Zoom maximal du fournisseur').fill('18');
  await page.getByLabel('Conservation des données exactes').fill('30');
  await page.getByRole('button', { name: 'Enregistrer' }).click();
  await page.getByText('Enregistré.').waitFor();
  await page.reload();
  await page.locator('#d-h').waitFor();
  assert.equal(await page.getByLabel('Fond de carte du widget').inputValue(), 'raster');
  assert.equal(await page.getByLabel('Adresses des tuiles').inputValue(), tiles);
  assert.equal(await page.getByLabel('Crédits affichés sur la carte').inputValue(), '© Ville de Lyon');
  assert.equal(await page.getByLabel('Zoom maximal du fournisseur').inputValue(), '18');
  assert.equal(await page.getByLabel('Recherche d’adresse').inputValue(), 'https://api-adresse.data.gouv.fr/search/?q={q}');
  assert.equal(await page.getByLabel('Conservation des données exactes').inputValue(), '30');
  const adminGet = async () => (await api(`/api/v1/admin/campaigns/${SLUG}`, { headers: { Authorization: `Bearer ${ADMIN}` } })).body;
  let saved = await adminGet();
  assert.deepEqual(saved.basemap, { type: 'raster', tiles: [tiles], attribution: '© Ville de Lyon', maxzoom: 18 });
  assert.deepEqual(saved.geocoder, { url: 'https://api-adresse.data.gouv.fr/search/?q={q}' });
  assert.equal(saved.retention_days, 30);
  await page.getByLabel('Fond de carte du widget').selectOption('style');
  assert.ok(await page.getByLabel('Adresses des tuiles').isHidden(), 'the tiles field goes with the raster choice');
  await page.getByLabel('Adresse du style').fill(`${BASE}/basemap/style.json`);
  await page.getByLabel('Recherche d’adresse').fill('');
  await page.getByRole('button', { name: 'Enregistrer' }).click();
  await page.getByText('Enregistré.').waitFor();
  saved = await adminGet();
  assert.deepEqual(saved.basemap, { type: 'style', url: `${BASE}/basemap/style.json` });
  assert.equal(saved.geocoder, null, 'an empty address search clears it (null)');
  assert.equal(saved.retention_days, 30);

  // Districts from a file: listed, then imported on confirmation.
  await page.locator('input[type=file]').setInputFiles(districtsFile());
  await page.getByText('2 secteurs lus dans le fichier').waitFor();
  assert.match(await page.locator('.districts-preview').innerText(), /Croix-Rousse \(CR\)[\s\S]*Presqu’île \(PI\)/);
  // ... and drawn on a map, each with its name and code at a point inside it, on the map.
  const previewMap = page.locator('[data-map="districts-preview"][data-ready]');
  await previewMap.waitFor({ timeout: 30000 });
  assert.deepEqual((await previewMap.locator('.map-label').allInnerTexts()).sort(), ['Croix-Rousse (CR)', 'Presqu’île (PI)']);
  const box = await previewMap.boundingBox();
  const labels = await previewMap.locator('.map-label').evaluateAll((els) => els.map((e) => { const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }));
  assert.ok(box.width > 200 && box.height > 200, JSON.stringify(box));
  // (both in the viewport's coordinates)
  for (const [x, y] of labels) assert.ok(x > box.x && x < box.x + box.width && y > box.y && y < box.y + box.height, `label at ${x},${y} outside the map ${JSON.stringify(box)}`);
  assert.ok(labels[0][0] !== labels[1][0], 'the two districts are side by side');
  await page.getByRole('button', { name: 'Remplacer les secteurs' }).click();
  await page.getByText('2 secteurs importés.').waitFor();
  // A target for one district, saved with the settings.
  await page.getByLabel('Objectifs par secteur').fill('CR = 10');
  await page.getByRole('button', { name: 'Enregistrer' }).click();
  await page.getByText('Enregistré.').waitFor();

  // Open it.
  await page.getByRole('button', { name: 'Ouvrir la campagne' }).click();
  await page.locator('#o-h + p .badge.open').waitFor();
  // Once open, the campaign's current districts are on a map too.
  const currentMap = page.locator('[data-map="districts-current"][data-ready]');
  await currentMap.waitFor({ timeout: 30000 });
  assert.equal(await currentMap.locator('.map-label').count(), 2);
  const campaign = await api(`/api/v1/campaigns/${SLUG}`);
  assert.equal(campaign.status, 200);
  assert.equal(campaign.body.status, 'open');
  assert.equal(campaign.body.moderation, 'pre');
  assert.deepEqual(campaign.body.form.fields.map((f) => [f.key, f.type, !!f.required, !!f.public]), [['connexion', 'choice', true, false], ['foyers', 'number', true, false], ['teletravail', 'boolean', false, true], ['remarque', 'text', false, false]]);
  const [connexion, foyers, , remarque] = campaign.body.form.fields;
  assert.deepEqual(connexion.help, { fr: 'Celle du logement aujourd’hui', en: 'Celle du logement aujourd’hui' });
  assert.equal(foyers.integer, true);
  assert.equal(remarque.max_length, 200);

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

  assert.deepEqual(thirdParty(requests), [], 'no third-party request');
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
  await fillForm(page, campaign, { connexion: 'aucune', foyers: 12, teletravail: true });
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
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await signIn(page, state.moderator);
  // A moderator sees moderation only.
  assert.deepEqual(await page.locator('header nav a').allInnerTexts(), ['Modération', 'Tableau de bord']);
  // The campaign is picked from a list, with what waits in its queues.
  const picker = page.getByLabel('Campagne', { exact: true });
  assert.match(await picker.locator(`option[value="${SLUG}"]`).innerText(), /Fibre à la Croix-Rousse \(.*\) — 1 en attente, 0 signalée/);
  await picker.selectOption(SLUG);
  await page.getByRole('button', { name: 'Afficher' }).click();
  const item = page.locator('li.item').first();
  await item.waitFor({ timeout: 10000 });
  // The answers with the questions' and options' labels.
  assert.match(await item.innerText(), /Votre connexion\s*:\s*Aucune/);
  assert.match(await item.innerText(), /Foyers dans l’immeuble\s*:\s*12/);
  assert.match(await item.innerText(), /Télétravail dans le foyer\s*:\s*Oui/);
  assert.match(await item.innerText(), /Croix-Rousse \(CR\)/);
  // On the map: one numbered marker per item; a click on it brings its item forward, focused.
  const modMap = page.locator('[data-map="moderation"][data-ready]');
  await modMap.waitFor({ timeout: 30000 });
  assert.equal(await modMap.locator('.map-pin').count(), await page.locator('li.item').count());
  assert.equal(await modMap.locator('.map-pin').first().innerText(), '1');
  await modMap.locator('.map-pin').first().click();
  assert.ok(await page.evaluate(() => document.activeElement?.matches('li.item.current')), 'the marker focuses its item');
  assert.equal(await modMap.locator('.map-pin.current').count(), 1);
  const id = await item.getAttribute('data-id');
  // Keyboard: focus the item, `a` approves.
  await item.focus();
  await page.keyboard.press('a');
  await page.getByText('1 décision(s) enregistrée(s).').waitFor();
  await page.getByText('Rien à modérer.').waitFor({ timeout: 10000 });
  // Someone on the staff reports it: it is in the reported queue, with the reason, on the map.
  const filed = await api(`/api/v1/moderation/campaigns/${SLUG}/submissions/${id}/report`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ reason: 'Adresse inventée' }) });
  assert.ok(filed.status < 300, JSON.stringify(filed.body));
  await page.getByRole('link', { name: 'Signalées' }).click();
  await page.waitForURL(/status=reported$/);
  const reported = page.locator('li.item').first();
  await reported.waitFor({ timeout: 10000 });
  assert.match(await reported.innerText(), /Signalements[\s\S]*« Adresse inventée »/);
  await page.locator('[data-map="moderation"][data-ready] .map-pin').first().waitFor({ timeout: 30000 });
  // Focusing an item (as j and k do) highlights its marker.
  assert.equal(await page.locator('.map-pin.current').count(), 0);
  await reported.focus();
  assert.equal(await page.locator('.map-pin.current').innerText(), '1');
  assert.equal(await page.getByLabel('Campagne', { exact: true }).inputValue(), SLUG);
  // The moderator's dashboard: public figures, no exact figures, no breakdown by a field that is
  // not public (`connexion` is not).
  await page.goto(`${BASE}/admin?lang=fr#/dashboard/${SLUG}`);
  await page.locator('p.total strong').waitFor();
  await mapsSettled(page);
  assert.equal(await page.locator('[data-exact]').count(), 0, 'no exact figures for a moderator');
  // Only the public field's breakdown, `teletravail`; not `connexion`.
  assert.deepEqual(await page.locator('section.breakdown').evaluateAll((els) => els.map((e) => e.dataset.field)), ['teletravail'], 'no breakdown by a non-public field for a moderator');
  assert.equal(await page.locator('section.breakdown .status.error').count(), 0);
  assert.deepEqual(thirdParty(requests), [], 'no third-party request');
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
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await signIn(page, state.planner, 'en');
  assert.deepEqual(await page.locator('header nav a').allInnerTexts(), ['Downloads', 'Dashboard']);
  await page.getByLabel('Campaign', { exact: true }).selectOption(SLUG);
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
  assert.match(await page.locator('table.districts tbody tr', { hasText: 'Croix-Rousse (CR)' }).innerText(), /1\s+10\s+10 %/);
  // The map: districts coloured by progress toward their target, with a legend.
  await page.locator('[data-map="dashboard"][data-ready]').waitFor({ timeout: 30000 });
  assert.match(await page.locator('.legend').innerText(), /target reached[\s\S]*no target[\s\S]*withheld/);
  // The breakdown by answer: the planner may use `connexion` (not public); the figures are the API's.
  const bd = (await api(`/api/v1/campaigns/${SLUG}/aggregates.geojson?breakdown=connexion`, { headers: { Authorization: `Bearer ${state.planner}` } })).body;
  assert.deepEqual(await page.locator('section.breakdown').evaluateAll((els) => els.map((e) => e.dataset.field)), ['connexion', 'teletravail']);
  const section = page.locator('section.breakdown[data-field="connexion"]');
  await section.waitFor();
  const fmt = (n) => (n === null || n === undefined ? 'withheld' : String(n));
  for (const f of bd.features.filter((x) => x.properties.code)) {
    const p = f.properties;
    const cells = await section.locator('tbody tr', { hasText: `(${p.code})` }).locator('td').allInnerTexts();
    assert.deepEqual(cells, [p['connexion=adsl'], p['connexion=aucune'], p['connexion=(no answer)'], p.count].map(fmt), p.code);
  }
  const t = bd.breakdown_totals;
  assert.deepEqual(await section.locator('tfoot td').allInnerTexts(), [t['connexion=adsl'], t['connexion=aucune'], t['connexion=(no answer)'], bd.total.count].map(fmt));
  assert.equal(bd.features.find((x) => x.properties.code === 'CR').properties['connexion=aucune'], 1);
  // Exact figures, labelled as such: the one contribution of this test, published.
  const exact = page.locator('[data-exact]');
  await exact.waitFor();
  assert.match(await exact.innerText(), /Exact figures \(not public\)/);
  assert.equal(await exact.locator('dd[data-total="published"]').innerText(), '1');
  assert.equal(await exact.locator('dd[data-total="pending"]').innerText(), '0');
  // Per answer, with the options' labels: the one contribution said "None" and "yes".
  assert.match(await exact.locator('tbody tr', { hasText: 'None' }).innerText(), /None\s+1\s+1\s+0/);
  assert.match(await exact.locator('tbody tr', { hasText: 'Yes' }).innerText(), /Yes\s+1\s+1\s+0/);
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
  assert.deepEqual(thirdParty(requests), [], 'no third-party request');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('every console page passes axe-core and is screenshotted in French and English', { skip: !ADMIN && 'no admin token' }, async () => {
  const dir = screenshotDir();
  const pages = [
    ['campaigns', '#/campaigns'],
    ['campaign', `#/campaign/${SLUG}`],
    ['new-campaign', '#/campaign/new'],
    ['moderation', `#/moderation/${SLUG}?status=reported`],
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
      await mapsSettled(page);
      if (name === 'campaigns') {
        // The list gives each campaign's queues: the contribution reported in the moderator's story.
        const row = page.locator('tbody tr', { hasText: SLUG });
        assert.match(await row.innerText(), lang === 'fr' ? /0 en attente, 1 signalée/ : /0 pending, 1 reported/);
      }
      vs = await axe(page);
      assert.deepEqual(vs, [], `${name} (${lang})`);
      await page.screenshot({ path: join(dir, `console-${name}-${lang}.png`), fullPage: true });
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});

test('on a tablet, every console page fits the screen and its main controls are on it', { skip: !ADMIN && 'no admin token' }, async () => {
  const dir = screenshotDir();
  const pages = [
    ['campaigns', '#/campaigns', 'a.button'],
    ['campaign', `#/campaign/${SLUG}`, 'form.card button[type=submit]'],
    ['new-campaign', '#/campaign/new', 'form.card button[type=submit]'],
    ['moderation', `#/moderation/${SLUG}?status=reported`, 'li.item button[data-action]'],
    ['downloads', `#/downloads/${SLUG}`, 'ul.downloads a'],
    ['dashboard', `#/dashboard/${SLUG}`, 'form.picker button'],
    ['tokens', '#/tokens', 'form.card button[type=submit]'],
    ['audit', '#/audit', 'form.inline button'],
  ];
  const shots = ['campaign', 'moderation', 'dashboard'];
  for (const lang of ['fr', 'en']) {
    const page = await newPage(browser, { viewport: { width: 768, height: 1024 }, hasTouch: true });
    await signIn(page, ADMIN, lang);
    for (const [width, height] of [[768, 1024], [1024, 768]]) {
      await page.setViewportSize({ width, height });
      for (const [name, hash, control] of pages) {
        await page.goto(`${BASE}/admin?lang=${lang}${hash}`);
        await page.locator('main h1').waitFor();
        await mapsSettled(page);
        const [scrollWidth, innerWidth] = await page.evaluate(() => [document.scrollingElement.scrollWidth, innerWidth]);
        assert.ok(scrollWidth <= innerWidth, `${name} (${lang}, ${width}×${height}) is ${scrollWidth}px wide on a ${innerWidth}px screen`);
        // The main control: visible, inside the screen's width once scrolled to, and it takes a tap.
        const c = page.locator(control).first();
        await c.scrollIntoViewIfNeeded();
        assert.ok(await c.isVisible(), `${name}: ${control} is visible`);
        const b = await c.boundingBox();
        assert.ok(b.x >= 0 && b.x + b.width <= width && b.height >= 24, `${name}: ${control} at ${JSON.stringify(b)}`);
        await c.click({ trial: true });
        // The navigation and sign-out are on screen too.
        await page.evaluate(() => scrollTo(0, 0));
        for (const el of await page.locator('header nav a, header button').all()) {
          const r = await el.boundingBox();
          assert.ok(r && r.x >= 0 && r.x + r.width <= width, `${name}: header control at ${JSON.stringify(r)}`);
        }
        if (width === 768 && shots.includes(name)) {
          await page.waitForTimeout(300);
          await mapsSettled(page);
        }
        if (width === 768 && shots.includes(name)) await page.screenshot({ path: join(dir, `console-tablet-${name}-${lang}.png`), fullPage: true });
      }
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});

test('without WebGL, the console\'s pages keep their lists and tables and say why there is no map', { skip: !ADMIN && 'no admin token' }, async () => {
  const noGL = await launch(['--disable-webgl', '--disable-webgl2', '--disable-3d-apis']);
  try {
    const page = await newPage(noGL);
    await signIn(page, ADMIN, 'en');
    assert.equal(await page.evaluate(() => !!document.createElement('canvas').getContext('webgl')), false, 'this browser really has no WebGL');
    for (const [hash, name, rest] of [[`#/dashboard/${SLUG}`, 'dashboard', 'table.districts tbody tr'], [`#/moderation/${SLUG}?status=reported`, 'moderation', 'li.item'], [`#/campaign/${SLUG}`, 'districts-current', '#d-h']]) {
      await page.goto(`${BASE}/admin?lang=en${hash}`);
      const note = page.locator(`[data-map-note="${name}"]`);
      await note.waitFor({ timeout: 15000 });
      assert.match(await note.innerText(), /needs WebGL/);
      assert.ok(await page.locator(rest).first().isVisible(), `${name}: ${rest} is there`);
      assert.equal(await page.locator('[data-map]').count(), 0);
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  } finally {
    await noGL.close();
  }
});
