// Measures the widget's load budget in headless Chromium: a host page (on another loopback port)
// with the one-line embed.js snippet, a fresh browser context (empty cache) for every run, and two
// figures per run, both counted from the moment the host page starts loading embed.js:
//   * usable form:     the contribution form is in the iframe with its district picker filled and
//                      its submit button enabled (a citizen can contribute by district);
//   * districts drawn: the map has loaded, its district fill layer exists and has rendered features.
// Each network profile runs `runs` times; prints every figure and the medians.
//   CIVICMAP_URL=http://127.0.0.1:8080 node tests/perf/load-time.mjs [runs=5] [--profile=none|fast3g|both]
// `fast3g` is Chrome DevTools' "Fast 3G" preset, set through CDP Network.emulateNetworkConditions:
// 562.5 ms latency (150 ms × 3.75), 1.6 Mbit/s × 0.9 down, 750 kbit/s × 0.9 up.
// Measures only; it asserts no timing (the figures go to docs/PERFORMANCE.md).
import http from 'node:http';
import { launch, BASE, SLUG } from '../e2e/helpers.mjs';

const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) || 5);
const profileArg = (process.argv.find((a) => a.startsWith('--profile=')) || '--profile=both').slice('--profile='.length);
const PROFILES = {
  none: null,
  fast3g: { offline: false, latency: 150 * 3.75, downloadThroughput: (1.6 * 1000 * 1000 / 8) * 0.9, uploadThroughput: (750 * 1000 / 8) * 0.9 },
};
const profiles = profileArg === 'both' ? ['none', 'fast3g'] : [profileArg];
for (const p of profiles) if (!(p in PROFILES)) throw new Error(`unknown profile ${p} (none, fast3g, both)`);

const host = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Ville</title></head>
<body><h1>Article</h1><p>Texte.</p>
<script src="${BASE}/embed.js" data-campaign="${SLUG}" async></script>
</body></html>`);
});
await new Promise((resolve) => host.listen(0, '127.0.0.1', resolve));
const hostUrl = `http://127.0.0.1:${host.address().port}/`;

// Both checks run inside the iframe page from its first script on, on every animation frame (an
// init script), and keep the time each first holds: a check driven from here would start late
// and answer late whenever the page's main thread is busy (MapLibre arriving).
function watch() {
  if (!location.pathname.startsWith('/embed/')) return;
  const w = window;
  const now = () => performance.timeOrigin + performance.now();
  const tick = () => {
    const el = document.querySelector('civicmap-map');
    if (!w.__cmFormAt) {
      // Usable form: the form, its district list filled and an enabled submit button.
      const form = el?.shadowRoot?.querySelector('form.cm-form');
      const select = form?.querySelector('select[name="cm-district"]');
      const submit = form?.querySelector('button.cm-submit');
      if (select && select.options.length > 1 && !select.disabled && submit && !submit.disabled) w.__cmFormAt = now();
    }
    if (!w.__cmDrawnAt) {
      // Districts drawn: the map is loaded, its district fill layer exists and has rendered features.
      const m = el?.map;
      if (m && m.loaded() && m.getLayer('cm-fill') && m.queryRenderedFeatures({ layers: ['cm-fill'] }).length > 0) w.__cmDrawnAt = now();
    }
    if (!w.__cmFormAt || !w.__cmDrawnAt) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const browser = await launch();
const results = {};
try {
  for (const profile of profiles) {
    const form = [];
    const drawn = [];
    for (let i = 0; i < runs; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript(watch);
      const page = await context.newPage();
      if (PROFILES[profile]) {
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.emulateNetworkConditions', PROFILES[profile]);
      }
      await page.goto(hostUrl);
      const frame = await (await page.waitForSelector('iframe', { timeout: 60000 })).contentFrame();
      const formAt = await (await frame.waitForFunction(() => window.__cmFormAt, null, { timeout: 120000 })).jsonValue();
      const drawnAt = await (await frame.waitForFunction(() => window.__cmDrawnAt, null, { timeout: 120000 })).jsonValue();
      const embedStart = await page.evaluate(() => {
        const entry = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/embed.js'));
        return performance.timeOrigin + entry.startTime;
      });
      form.push(formAt - embedStart);
      drawn.push(drawnAt - embedStart);
      console.log(`${profile} run ${i + 1}: usable form ${(formAt - embedStart).toFixed(0)} ms, districts drawn ${(drawnAt - embedStart).toFixed(0)} ms (from the embed.js request)`);
      await context.close();
    }
    results[profile] = { form: median(form), drawn: median(drawn) };
    console.log(`${profile}: median of ${runs}: usable form ${median(form).toFixed(0)} ms, districts drawn ${median(drawn).toFixed(0)} ms`);
  }
} finally {
  await browser.close();
  host.close();
}
console.log(JSON.stringify({ runs, results }));
