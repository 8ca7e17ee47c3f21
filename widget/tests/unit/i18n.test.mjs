import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeLang, chooseLang, tr, msg, MESSAGES, formatContributions, formatCount, formatDate } from '../../.build/lib.mjs';

test('normalizeLang', () => {
  assert.equal(normalizeLang('fr'), 'fr');
  assert.equal(normalizeLang('fr-FR'), 'fr');
  assert.equal(normalizeLang('FR_ca'), 'fr');
  assert.equal(normalizeLang('en-GB'), 'en');
  assert.equal(normalizeLang(' EN '), 'en');
  for (const v of ['de', 'de-DE', '', null, undefined, 'french', 'f']) assert.equal(normalizeLang(v), null, String(v));
});

test('chooseLang: attribute, else host page <html lang>, else campaign default, else French', () => {
  assert.equal(chooseLang('en', 'fr', 'fr'), 'en');
  assert.equal(chooseLang(null, 'en-US', 'fr'), 'en');
  assert.equal(chooseLang('de', 'en', 'fr'), 'en'); // unsupported attribute value is ignored
  assert.equal(chooseLang(null, 'de', 'en'), 'en');
  assert.equal(chooseLang('', '', 'en'), 'en');
  assert.equal(chooseLang(null, null, null), 'fr');
});

test('tr picks the language, falls back to the other one', () => {
  assert.equal(tr({ fr: 'Bonjour', en: 'Hello' }, 'en'), 'Hello');
  assert.equal(tr({ fr: 'Bonjour' }, 'en'), 'Bonjour');
  assert.equal(tr('plain', 'fr'), 'plain');
  assert.equal(tr(null, 'fr'), '');
});

test('every message exists in both languages with the same placeholders', () => {
  for (const [k, v] of Object.entries(MESSAGES)) {
    assert.ok(v.fr && v.en, k);
    const ph = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
    assert.equal(ph(v.fr), ph(v.en), `placeholders of ${k}`);
  }
  assert.equal(msg('fr', 'fewerThan', { k: 5 }), 'moins de 5');
  assert.equal(msg('en', 'fewerThan', { k: 5 }), 'fewer than 5');
});

test('counts: withheld is "fewer than k", never 0; French singular for 0 and 1', () => {
  assert.equal(formatCount(null, true, 5, 'fr'), 'moins de 5');
  assert.equal(formatCount(0, true, 5, 'en'), 'fewer than 5');
  assert.equal(formatCount(1234, false, 5, 'en'), '1,234');
  assert.equal(formatCount(1234, false, 5, 'fr').replace(/\s/g, ' '), '1 234');
  assert.equal(formatContributions(1, false, 5, 'fr'), '1 contribution');
  assert.equal(formatContributions(0, false, 0, 'fr'), '0 contribution');
  assert.equal(formatContributions(0, false, 0, 'en'), '0 contributions');
  assert.equal(formatContributions(12, false, 5, 'en'), '12 contributions');
  assert.equal(formatContributions(null, true, 5, 'fr'), 'moins de 5 contributions');
});

test('dates', () => {
  assert.equal(formatDate('2026-03-31T10:00:00Z', 'fr'), '31 mars 2026');
  assert.equal(formatDate('2026-03-31T10:00:00Z', 'en'), '31 March 2026');
  assert.equal(formatDate('not a date', 'en'), 'not a date');
});

test('the privacy note and the demand legend say what is published: exact totals withheld below k, finer figures as noisy estimates', () => {
  for (const [every, fr, en] of [['everyWeek', 'chaque semaine', 'every week'], ['everyDay', 'chaque jour', 'every day']]) {
    const f = msg('fr', 'privacy', { k: 5, every: msg('fr', every) });
    const e = msg('en', 'privacy', { k: 5, every: msg('en', every) });
    assert.match(f, /position exacte n’est jamais publiée/);
    assert.match(f, /masqués en dessous de 5/);
    assert.match(f, /estimations auxquelles un bruit aléatoire est ajouté/);
    assert.match(f, /confidentialité différentielle/);
    assert.ok(f.endsWith(`publiés ${fr}.`), f);
    assert.match(e, /exact position is never published/);
    assert.match(e, /hidden below 5/);
    assert.match(e, /estimates with random noise added, so that no household can be singled out \(differential privacy\)/);
    assert.ok(e.endsWith(`released ${en}.`), e);
    // Nothing about rounding: the map is of estimates, not of rounded positions.
    assert.doesNotMatch(f + e, /arrondi|rounded|\{/);
    assert.equal(msg('en', 'legendDemand', { every: msg('en', every) }), `Demand: estimates, with noise added for privacy, updated ${en}`);
    assert.match(msg('fr', 'legendDemand', { every: msg('fr', every) }), new RegExp(`^Demande : estimations.*bruit.*confidentialité.*${fr}$`));
  }
});
