// Measures the widget's load budget: from the moment the host page starts loading embed.js to
// the moment the districts are drawn in the iframe, in headless Chromium on loopback, 5 times
// with a fresh browser context (empty cache) each; prints every figure and the median.
//   CIVICMAP_URL=http://127.0.0.1:8080 node tests/perf/load-time.mjs [runs=5]
// Measures only; it asserts no timing (the figure goes to docs/PERFORMANCE.md).
import http from 'node:http';
import { launch, BASE, SLUG } from '../e2e/helpers.mjs';

const runs = Number(process.argv[2] || 5);
const host = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Ville</title></head>
<body><h1>Article</h1><p>Texte.</p>
<script src="${BASE}/embed.js" data-campaign="${SLUG}" async></script>
</body></html>`);
});
await new Promise((resolve) => host.listen(0, '127.0.0.1', resolve));
const hostUrl = `http://127.0.0.1:${host.address().port}/`;

const browser = await launch();
const figures = [];
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(hostUrl);
    const frame = await (await page.waitForSelector('iframe', { timeout: 20000 })).contentFrame();
    // Districts drawn: the map has loaded its style and sources, the district fill layer exists
    // and has rendered features.
    await frame.waitForFunction(() => {
      const m = document.querySelector('civicmap-map')?.map;
      return !!(m && m.loaded() && m.getLayer('cm-fill') && m.queryRenderedFeatures({ layers: ['cm-fill'] }).length > 0);
    }, null, { timeout: 30000, polling: 'raf' });
    const drawnAt = await frame.evaluate(() => performance.timeOrigin + performance.now());
    const embedStart = await page.evaluate(() => {
      const entry = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/embed.js'));
      return performance.timeOrigin + entry.startTime;
    });
    figures.push(drawnAt - embedStart);
    console.log(`run ${i + 1}: ${(drawnAt - embedStart).toFixed(0)} ms from embed.js request to districts drawn`);
    await context.close();
  }
} finally {
  await browser.close();
  host.close();
}
figures.sort((a, b) => a - b);
console.log(`median of ${runs}: ${figures[Math.floor(runs / 2)].toFixed(0)} ms`);
