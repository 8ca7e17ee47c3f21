import { test } from 'node:test';
import assert from 'node:assert/strict';
import { timeline, formatDay, safeLink, localToday } from '../../.build/lib.mjs';

const story = {
  campaign: 'c',
  entries: [
    { id: 'b', kind: 'update', date: '2026-11-15', title: { fr: 'Bilan', en: 'Review' }, text: { fr: 'Un.\n\nDeux\nlignes.', en: 'One.' }, link: 'https://ville.example/a?b=1' },
    { id: 'a', kind: 'milestone', date: '2026-10-01', title: { fr: 'Lancement', en: 'Launch' }, text: { fr: 'Texte', en: 'Text' }, link: null },
    { id: 'c', kind: 'milestone', date: '2026-11-15', title: { fr: 'Vote', en: 'Vote' }, text: { fr: 'x', en: 'x' }, link: 'javascript:alert(1)' },
    { id: 'd', kind: 'milestone', date: '2027-03-01', title: { fr: 'Rapport' }, text: { fr: 'y' } },
    { id: 'bad', kind: 'milestone', date: '15/11/2026', title: { fr: 'x', en: 'x' }, text: { fr: '', en: '' } },
    { id: 'untitled', kind: 'milestone', date: '2026-01-01', title: { fr: ' ', en: '' }, text: { fr: '', en: '' } },
  ],
};

test('timeline: in the order things happened, ties in the order posted, malformed entries left out', () => {
  const items = timeline(story, 'fr', '2026-12-01');
  assert.deepEqual(items.map((i) => i.id), ['a', 'b', 'c', 'd']);
  assert.deepEqual(items.map((i) => i.kind), ['milestone', 'update', 'milestone', 'milestone']);
});

test('timeline: texts in the language (falling back to the other), paragraphs on blank lines', () => {
  const fr = timeline(story, 'fr', '2026-12-01');
  assert.equal(fr[1].title, 'Bilan');
  assert.deepEqual(fr[1].paragraphs, ['Un.', 'Deux\nlignes.']);
  const en = timeline(story, 'en', '2026-12-01');
  assert.equal(en[1].title, 'Review');
  assert.deepEqual(en[1].paragraphs, ['One.']);
  assert.equal(en[3].title, 'Rapport', 'falls back to French');
  assert.equal(fr[0].dayLabel, '1 octobre 2026');
  assert.equal(en[0].dayLabel, '1 October 2026');
});

test('timeline: only http(s) links; future days are upcoming', () => {
  const items = timeline(story, 'en', '2026-12-01');
  assert.equal(items[1].link, 'https://ville.example/a?b=1');
  assert.equal(items[2].link, null, 'a javascript: link is dropped');
  assert.deepEqual(items.map((i) => i.upcoming), [false, false, false, true]);
  assert.equal(safeLink('http://x.example/'), 'http://x.example/');
  for (const bad of ['data:text/html,x', 'ftp://x.example/', 'not a url', '', null, 42]) assert.equal(safeLink(bad), null, String(bad));
});

test('timeline: nothing to show for no story, or a malformed one', () => {
  for (const s of [null, undefined, {}, { entries: 'x' }, { entries: [] }]) assert.deepEqual(timeline(s, 'fr'), []);
});

test('formatDay: the day as written, whatever the time zone', () => {
  assert.equal(formatDay('2026-01-01', 'en'), '1 January 2026');
  assert.equal(formatDay('2026-12-31', 'fr'), '31 décembre 2026');
  assert.equal(formatDay('nonsense', 'fr'), 'nonsense');
  assert.match(localToday(new Date(2026, 0, 5)), /^2026-01-05$/);
});
