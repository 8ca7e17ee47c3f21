// The campaign's story as a timeline under the map: an ordered list (oldest first), each entry
// with its kind, its day in a <time>, a heading and its text; links are ordinary links, so the
// keyboard reaches them in order. Nothing is injected as HTML: every text is a text node.
import { msg } from '../lib/i18n';
import { timeline } from '../lib/story';
import type { Lang, Story } from '../lib/types';
import { h, uid } from './dom';

/** The story's section, or null when there is nothing to tell. */
export function renderStory(story: Story | null, lang: Lang, feedUrl: string): HTMLElement | null {
  const items = timeline(story, lang);
  if (!items.length) return null;
  const t = (key: Parameters<typeof msg>[1], params?: Record<string, string | number>) => msg(lang, key, params);
  const hId = uid('cm-story-h');
  const list = h('ol', { class: 'cm-timeline' }, items.map((item) => {
    const titleId = uid('cm-story-t');
    return h('li', { class: `cm-story-item cm-story-${item.kind}${item.upcoming ? ' cm-story-upcoming' : ''}`, id: `story-${item.id}`, 'data-story-id': item.id },
      h('span', { class: 'cm-story-dot', 'aria-hidden': 'true' }),
      h('p', { class: 'cm-story-meta' },
        h('span', { class: 'cm-story-kind' }, t(item.kind === 'update' ? 'storyUpdate' : 'storyMilestone')),
        ' · ',
        h('time', { datetime: item.day }, item.dayLabel),
        item.upcoming ? h('span', { class: 'cm-story-soon' }, ` (${t('storyUpcoming')})`) : null),
      h('h4', { class: 'cm-story-title', id: titleId }, item.title),
      item.paragraphs.map((p) => h('p', { class: 'cm-story-text' }, p)),
      item.link
        ? h('p', null, h('a', { href: item.link, target: '_blank', rel: 'noopener noreferrer', class: 'cm-story-link' },
          t('storyLink'), h('span', { class: 'cm-sr' }, t('storyLinkAbout', { t: item.title }))))
        : null);
  }));
  return h('section', { class: 'cm-story', 'aria-labelledby': hId },
    h('h3', { id: hId }, t('storyTitle')),
    list,
    h('p', { class: 'cm-story-feed' }, h('a', { href: feedUrl, type: 'application/atom+xml', target: '_blank', rel: 'noopener' }, t('storyFeed'))));
}
