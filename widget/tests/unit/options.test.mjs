import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEmbedOptions, iframeSrc, parseView, parseHeight, parseMode, parseEmbedPath, parseEditHash, isHeightMessage, campaignState, isValidSlug } from '../../.build/lib.mjs';

test('embed.js options: host from the script src, data-* attributes', () => {
  const r = parseEmbedOptions('https://carte.example.org/embed.js?v=3', { campaign: 'fibre-pour-tous', lang: 'EN', mode: 'view', view: '2.2,48.9,13', height: '480' }, 'fr-FR');
  assert.deepEqual(r, { ok: true, options: { host: 'https://carte.example.org', campaign: 'fibre-pour-tous', lang: 'en', mode: 'view', view: { lon: 2.2, lat: 48.9, zoom: 13 }, height: '480px' } });
  assert.equal(iframeSrc(r.options), 'https://carte.example.org/embed/fibre-pour-tous?lang=en&mode=view&view=2.2%2C48.9%2C13&height=480px');
});

test('embed.js options: language falls back to the host page, bad values are dropped', () => {
  const r = parseEmbedOptions('//carte.example.org:8443/embed.js', { campaign: 'c1', lang: 'de', mode: 'edit', view: '500,1,1', height: '100vh' }, 'en-US', 'https://ville.example.fr/page');
  assert.deepEqual(r.options, { host: 'https://carte.example.org:8443', campaign: 'c1', lang: 'en', mode: null, view: null, height: null });
  assert.equal(iframeSrc(r.options), 'https://carte.example.org:8443/embed/c1?lang=en');
  const noLang = parseEmbedOptions('http://127.0.0.1:8080/embed.js', { campaign: 'c1' }, 'de');
  assert.equal(iframeSrc(noLang.options), 'http://127.0.0.1:8080/embed/c1');
});

test('embed.js options: errors', () => {
  assert.equal(parseEmbedOptions('https://x.org/embed.js', {}, null).ok, false);
  assert.equal(parseEmbedOptions('https://x.org/embed.js', { campaign: '../etc' }, null).ok, false);
  assert.equal(parseEmbedOptions('javascript:alert(1)', { campaign: 'a' }, null).ok, false);
  assert.equal(parseEmbedOptions('not a url', { campaign: 'a' }, null).ok, false);
  assert.equal(isValidSlug('fibre-pour-tous'), true);
  assert.equal(isValidSlug('a b'), false);
});

test('view, height, mode', () => {
  assert.deepEqual(parseView(' 2.2069 , 48.8924 , 13.5 '), { lon: 2.2069, lat: 48.8924, zoom: 13.5 });
  for (const bad of ['', '2,48', '2,48,13,1', 'a,b,c', '181,0,1', '0,86,1', '0,0,25', '1e1,2,3']) assert.equal(parseView(bad), null, bad);
  assert.equal(parseHeight('480'), '480px');
  assert.equal(parseHeight('480px'), '480px');
  assert.equal(parseHeight('30em'), '30em');
  assert.equal(parseHeight('28.5rem'), '28.5rem');
  for (const bad of ['', '100vh', '50%', '10', '99999', 'calc(1px)', '480px; color:red']) assert.equal(parseHeight(bad), null, bad);
  assert.equal(parseMode('VIEW'), 'view');
  assert.equal(parseMode('contribute'), 'contribute');
  assert.equal(parseMode('admin'), null);
});

test('embed page routes and edit links', () => {
  assert.deepEqual(parseEmbedPath('/embed/fibre-pour-tous'), { slug: 'fibre-pour-tous', edit: false });
  assert.deepEqual(parseEmbedPath('/embed/fibre-pour-tous/'), { slug: 'fibre-pour-tous', edit: false });
  assert.deepEqual(parseEmbedPath('/civicmap/embed/fibre-pour-tous/edit'), { slug: 'fibre-pour-tous', edit: true });
  assert.equal(parseEmbedPath('/embed/'), null);
  assert.equal(parseEmbedPath('/embed/a%2Fb'), null);
  assert.deepEqual(parseEditHash('#id=abc&token=t0k'), { id: 'abc', token: 't0k' });
  assert.deepEqual(parseEditHash(''), { id: null, token: null });
});

test('height messages', () => {
  assert.equal(isHeightMessage({ type: 'civicmap:height', height: 812, campaign: 'c' }), true);
  for (const bad of [null, 'x', { type: 'other', height: 1 }, { type: 'civicmap:height', height: '812' }, { type: 'civicmap:height', height: -1 }, { type: 'civicmap:height', height: Infinity }]) assert.equal(isHeightMessage(bad), false);
});

test('campaign state from status and dates', () => {
  const now = Date.parse('2026-01-15T00:00:00Z');
  assert.equal(campaignState({ status: 'open' }, now), 'open');
  assert.equal(campaignState({ status: 'open', closes_at: '2026-01-01T00:00:00Z' }, now), 'closed');
  assert.equal(campaignState({ status: 'open', opens_at: '2026-02-01T00:00:00Z' }, now), 'upcoming');
  assert.equal(campaignState({ status: 'draft' }, now), 'upcoming');
  assert.equal(campaignState({ status: 'closed' }, now), 'closed');
});
