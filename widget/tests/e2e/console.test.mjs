// The staff console at /admin, each role's story end to end in a real Chromium against a real
// server, under the console's own strict CSP (no bypass):
//   1. the web team signs in with an admin token and creates a campaign from nothing: the form
//      (with the builder and its preview), districts from a GeoJSON file, pre-moderation, opens it,
//      copies the snippet, and issues a moderator's and a planner's token (shown once);
//   2. a citizen contributes through the snippet pasted on a host page of another origin;
//   3. the moderator signs in and approves it (it then counts);
//   4. the admin publishes the figures now (the ledger gains a release), and the moderator's
//      dashboard shows the public's breakdown: estimates, labelled with their release;
//   5. the planner signs in and downloads the districts GeoJSON, which GDAL's ogrinfo reads;
// with the maps along the way (districts preview with names and codes, the moderation queue's
// numbered markers, the dashboard's choropleth), the privacy settings (budget ε, releases, hexagons)
// and their preview (the attacker's bounds, the noise's margins, the ledger), the breakdowns by
// answer (estimates for the moderator, exact for the planner), the exact figures for the planner
// (and not the moderator), the basemap, geocoder and retention settings; then every
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
import { formatPercent, parseSeries } from '../../.build/lib.mjs';

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

/** The campaign's privacy report (ledger and preview) as the API gives it to an admin. */
async function privacyReport(budget) {
  const r = await api(`/api/v1/admin/campaigns/${SLUG}/privacy${budget ? `?budget=${budget}` : ''}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** Text with its spaces (narrow, non-breaking) made plain, for comparing formatted numbers. */
const plain = (s) => s.replace(/\s+/g, ' ').trim();

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
  // The figures finer than a district: a budget ε, weekly releases, hexagons of resolution 9;
  // the explanation follows what is chosen (hexagons, not squares; e^ε).
  await page.getByLabel('Budget de confidentialité').fill('1.5');
  await page.getByLabel('Publication des chiffres').selectOption('week');
  const resolutions = await page.getByLabel('Taille des hexagones').locator('option').allInnerTexts();
  assert.deepEqual(resolutions.map((x) => x.split(' ')[0]), ['6', '7', '8', '9', '10']);
  assert.match(plain(resolutions[2]), /^8 — environ 0,74 km² \(côté ≈ 530 m\) \(par défaut\)$/);
  await page.getByLabel('Taille des hexagones').selectOption('9');
  const explained = plain(await page.locator('[data-privacy-explained]').innerText());
  assert.match(explained, /totaux par secteur sont exacts et à jour, masqués sous 1/);
  assert.match(explained, /hexagones de la carte, d’environ 0,11 km², jamais plus fins que 50 m/);
  assert.match(explained, /publié chaque semaine en estimations, avec un bruit aléatoire/);
  assert.match(explained, /À ε = 1,5, ces chiffres rendent toute affirmation sur un foyer au plus 4,5 fois plus probable/);
  assert.doesNotMatch(explained, /carré|\{/);
  assert.match(await page.locator('p.hint', { hasText: 'e^ε' }).innerText(), /Quoi que sache déjà quelqu’un/);
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
  // Its sums may be public only once its answers are whole numbers between a min and a max.
  const publicSums = q2.getByLabel('Sommes publiables');
  assert.ok(await publicSums.isDisabled(), 'a number field that is not whole numbers cannot be public');
  assert.match(await q2.locator('p.hint', { hasText: 'nombres entiers' }).innerText(), /Possible seulement pour des nombres entiers/);
  await q2.getByLabel('Nombres entiers seulement').check();
  assert.ok(await publicSums.isEnabled());
  assert.match(await q2.locator('p.hint', { hasText: 'bruit proportionnel' }).innerText(), /étendue des réponses \(ici 80\)/);
  await publicSums.check();
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
  assert.equal(await q2.getByLabel('Réponses publiables').count(), 0, 'a number field has sums, not answers, to publish');
  const preview = page.locator('.preview');
  assert.match(await preview.innerText(), /Votre connexion \*[\s\S]*Aucune[\s\S]*Foyers dans l’immeuble/);
  assert.equal(await preview.locator('input[type=number]').getAttribute('max'), '80');
  assert.equal(await preview.locator('input[type=number]').getAttribute('step'), '1');
  assert.equal(await preview.locator('input[type=text]').getAttribute('maxlength'), '200');
  assert.match(await preview.innerText(), /Votre connexion \*\s*Celle du logement aujourd’hui/);
  await page.getByRole('button', { name: 'Créer la campagne' }).click();
  await page.waitForURL(new RegExp(`#/campaign/${SLUG}$`));
  await page.locator('#d-h').waitFor();
  const saved0 = (await api(`/api/v1/admin/campaigns/${SLUG}`, { headers: { Authorization: `Bearer ${ADMIN}` } })).body;
  assert.deepEqual(saved0.privacy, { public_precision_m: 50, min_count: 1, budget: 1.5, release_every: 'week', map_resolution: 9 });

  // The privacy preview of the budget in the form: what an attacker can learn, in words and
  // percentages, as the API computes it on the campaign's data.
  const panel = page.locator('[data-privacy]');
  await panel.locator('[data-preview-budget="1.5"]').waitFor();
  let report = await privacyReport(1.5);
  assert.equal(plain(await panel.locator('[data-bound="place"]').innerText()),
    plain(`peut dire si un foyer habite à une adresse donnée ou ailleurs dans son secteur, et avoir raison au plus ${formatPercent(report.preview.attacker.place, 'fr')} du temps (à pile ou face : 50 %) ;`));
  const bound = report.preview.attacker.answers.find((a) => a.field === 'teletravail');
  assert.equal(plain(await panel.locator('[data-bound="teletravail"]').innerText()),
    plain(`« Télétravail dans le foyer » : devine la réponse d’un foyer avec au plus ${formatPercent(bound.bound, 'fr')} de réussite, contre ${formatPercent(bound.prior, 'fr')} sans les chiffres (en donnant toujours la réponse la plus fréquente).`));
  assert.equal(await panel.locator('[data-bound="connexion"]').count(), 0, 'a question that is not public gives no bound');
  assert.equal(await panel.locator('[data-releases]').getAttribute('data-releases'), String(report.preview.releases));
  assert.match(await panel.locator('[data-margin="sum-foyers"]').innerText(), /Somme de « Foyers dans l’immeuble » \(réponses de 1 à 80\)/);
  // A draft has released nothing, and cannot be released.
  assert.match(await panel.locator('[data-ledger="empty"]').innerText(), /Aucune publication/);
  assert.equal(await panel.locator('[data-publish]').count(), 0, 'a draft has no "publish now"');
  // Typing another budget previews it (after a pause): a lower ε, a smaller bound.
  await page.getByLabel('Budget de confidentialité').fill('0.5');
  await panel.locator('[data-preview-budget="0.5"]').waitFor();
  const lower = await privacyReport(0.5);
  assert.ok(lower.preview.attacker.place < report.preview.attacker.place);
  assert.equal(plain(await panel.locator('[data-bound="place"]').innerText()).match(/au plus ([\d,]+ %)/)[1], plain(formatPercent(lower.preview.attacker.place, 'fr')));
  assert.match(await panel.locator('[data-privacy-status]').innerText(), /Aperçu mis à jour pour ε = 0,5/);
  // Out of range: said, and not asked of the server.
  await page.getByLabel('Budget de confidentialité').fill('20');
  await panel.locator('[data-privacy-status].error').waitFor();
  assert.match(await panel.locator('[data-privacy-status]').innerText(), /ε doit être un nombre de 0,1 à 10/);
  await page.getByLabel('Budget de confidentialité').fill('1.5');
  await panel.locator('[data-preview-budget="1.5"]').waitFor();

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
  // The preview, redrawn with the saved settings, now has the districts: each one's margin for
  // the public question, and the exact count beside a simulated example of its estimate.
  const split = page.locator('[data-privacy] table.pp-split[data-field="teletravail"]');
  await split.locator('tr[data-district="PI"]').first().waitFor();
  report = await privacyReport(1.5);
  assert.match(await split.locator('caption').innerText(), /le compte exact \(non public\) et un exemple simulé de l’estimation que verrait le public \(jamais publié\)/);
  // Under each answer (yes, no, no answer), the exact count and the example (no contribution
  // yet: every example is 0, below k, whatever the noise drawn, as the estimates add up to the
  // district's total).
  assert.deepEqual(await split.locator('thead th[scope="colgroup"]').allInnerTexts(), ['Oui', 'Non', 'Sans réponse']);
  for (const code of ['CR', 'PI']) {
    const d = report.preview.districts.find((x) => x.code === code);
    const s = d.splits.find((x) => x.field === 'teletravail');
    const row = split.locator(`tr[data-district="${code}"]`);
    assert.equal(await row.count(), 1);
    assert.equal(plain(await row.locator('[data-split-margin]').innerText()), plain(`± ${new Intl.NumberFormat('fr-FR', { maximumFractionDigits: 1 }).format(s.margin)}`));
    assert.ok(s.margin > 0);
    for (const v of s.values) {
      assert.equal(await row.locator(`td[data-value-exact="${v.value}"]`).innerText(), String(v.exact));
      assert.equal(await row.locator(`td[data-value-example="${v.value}"]`).innerText(), v.example === null ? 'masqué (< 1)' : String(v.example));
    }
  }
  assert.match(plain(await page.locator('[data-privacy] [data-margin="map"]').innerText()), /95 % des estimations par hexagone sont à ± [\d,]+ contributions/);

  // Open it.
  await page.getByRole('button', { name: 'Ouvrir la campagne' }).click();
  await page.locator('#o-h + p .badge.open').waitFor();
  // Once open, the campaign's current districts are on a map too.
  const currentMap = page.locator('[data-map="districts-current"][data-ready]');
  await currentMap.waitFor({ timeout: 30000 });
  assert.equal(await currentMap.locator('.map-label').count(), 2);
  // Open, it may be released now by an admin.
  assert.equal(await page.locator('[data-privacy] [data-publish]').count(), 1);
  const campaign = await api(`/api/v1/campaigns/${SLUG}`);
  assert.equal(campaign.status, 200);
  assert.equal(campaign.body.status, 'open');
  assert.equal(campaign.body.moderation, 'pre');
  assert.deepEqual(campaign.body.form.fields.map((f) => [f.key, f.type, !!f.required, !!f.public]), [['connexion', 'choice', true, false], ['foyers', 'number', true, true], ['teletravail', 'boolean', false, true], ['remarque', 'text', false, false]]);
  assert.equal(campaign.body.privacy.release_every, 'week');
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

test('the admin publishes the figures now, after a confirmation: the ledger gains a release', { skip: !ADMIN && 'no admin token' }, async () => {
  const page = await newPage(browser);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await signIn(page, ADMIN);
  await page.goto(`${BASE}/admin?lang=fr#/campaign/${SLUG}`);
  const panel = page.locator('[data-privacy]');
  await panel.locator('[data-ledger="uncounted"]').waitFor();
  // The approved contribution waits for the next release; none made yet.
  assert.equal(await panel.locator('[data-ledger="uncounted"]').innerText(), '1');
  assert.equal(await panel.locator('tr[data-release]').count(), 0);
  assert.equal((await privacyReport()).ledger.releases.length, 0);
  // The button asks first, saying what it costs; "Annuler" releases nothing.
  await panel.getByRole('button', { name: 'Publier les chiffres maintenant' }).click();
  const confirm = panel.locator('.confirm');
  await confirm.waitFor();
  assert.match(plain(await confirm.innerText()), /compte les 1 contribution\(s\) en attente, sans dépenser davantage le budget de quiconque.*chaque publication ajoute son propre bruit aux estimations cumulées/);
  assert.ok(await page.evaluate(() => document.activeElement?.matches('[data-publish-confirm]')), 'the confirmation takes the focus');
  await panel.getByRole('button', { name: 'Annuler' }).click();
  assert.ok(await confirm.isHidden());
  assert.equal((await privacyReport()).ledger.releases.length, 0, 'cancelled: no release');
  // Confirmed: one release, counting the contribution; the ledger shows it, the live line says so.
  await panel.getByRole('button', { name: 'Publier les chiffres maintenant' }).click();
  await panel.getByRole('button', { name: 'Oui, publier maintenant' }).click();
  await panel.locator('tr[data-release]').waitFor();
  assert.match(await panel.locator('[data-privacy-status]').innerText(), /Chiffres publiés : 1 contribution\(s\) comptée\(s\), ε = [\d,]+ chacune/);
  const { ledger } = await privacyReport();
  assert.equal(ledger.releases.length, 1);
  assert.equal(ledger.releases[0].counted, 1);
  assert.equal(ledger.uncounted, 0);
  const row = panel.locator(`tr[data-release="${ledger.releases[0].id}"]`);
  assert.equal(await row.locator('td').nth(1).innerText(), '1', 'counted');
  assert.equal(await panel.locator('[data-ledger="uncounted"]').innerText(), '0');
  assert.equal(plain(await panel.locator('[data-ledger="spent"]').innerText()), plain(new Intl.NumberFormat('fr-FR', { maximumFractionDigits: 2 }).format(ledger.spent)));
  assert.ok(ledger.spent > 0 && ledger.spent <= 1.5);
  const audit = await api('/api/v1/admin/audit?action=figures.release', { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.ok(audit.body.entries.some((e) => e.subject === String(ledger.releases[0].id)), JSON.stringify(audit.body).slice(0, 400));
  assert.deepEqual(thirdParty(requests), [], 'no third-party request');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('the moderator\'s dashboard shows the public\'s breakdown: estimates, labelled with their release', { skip: !ADMIN && 'no admin token' }, async () => {
  const page = await newPage(browser);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await signIn(page, state.moderator);
  // Public figures, no exact figures, no privacy panel (exact counts), no breakdown by a field
  // that is not public (`connexion` is not).
  await page.goto(`${BASE}/admin?lang=fr#/dashboard/${SLUG}`);
  await page.locator('p.total strong').waitFor();
  await mapsSettled(page);
  assert.equal(await page.locator('[data-exact]').count(), 0, 'no exact figures for a moderator');
  assert.equal(await page.locator('[data-privacy]').count(), 0, 'no privacy preview (exact counts) for a moderator');
  // Only the public field's breakdown, `teletravail`; not `connexion`.
  assert.deepEqual(await page.locator('section.breakdown').evaluateAll((els) => els.map((e) => e.dataset.field)), ['teletravail'], 'no breakdown by a non-public field for a moderator');
  assert.equal(await page.locator('section.breakdown .status.error').count(), 0);
  // The public's figures: estimates of the release just made, read from their `estimate_` columns.
  const section = page.locator('section.breakdown[data-field="teletravail"]');
  assert.equal(await section.getAttribute('data-basis'), 'estimate');
  assert.match(plain(await section.locator('p.basis').innerText()), /^Estimations \(bruit ajouté pour la confidentialité\), publiées le .+ : ce que voit le public\.$/);
  const pub = (await api(`/api/v1/campaigns/${SLUG}/aggregates.geojson?breakdown=teletravail`)).body;
  assert.equal(pub.estimates.exact, false);
  assert.ok(pub.estimates.released_at, 'released');
  const columns = ['estimate_teletravail=true', 'estimate_teletravail=false', 'estimate_teletravail=(no answer)'];
  const fmt = (n) => (n === null || n === undefined ? 'masqué' : String(n));
  const cr = pub.features.find((f) => f.properties.code === 'CR').properties;
  assert.ok(columns.some((c) => cr[c] !== null), `an estimate is shown in CR: ${JSON.stringify(cr)}`);
  for (const f of pub.features.filter((x) => x.properties.code)) {
    const p = f.properties;
    for (const c of columns) assert.ok(c in p, `${c} in ${JSON.stringify(p)}`);
    const cells = await section.locator('tbody tr', { hasText: `(${p.code})` }).locator('td').allInnerTexts();
    assert.deepEqual(cells, [...columns.map((c) => p[c]), p.count].map(fmt), p.code);
  }
  assert.deepEqual(await section.locator('tfoot td').allInnerTexts(), [...columns.map((c) => pub.breakdown_totals[c]), pub.total.count].map(fmt));
  // The time series: the public's, one estimate per release, said to be estimates.
  assert.equal(await page.locator('[data-series-basis]').getAttribute('data-series-basis'), 'estimate');
  assert.match(await page.locator('table.series thead').innerText(), /Contributions \(estimation\)/);
  const csv = await (await fetch(`${BASE}/api/v1/campaigns/${SLUG}/timeseries.csv`, { cache: 'no-store' })).text();
  assert.match(csv.split('\n')[0], /^period,period_end,estimate,withheld/);
  const series = parseSeries(csv);
  assert.equal(series.rows.length, 1, 'one release, one row');
  assert.deepEqual(await page.locator('table.series tbody td').allInnerTexts().then((x) => x.map((c) => c.trim())), series.rows.map((r) => fmt(r.count)));
  assert.match(await page.locator('table.series tbody th').first().innerText(), new RegExp(`^${series.rows[0].period} → ${series.rows[0].end.slice(0, 10)}$`));
  assert.deepEqual(thirdParty(requests), [], 'no third-party request');
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
  // Each file says whether it holds exact totals or estimates; the public's hexagons are the
  // campaign's (resolution 9), and each public answer and sum has its file of estimates.
  const link = page.getByRole('link', { name: /Districts with their counts \(GeoJSON\)/ });
  await link.waitFor();
  assert.match(await page.locator('main p.explain').innerText(), /Exact totals:[\s\S]*Estimates: everything finer[\s\S]*released every week with noise added for privacy/);
  assert.match(await link.innerText(), /public, exact totals, withheld below k/);
  const h3 = page.getByRole('link', { name: /Counts per H3 hexagon/ });
  assert.match(await h3.innerText(), /public, estimates \(noise added for privacy\)/);
  assert.match(await h3.getAttribute('href'), /aggregates\.geojson\?by=h3:9$/);
  assert.match(await page.getByRole('link', { name: /^Time series \(CSV\)/ }).innerText(), /one estimate per release \(noise added for privacy\)/);
  assert.match(await page.getByRole('link', { name: /“Remote work at home” per district \(CSV\) — public, estimates/ }).getAttribute('href'), /aggregates\.csv\?breakdown=teletravail$/);
  assert.match(await page.getByRole('link', { name: /Sum of “Households in the building” per district \(CSV\) — public, estimates/ }).getAttribute('href'), /aggregates\.csv\?sum=foyers$/);
  assert.equal(await page.getByRole('link', { name: /“Your connection”/ }).count(), 0, 'no public file of a question that is not public');
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
  // Staff's breakdowns are exact, and said not to be public; the API's have no `estimate_` prefix.
  assert.equal(bd.figures.exact, true);
  assert.equal(bd.estimates, undefined);
  for (const field of ['connexion', 'teletravail']) {
    const s = page.locator(`section.breakdown[data-field="${field}"]`);
    assert.equal(await s.getAttribute('data-basis'), 'exact');
    assert.equal(plain(await s.locator('p.basis').innerText()), 'Exact counts, not public: the public sees noisy estimates, released every week.');
  }
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
  // The privacy ledger, for the planner too (at the campaign's budget): the release the admin
  // made, and no button to make another (admins only).
  const panel = page.locator('[data-privacy]');
  await panel.locator('tr[data-release]').first().waitFor();
  assert.equal(await panel.locator('tr[data-release]').count(), 1);
  assert.equal(await panel.locator('[data-preview-budget]').getAttribute('data-preview-budget'), '1.5');
  assert.match(await panel.locator('[data-bound="place"]').innerText(), /right at most [\d.]+% of the time \(a coin toss: 50%\)/);
  assert.equal(await panel.locator('[data-publish]').count(), 0, 'a planner cannot release');
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
