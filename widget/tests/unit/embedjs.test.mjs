// Runs the built dist/embed.js in a minimal fake DOM: it inserts the iframe after its own script tag,
// with !important inline styles, and only trusts height messages from its own iframe and origin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import vm from 'node:vm';

const src = readFileSync(new URL('../../dist/embed.js', import.meta.url), 'utf8');

function fakeDom({ scriptSrc, dataset, docLang = 'fr', current = true }) {
  const inserted = [];
  const listeners = {};
  const attrs = {};
  const parent = { insertBefore: (el, ref) => inserted.push({ el, ref }) };
  const script = { src: scriptSrc, dataset, parentNode: parent, nextSibling: 'NEXT', hasAttribute: (k) => k in attrs, setAttribute: (k, v) => { attrs[k] = v; } };
  const makeIframe = () => {
    const style = {};
    const a = {};
    return { style: { setProperty: (k, v, p) => { style[k] = [v, p]; } }, _style: style, setAttribute: (k, v) => { a[k] = v; }, _attrs: a, contentWindow: { id: 'frame' } };
  };
  const document = {
    currentScript: current ? script : null,
    documentElement: { lang: docLang },
    head: {},
    body: {},
    createElement: (t) => { assert.equal(t, 'iframe'); return makeIframe(); },
    querySelectorAll: () => [script],
    addEventListener: () => {},
  };
  const window = { addEventListener: (t, f) => { (listeners[t] ||= []).push(f); } };
  const ctx = { document, window, location: { href: 'https://ville.example.fr/page' }, console, URL, URLSearchParams };
  return { ctx, inserted, listeners, script, attrs };
}

test('inserts a titled, full-width, borderless iframe right after the script', () => {
  const d = fakeDom({ scriptSrc: 'https://carte.example.org/embed.js', dataset: { campaign: 'fibre-pour-tous', mode: 'contribute', view: '2.2,48.9,13' }, docLang: 'en-GB' });
  vm.runInNewContext(src, d.ctx);
  assert.equal(d.inserted.length, 1);
  const { el, ref } = d.inserted[0];
  assert.equal(ref, 'NEXT');
  assert.equal(el.src, 'https://carte.example.org/embed/fibre-pour-tous?lang=en&mode=contribute&view=2.2%2C48.9%2C13');
  assert.ok(el.title.length > 10);
  assert.match(el._attrs.allow, /geolocation/);
  for (const [k, v] of Object.entries({ width: '100%', border: '0', display: 'block' })) assert.deepEqual(el._style[k], [v, 'important'], k);
  assert.ok('data-civicmap-embedded' in d.attrs, 'the script is marked so that a second run does not embed twice');
});

test('height messages: only from its iframe and its origin', () => {
  const d = fakeDom({ scriptSrc: 'https://carte.example.org/embed.js', dataset: { campaign: 'c' } });
  vm.runInNewContext(src, d.ctx);
  const el = d.inserted[0].el;
  const onMessage = d.listeners.message[0];
  const initial = el._style.height;
  onMessage({ origin: 'https://evil.example', source: el.contentWindow, data: { type: 'civicmap:height', height: 5000 } });
  onMessage({ origin: 'https://carte.example.org', source: { other: true }, data: { type: 'civicmap:height', height: 5000 } });
  onMessage({ origin: 'https://carte.example.org', source: el.contentWindow, data: { type: 'civicmap:height', height: 'big' } });
  assert.deepEqual(el._style.height, initial);
  onMessage({ origin: 'https://carte.example.org', source: el.contentWindow, data: { type: 'civicmap:height', height: 1234.2, campaign: 'c', title: 'Fibre pour tous' } });
  assert.deepEqual(el._style.height, ['1235px', 'important']);
  assert.equal(el.title, 'Fibre pour tous');
});

test('an invalid snippet embeds nothing', () => {
  const d = fakeDom({ scriptSrc: 'https://carte.example.org/embed.js', dataset: {} });
  const errors = [];
  d.ctx.console = { error: (...a) => errors.push(a.join(' ')) };
  vm.runInNewContext(src, d.ctx);
  assert.equal(d.inserted.length, 0);
  assert.match(errors[0], /data-campaign/);
});

test('bundle budgets: embed.js is tiny, widget code under 40 KiB gzipped', () => {
  const gz = (f) => gzipSync(readFileSync(new URL(`../../dist/${f}`, import.meta.url)), { level: 9 }).length;
  assert.ok(gz('embed.js') < 3 * 1024, `embed.js ${gz('embed.js')} B gzipped`);
  assert.ok(gz('civicmap.js') + gz('embed.js') <= 40 * 1024, `civicmap.js ${gz('civicmap.js')} B gzipped`);
});

test('the map is a chunk of its own: civicmap.js has neither MapLibre nor the map code, and imports civicmap-map.js', () => {
  const read = (f) => readFileSync(new URL(`../../dist/${f}`, import.meta.url), 'utf8');
  const main = read('civicmap.js');
  const chunk = read('civicmap-map.js');
  assert.ok(!main.includes('MapLibre GL JS') && !main.includes('cm-hatch'), 'no MapLibre, no MapView in civicmap.js');
  assert.ok(main.includes('civicmap-map.js') && /\bimport\(/.test(main), 'civicmap.js imports the chunk');
  assert.ok(chunk.includes('MapLibre GL JS') && chunk.includes('cm-hatch'), 'the chunk has MapLibre and MapView');
  const exports = chunk.match(/export\s*\{([^}]*)\};?\s*$/);
  assert.ok(exports, 'an ES module');
  assert.match(exports[1], /\bMapView\b/);
  assert.match(exports[1], /\bmaplibregl\b/);
});
