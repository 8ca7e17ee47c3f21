// The console's words (src/admin/i18n.ts): every string in French and English with the same
// placeholders, and what its privacy settings say. Bundled here with esbuild (the console's
// i18n is not part of .build/lib.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as esbuild from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const built = await esbuild.build({ entryPoints: [join(root, 'src/admin/i18n.ts')], bundle: true, format: 'esm', write: false, platform: 'neutral', logLevel: 'error' });
const i18n = await import(`data:text/javascript;base64,${Buffer.from(built.outputFiles[0].text).toString('base64')}`);

const placeholders = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');

test('every console string has the same placeholders in French and English', () => {
  assert.ok(i18n.KEYS.length > 100);
  for (const key of i18n.KEYS) {
    i18n.setLang('fr');
    const fr = i18n.t(key);
    i18n.setLang('en');
    const en = i18n.t(key);
    assert.ok(fr && en, key);
    assert.equal(placeholders(fr), placeholders(en), key);
  }
});

test('the privacy settings explain ε as a DPO and a citizen can read it, and no longer speak of squares', () => {
  for (const lang of ['fr', 'en']) {
    i18n.setLang(lang);
    const hint = i18n.t('budget_hint');
    assert.match(hint, /e\^ε/);
    assert.match(hint, lang === 'fr' ? /Quoi que sache déjà quelqu’un[\s\S]*au plus e\^ε fois plus probable/ : /Whatever else someone knows[\s\S]*at most e\^ε times more likely/);
    assert.match(hint, lang === 'fr' ? /plus c’est confidentiel et plus les chiffres sont bruités/ : /Lower is more private, and noisier/);
    const explained = i18n.t('privacy_explained', { k: 5, m: 50, area: '0.74 km²', every: 'x', e: 2, x: 7.4 });
    assert.doesNotMatch(explained, /carré|square|\{/);
    assert.match(explained, /hexagon/);
    assert.match(i18n.t('release_hint'), lang === 'fr' ? /plus frais, mais plus bruité/ : /fresher, but noisier/);
  }
});
