// The self-hosted basemap: on the demo (`serve --demo` builds a small basemap of synthetic streets),
// the widget draws the server's basemap with its street and district names, under the licence line,
// and the page asks nothing of any other host: every request the browser makes is recorded and
// checked, under the iframe page's real Content-Security-Policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
// MapLibre's own style validator (a dependency of maplibre-gl).
import { validateStyleMin } from '@maplibre/maplibre-gl-style-spec';
import { launch, newPage, embedUrl, waitForWidget, screenshotDir, ORIGIN, BASE } from './helpers.mjs';

const browser = await launch();
test.after(() => browser.close());

test('the demo map draws the self-hosted basemap, labels included, and no request leaves the server', async () => {
  const style = await fetch(`${BASE}/basemap/style.json`);
  if (style.status === 404) {
    assert.fail('the server has no basemap: the browser tests run against `civicmap serve --demo`, which builds one');
  }
  assert.deepEqual(validateStyleMin(await style.json()).map((e) => e.message), [], 'the style is valid for MapLibre');
  const page = await newPage(browser);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const cspErrors = [];
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  await page.goto(embedUrl('lang=fr'));
  await waitForWidget(page);

  // Close enough to read street names (the demo's synthetic streets have them from zoom 14).
  await page.evaluate(() => {
    const m = document.querySelector('civicmap-map').map;
    m.jumpTo({ center: m.getCenter(), zoom: 15.5 });
  });
  await page.waitForFunction(() => {
    const m = document.querySelector('civicmap-map').map;
    return m.loaded() && m.areTilesLoaded() && m.queryRenderedFeatures({ layers: ['road-names'] }).length > 0;
  }, null, { timeout: 30000 });

  const drawn = await page.evaluate(() => {
    const m = document.querySelector('civicmap-map').map;
    const names = m.queryRenderedFeatures({ layers: ['road-names'] }).map((f) => f.properties.name);
    const layers = m.getStyle().layers.map((l) => l.id);
    return {
      source: m.getSource('basemap')?.type,
      names,
      roads: m.queryRenderedFeatures({ layers: ['roads-minor', 'roads-major'] }).length,
      buildings: m.queryRenderedFeatures({ layers: ['buildings'] }).length,
      // The names are drawn above the choropleth, which is drawn above the streets.
      order: ['roads-minor', 'cm-fill', 'road-names'].map((id) => layers.indexOf(id)),
      attribution: document.querySelector('civicmap-map').shadowRoot.querySelector('.maplibregl-ctrl-attrib')?.textContent ?? '',
    };
  });
  assert.equal(drawn.source, 'vector', 'the basemap source of the server style is loaded');
  assert.ok(drawn.roads > 0, 'streets are drawn');
  assert.ok(drawn.buildings > 0, 'buildings are drawn');
  assert.ok(drawn.names.some((n) => /^(Rue|Avenue) Synthétique n°\d+$/.test(n)), `street names are drawn: ${drawn.names.slice(0, 5)}`);
  assert.ok(drawn.order[0] < drawn.order[1] && drawn.order[1] < drawn.order[2], `layer order ${drawn.order}`);
  assert.match(drawn.attribution, /© OpenStreetMap contributors, ODbL/);

  const paths = requests.map((u) => new URL(u)).filter((u) => u.protocol.startsWith('http')).map((u) => u.pathname);
  assert.ok(paths.includes('/basemap/style.json'), 'the style came from the server');
  assert.ok(paths.some((p) => /^\/basemap\/\d+\/\d+\/\d+\.mvt$/.test(p)), 'tiles came from the server');
  assert.ok(paths.some((p) => p.startsWith('/basemap/fonts/Noto%20Sans%20Regular/')), 'glyphs came from the server');
  const elsewhere = requests.filter((u) => !u.startsWith('data:') && !u.startsWith('blob:') && new URL(u).origin !== ORIGIN);
  assert.deepEqual(elsewhere, [], 'no request to another host');
  assert.deepEqual(cspErrors, [], 'nothing blocked by the Content-Security-Policy');
  assert.deepEqual(page.errors, []);
  await page.locator('civicmap-map').screenshot({ path: join(screenshotDir(), 'basemap-demo.png') });
  await page.context().close();
});
