// axe-core finds no serious or critical WCAG 2.1 A/AA violation on the embed page, in French and English,
// at desktop and phone widths, with the validation errors shown, without the map, and on the edit page
// (a real entry, in French and English, with its errors shown; and a link to an entry that does not exist).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { launch, newPage, embedUrl, waitForWidget, getCampaign, validAnswers, visibleDistrict, postSubmission, editUrlOf, BASE, SLUG } from './helpers.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const browser = await launch();
test.after(() => browser.close());

async function axe(page) {
  await page.addScriptTag({ content: axeSource });
  const res = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] }));
  return res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

function report(vs) {
  return vs.map((v) => `${v.impact} ${v.id}: ${v.help}\n${v.nodes.slice(0, 5).map((n) => '   ' + n.target.join(' ') + ' — ' + n.failureSummary.replace(/\n/g, ' ')).join('\n')}`).join('\n');
}

const cases = [
  { name: 'fr desktop', url: embedUrl('lang=fr'), viewport: { width: 1280, height: 800 } },
  { name: 'en desktop', url: embedUrl('lang=en'), viewport: { width: 1280, height: 800 } },
  { name: 'fr phone', url: embedUrl('lang=fr'), viewport: { width: 375, height: 740 } },
  { name: 'en phone', url: embedUrl('lang=en'), viewport: { width: 375, height: 740 } },
  { name: 'fr with errors', url: embedUrl('lang=fr'), viewport: { width: 1280, height: 800 }, errors: true },
  { name: 'en without map', url: embedUrl('lang=en&map=0'), viewport: { width: 375, height: 740 }, map: false },
  { name: 'en view mode', url: embedUrl('lang=en&mode=view'), viewport: { width: 1280, height: 800 } },
  { name: 'fr edit page, unknown entry', url: `${BASE}/embed/${SLUG}/edit?lang=fr#id=00000000-0000-4000-8000-000000000000&token=x`, viewport: { width: 375, height: 740 }, edit: true },
  { name: 'fr edit page', entry: 'fr', viewport: { width: 375, height: 740 }, edit: true },
  { name: 'en edit page', entry: 'en', viewport: { width: 1280, height: 800 }, edit: true },
  { name: 'en edit page with errors', entry: 'en', viewport: { width: 1280, height: 800 }, edit: true, errors: true },
];

/** A real entry to open on the edit page (its link carries the token). */
let receipt = null;
async function entryUrl(lang) {
  if (!receipt) {
    const campaign = await getCampaign();
    const { point } = await visibleDistrict(campaign);
    const r = await postSubmission(point, validAnswers(campaign));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    receipt = r.body;
  }
  return editUrlOf(receipt, lang);
}

for (const c of cases) {
  test(`axe: no serious/critical violation (${c.name})`, async () => {
    const page = await newPage(browser, { viewport: c.viewport, bypassCSP: true });
    await page.goto(c.entry ? await entryUrl(c.entry) : c.url);
    if (c.edit) {
      // The entry's form (or, for an entry the server cannot show, the message saying so).
      await page.locator('.cm-edit form.cm-form, .cm-edit .cm-alert').first().waitFor({ timeout: 20000 });
      await page.waitForTimeout(c.entry ? 1500 : 0); // let the map settle
      if (c.errors && await page.locator('.cm-edit form.cm-form').count()) {
        for (const el of await page.locator('.cm-edit form.cm-form [data-field] input[type=text], .cm-edit form.cm-form [data-field] textarea').all()) await el.fill('');
        await page.locator('.cm-edit form.cm-form input[name="cm-lon"]').fill('');
        await page.locator('.cm-edit form.cm-form input[name="cm-lon"]').press('Enter');
        await page.locator('.cm-edit button.cm-submit').click();
      }
    } else await waitForWidget(page, { map: c.map !== false });
    if (c.errors && !c.edit) {
      await page.locator('civicmap-map button.cm-submit').click();
      await page.locator('civicmap-map .cm-summary').waitFor();
    }
    const vs = await axe(page);
    assert.equal(vs.length, 0, '\n' + report(vs));
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}
