// The campaign's story shows as a timeline under the map, in French and in English: one list item per
// published entry of the API, in order, with its heading, its <time datetime> and its link; the
// keyboard reaches the links; screenshots of the timeline go to docs/screenshots (story-{lang}.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { launch, newPage, embedUrl, waitForWidget, api, deepFocus, screenshotDir, SLUG } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());

const labels = {
  fr: { heading: 'Les étapes de la campagne', milestone: 'Étape', update: 'Actualité', feed: 'Suivre ces étapes (flux Atom)' },
  en: { heading: 'The campaign’s story', milestone: 'Milestone', update: 'Update', feed: 'Follow this story (Atom feed)' },
};

for (const lang of ['fr', 'en']) {
  test(`the timeline shows the API's story (${lang})`, async () => {
    const story = await api(`/api/v1/campaigns/${SLUG}/story`);
    assert.equal(story.status, 200);
    const entries = [...story.body.entries].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
    assert.ok(entries.length >= 2, 'the demo campaign tells a story');

    const page = await newPage(browser, { viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(embedUrl(`lang=${lang}`));
    await waitForWidget(page);
    const section = page.locator('civicmap-map section.cm-story');
    await section.waitFor();
    assert.equal((await section.locator('h3').textContent()).trim(), labels[lang].heading);
    const items = await section.locator('ol.cm-timeline > li').evaluateAll((lis) => lis.map((li) => ({
      id: li.getAttribute('data-story-id'),
      title: li.querySelector('h4').textContent.trim(),
      datetime: li.querySelector('time').getAttribute('datetime'),
      time: li.querySelector('time').textContent.trim(),
      kind: li.querySelector('.cm-story-kind').textContent.trim(),
      text: [...li.querySelectorAll('.cm-story-text')].map((p) => p.textContent).join('\n\n'),
      link: li.querySelector('a.cm-story-link')?.getAttribute('href') ?? null,
    })));
    assert.deepEqual(items.map((i) => i.id), entries.map((e) => e.id), 'one item per entry, in the order they happened');
    const fmt = new Intl.DateTimeFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'long', timeZone: 'UTC' });
    for (const [i, e] of entries.entries()) {
      assert.equal(items[i].title, e.title[lang]);
      assert.equal(items[i].text, e.text[lang]);
      assert.equal(items[i].datetime, e.date);
      assert.equal(items[i].time, fmt.format(new Date(`${e.date}T00:00:00Z`)));
      assert.equal(items[i].kind.toLowerCase(), labels[lang][e.kind].toLowerCase());
      assert.equal(items[i].link, e.link ?? null);
    }
    const feed = section.locator('.cm-story-feed a');
    assert.equal((await feed.textContent()).trim(), labels[lang].feed);
    assert.match(await feed.getAttribute('href'), new RegExp(`/api/v1/campaigns/${SLUG}/story\\.atom\\?lang=${lang}$`));

    // The keyboard reaches the feed link (the last link of the timeline) by tabbing from the table's end.
    await section.locator('h3').scrollIntoViewIfNeeded();
    let reached = false;
    for (let i = 0; i < 200 && !reached; i++) {
      await page.keyboard.press('Tab');
      const f = await deepFocus(page);
      reached = !!f && f.tag === 'a' && f.text === labels[lang].feed;
    }
    assert.ok(reached, 'Tab reaches the timeline\'s links');

    const file = join(screenshotDir(), `story-${lang}.png`);
    await section.screenshot({ path: file });
    assert.ok(existsSync(file) && statSync(file).size > 5000);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}

test('without a story, no empty timeline is shown', async () => {
  const page = await newPage(browser);
  // The same page with the story route answering an empty story.
  await page.route('**/story', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ campaign: SLUG, entries: [] }) }));
  await page.goto(embedUrl('lang=en'));
  await waitForWidget(page, { map: false });
  assert.equal(await page.locator('civicmap-map section.cm-story').count(), 0);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
