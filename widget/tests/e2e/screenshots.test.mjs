// Screenshots of the widget at desktop (1280x800) and phone (375x740) widths in French and English,
// and of the demo page, written to $SCREENSHOT_DIR (default ../docs/screenshots relative to widget/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { launch, newPage, embedUrl, waitForWidget, screenshotDir, BASE } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());
const dir = screenshotDir();
const sizes = { desktop: { width: 1280, height: 800 }, phone: { width: 375, height: 740 } };

for (const lang of ['fr', 'en']) {
  for (const [name, viewport] of Object.entries(sizes)) {
    test(`screenshot embed ${lang} ${name}`, async () => {
      const page = await newPage(browser, { viewport, deviceScaleFactor: 1 });
      await page.goto(embedUrl(`lang=${lang}`));
      await waitForWidget(page);
      const file = join(dir, `embed-${lang}-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      assert.ok(existsSync(file) && statSync(file).size > 10000);
      // No horizontal scrolling at phone width.
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no horizontal overflow');
      assert.deepEqual(page.errors, []);
      await page.context().close();
    });
  }
}

for (const [name, viewport] of Object.entries(sizes)) {
  test(`screenshot demo page ${name}`, async () => {
    const page = await newPage(browser, { viewport, deviceScaleFactor: 1 });
    await page.goto(`${BASE}/`);
    await page.frameLocator('iframe[data-civicmap-campaign]').locator('civicmap-map .cm-title').waitFor({ timeout: 20000 });
    await page.locator('civicmap-map .cm-title').waitFor({ timeout: 20000 });
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(dir, `demo-${name}.png`), fullPage: true });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no horizontal overflow');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}
