// The table (text equivalent of the map) shows exactly the API's counts, in French and in English;
// the legend and the privacy note say what the public figures are (exact district counts withheld
// below k, the map's dots noisy estimates released each week or day).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, embedUrl, getCampaign, getDistricts, waitForWidget } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());

for (const lang of ['fr', 'en']) {
  test(`table equals the API counts (${lang})`, async () => {
    const page = await newPage(browser);
    await page.goto(embedUrl(`lang=${lang}`));
    await waitForWidget(page, { map: false });
    const fc = await getDistricts();
    const k = fc.min_count;
    const rows = await page.locator('civicmap-map table.cm-table tbody tr').evaluateAll((trs) => trs.map((tr) => ({
      code: tr.getAttribute('data-code'), name: tr.querySelector('th').textContent.trim(), text: tr.querySelector('td').textContent.trim(), data: tr.querySelector('td').getAttribute('data-count'),
      rate: tr.querySelector('td.cm-rate')?.textContent.trim() ?? null, rateData: tr.querySelector('td.cm-rate')?.getAttribute('data-rate') ?? null,
    })));
    // Contributions per 1,000 households beside the counts, when the campaign has households (the demo does).
    const withHouseholds = fc.features.some((f) => typeof f.properties.households === 'number');
    assert.equal(await page.locator('civicmap-map table.cm-table thead th.cm-rate').count(), withHouseholds ? 1 : 0);
    const rateFmt = new Intl.NumberFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    assert.equal(rows.length, fc.features.length, 'one row per district');
    const fmt = new Intl.NumberFormat(lang === 'fr' ? 'fr-FR' : 'en-GB');
    for (const f of fc.features) {
      const p = f.properties;
      const row = rows.find((r) => r.code === p.code);
      assert.ok(row, `row for ${p.code}`);
      assert.equal(row.name, p.name);
      if (p.withheld || p.count == null) {
        assert.equal(row.data, 'withheld');
        assert.equal(row.text, lang === 'fr' ? `moins de ${k}` : `fewer than ${k}`, 'withheld counts are never shown as 0');
        if (withHouseholds) {
          assert.equal(row.rateData, 'withheld', 'a withheld count has a withheld rate');
          assert.equal(row.rate, lang === 'fr' ? 'masqué' : 'hidden');
        }
      } else {
        assert.equal(row.data, String(p.count));
        assert.equal(row.text, fmt.format(p.count));
        if (withHouseholds && p.per_1000_households != null) {
          assert.equal(row.rateData, String(p.per_1000_households));
          assert.equal(row.rate, rateFmt.format(p.per_1000_households));
          assert.equal(p.per_1000_households, Math.round((p.count * 10000) / p.households) / 10, 'the rate is the count per 1,000 households');
        }
      }
    }
    if (fc.total) {
      const total = await page.locator('civicmap-map table.cm-table tfoot td[data-count]').getAttribute('data-count');
      assert.equal(total, fc.total.withheld || fc.total.count == null ? 'withheld' : String(fc.total.count));
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}

for (const lang of ['fr', 'en']) {
  test(`the legend and the privacy note say the map's dots are estimates with noise added for privacy (${lang})`, async () => {
    const campaign = await getCampaign();
    const every = campaign.privacy?.release_every ?? 'week';
    const page = await newPage(browser);
    await page.goto(embedUrl(`lang=${lang}`));
    await waitForWidget(page);
    // The demand dots come with the vector tiles: their legend says what they are, and how often they change.
    const demand = page.locator('civicmap-map .cm-legend-demand');
    assert.equal(await demand.count(), 1, 'the map shows demand dots (vector tiles) and their legend');
    const when = { fr: { week: 'chaque semaine', day: 'chaque jour' }, en: { week: 'every week', day: 'every day' } }[lang][every];
    assert.equal((await demand.innerText()).trim(), lang === 'fr'
      ? `Demande : estimations, avec un bruit ajouté pour la confidentialité, mises à jour ${when}`
      : `Demand: estimates, with noise added for privacy, updated ${when}`);
    const k = (await getDistricts()).min_count;
    const note = (await page.locator('civicmap-map .cm-privacy').innerText()).replace(/\s+/g, ' ');
    if (lang === 'fr') {
      assert.match(note, new RegExp(`position exacte n’est jamais publiée.*exacts, mais masqués en dessous de ${k}.*estimations auxquelles un bruit aléatoire est ajouté.*confidentialité différentielle.*publiés ${when}\\.$`));
    } else {
      assert.match(note, new RegExp(`exact position is never published.*exact, but hidden below ${k}.*estimates with random noise added, so that no household can be singled out \\(differential privacy\\); they are released ${when}\\.$`));
    }
    assert.doesNotMatch(note, /arrondi|rounded/);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}
