// The campaign's story (GET /api/v1/campaigns/{slug}/story) as the timeline shows it: pure logic,
// unit-tested; the DOM is built by app/story.ts.
import type { Lang, Story } from './types';
import { tr } from './i18n';

export interface TimelineItem {
  id: string;
  kind: 'milestone' | 'update';
  /** `YYYY-MM-DD`, for <time datetime>. */
  day: string;
  /** The day written out in the language ("15 novembre 2026"). */
  dayLabel: string;
  title: string;
  /** The text split into paragraphs (on blank lines); single line breaks are kept inside. */
  paragraphs: string[];
  /** An http(s) link, or null (anything else is dropped). */
  link: string | null;
  /** Dated after `today`: a planned step. */
  upcoming: boolean;
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** "15 novembre 2026" / "15 November 2026" for a `YYYY-MM-DD` day, in UTC so that no time zone moves it. */
export function formatDay(day: string, lang: Lang): string {
  const m = DAY.exec(day);
  if (!m) return day;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  if (isNaN(d.getTime())) return day;
  return new Intl.DateTimeFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'long', timeZone: 'UTC' }).format(d);
}

/** An http(s) URL as given, or null. */
export function safeLink(link: unknown): string | null {
  if (typeof link !== 'string' || !link) return null;
  try {
    const u = new URL(link);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

/** Today as `YYYY-MM-DD` in the reader's own calendar. */
export function localToday(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`;
}

/** The entries of `story` in the order they happened, in `lang`; malformed entries are left out. */
export function timeline(story: Story | null | undefined, lang: Lang, today: string = localToday()): TimelineItem[] {
  const entries = Array.isArray(story?.entries) ? story!.entries : [];
  return entries
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => e && typeof e.id === 'string' && typeof e.date === 'string' && DAY.test(e.date) && tr(e.title, lang).trim() !== '')
    // By day, then as the server listed them (the order they were posted).
    .sort((a, b) => (a.e.date < b.e.date ? -1 : a.e.date > b.e.date ? 1 : a.i - b.i))
    .map(({ e }) => ({
      id: e.id,
      kind: e.kind === 'update' ? 'update' : 'milestone',
      day: e.date,
      dayLabel: formatDay(e.date, lang),
      title: tr(e.title, lang).trim(),
      paragraphs: tr(e.text, lang).split(/\r?\n\s*\r?\n/).map((p) => p.trim()).filter(Boolean),
      link: safeLink(e.link),
      upcoming: e.date > today,
    }));
}
