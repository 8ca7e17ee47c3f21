// The embed snippet in a host page with hostile global CSS and a strict CSP that allows only the frame
// (served from a tiny local HTTP server on another port, so the iframe is cross-origin as in real life).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { launch, newPage, BASE, ORIGIN, SLUG, screenshotDir } from './helpers.mjs';

const HOSTILE_CSS = `
* { all: revert; }
html, body { font-size: 42px !important; line-height: 3 !important; font-family: "Comic Sans MS", cursive, serif !important; }
div { display: inline; }
div, p, section { padding: 3px; }
iframe { width: 120px !important; height: 60px !important; border: 14px dashed red !important; display: none !important;
         margin: 40px !important; transform: rotate(3deg) !important; opacity: 0.2 !important; max-width: 10% !important; }
script { display: block; }
* { box-sizing: content-box !important; }
`;

function hostPage(body) {
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Hôte hostile</title><link rel="stylesheet" href="/hostile.css"></head>
<body><div class="article"><h1>Page hôte hostile</h1><p>Un article d’un CMS avec un thème agressif.</p>
<div class="slot">${body}</div><p>Suite de l’article.</p></div></body></html>`;
}

let server;
let hostOrigin;
test.before(async () => {
  server = http.createServer((req, res) => {
    const csp = `default-src 'none'; script-src ${ORIGIN}; frame-src ${ORIGIN}; style-src 'self'; img-src 'self'`;
    if (req.url === '/hostile.css') { res.writeHead(200, { 'Content-Type': 'text/css' }); res.end(HOSTILE_CSS); return; }
    if (req.url === '/snippet') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': csp });
      res.end(hostPage(`<script src="${BASE}/embed.js" data-campaign="${SLUG}" data-lang="en" async></script>`));
      return;
    }
    if (req.url === '/element') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(hostPage(`<civicmap-map campaign="${SLUG}" lang="en"></civicmap-map><script src="${BASE}/widget/civicmap.js"></script>`));
      return;
    }
    res.writeHead(404); res.end();
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  hostOrigin = `http://127.0.0.1:${server.address().port}`;
});
test.after(() => server?.close());

const browser = await launch();
test.after(() => browser.close());

test('embed.js snippet survives hostile CSS and a strict CSP', async () => {
  const page = await newPage(browser);
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(`${hostOrigin}/snippet`);
  const iframe = page.locator('iframe[data-civicmap-campaign]');
  await iframe.waitFor({ state: 'attached', timeout: 15000 });
  // Right after its script tag.
  assert.equal(await page.evaluate(() => document.querySelector('script[data-campaign]').nextElementSibling?.tagName), 'IFRAME');
  assert.ok((await iframe.getAttribute('title')).length > 5, 'the iframe has a title');
  assert.ok((await iframe.getAttribute('src')).startsWith(`${ORIGIN}/embed/${SLUG}?lang=en`));
  const frame = page.frameLocator('iframe[data-civicmap-campaign]');
  await frame.locator('civicmap-map .cm-title').waitFor({ timeout: 20000 });
  await frame.locator('civicmap-map table.cm-table tbody tr').first().waitFor();
  // The height follows the page inside (postMessage), whatever the host CSS says.
  const handle = await iframe.elementHandle();
  const inner = await handle.contentFrame();
  await page.waitForFunction(async () => true);
  let ok = false, last;
  for (let i = 0; i < 40 && !ok; i++) {
    const docH = await inner.evaluate(() => Math.ceil(document.documentElement.getBoundingClientRect().height));
    const box = await iframe.boundingBox();
    last = { docH, box };
    ok = box && box.height > 300 && Math.abs(box.height - docH) <= 2;
    if (!ok) await page.waitForTimeout(250);
  }
  assert.ok(ok, `iframe height follows its content: ${JSON.stringify(last)}`);
  const st = await iframe.evaluate((el) => { const s = getComputedStyle(el); return { display: s.display, border: s.borderTopWidth, opacity: s.opacity, transform: s.transform }; });
  assert.deepEqual(st, { display: 'block', border: '0px', opacity: '1', transform: 'none' });
  const bodyW = await page.evaluate(() => document.body.getBoundingClientRect().width - parseFloat(getComputedStyle(document.body).paddingLeft) - parseFloat(getComputedStyle(document.body).paddingRight));
  assert.ok(Math.abs(last.box.width - bodyW) <= 12, `iframe is full width: ${last.box.width} vs ${bodyW}`);
  // The host's huge fonts do not leak into the widget.
  assert.equal(await frame.locator('civicmap-map .cm').first().evaluate((el) => getComputedStyle(el).fontSize), '16px');
  assert.deepEqual(await page.evaluate(() => window.__csp), [], 'no CSP violation on the host page');
  assert.equal(await inner.evaluate(() => document.documentElement.lang), 'en');
  await page.screenshot({ path: join(screenshotDir(), 'hostile-host-snippet.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('<civicmap-map> on a foreign origin with hostile CSS (needs CORS on /api and /widget)', async () => {
  const page = await newPage(browser);
  await page.goto(`${hostOrigin}/element`);
  await page.locator('civicmap-map .cm-title').waitFor({ timeout: 20000 });
  assert.equal(await page.locator('civicmap-map .cm').evaluate((el) => getComputedStyle(el).fontSize), '16px');
  assert.equal(await page.locator('civicmap-map').evaluate((el) => getComputedStyle(el).display), 'block');
  const rows = await page.locator('civicmap-map table.cm-table tbody tr').count();
  assert.ok(rows > 0, 'the table is rendered');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
