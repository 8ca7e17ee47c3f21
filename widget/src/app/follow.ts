// "Follow my district": an e-mail address and a district (the pin's, after a contribution), sent
// to POST …/subscriptions. The server answers the same whatever the address's state, and sends a
// confirmation link (double opt-in); this form only says so. No honeypot: a program that fills it
// gets no further than one confirmation message per address and hour, which nobody confirms.
import { ApiError, type Api } from '../lib/api';
import { msg } from '../lib/i18n';
import type { Lang } from '../lib/types';
import { describedBy, h, uid } from './dom';

export interface FollowOptions {
  api: Api;
  slug: string;
  lang: Lang;
  /** The campaign's districts (code, name), in the order of its table. */
  districts: { code: string; name: string }[];
  /** The district chosen first (the pin's), if any. */
  district?: string | null;
}

/** The small form, under a heading of level `heading`, or none when a <summary> above titles it. */
export function renderFollow(o: FollowOptions, heading: 'h4' | null = 'h4'): HTMLElement {
  const t = (k: Parameters<typeof msg>[1], p?: Record<string, string | number>) => msg(o.lang, k, p);
  const titleId = uid('cm-follow-t');
  const emailId = uid('cm-follow-email');
  const errorId = uid('cm-follow-err');
  const selectId = uid('cm-follow-district');
  const email = h('input', { id: emailId, type: 'email', name: 'email', autocomplete: 'email', required: true, spellcheck: 'false', class: 'cm-followemail' });
  const error = h('p', { id: errorId, class: 'cm-error' });
  error.hidden = true;
  const select = h('select', { id: selectId, name: 'district', class: 'cm-followdistrict' },
    h('option', { value: '' }, t('followWhole')),
    o.districts.map((d) => h('option', { value: d.code }, d.name)));
  select.value = o.district && o.districts.some((d) => d.code === o.district) ? o.district : '';
  const status = h('p', { class: 'cm-followstatus', role: 'status' });
  const button = h('button', { type: 'submit', class: 'cm-btn cm-secondary cm-small' }, t('followSubmit'));
  const showError = (text: string | null) => {
    error.textContent = text ?? '';
    error.hidden = !text;
    email.setAttribute('aria-invalid', text ? 'true' : 'false');
    describedBy(email, errorId, !!text);
  };
  const send = async (e: Event) => {
    e.preventDefault();
    const value = email.value.trim();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) {
      showError(t('followBadEmail'));
      email.focus();
      return;
    }
    showError(null);
    button.disabled = true;
    status.textContent = '';
    try {
      await o.api.follow(o.slug, { email: value, district: select.value || null, lang: o.lang });
      status.textContent = t('followSent');
      email.value = '';
    } catch (err) {
      const detail = err instanceof ApiError ? err.message : String(err);
      if (err instanceof ApiError && err.status === 422 && /email/.test(JSON.stringify(err.problem))) {
        showError(t('followBadEmail'));
        email.focus();
      } else {
        status.textContent = t('followFailed', { e: detail });
      }
    } finally {
      button.disabled = false;
    }
  };
  return h('section', heading ? { class: 'cm-follow', 'aria-labelledby': titleId } : { class: 'cm-follow', 'aria-label': t('followTitle') },
    heading ? h(heading, { id: titleId }, t('followTitle')) : null,
    h('p', { class: 'cm-note' }, t('followIntro')),
    h('form', { class: 'cm-followform', novalidate: true, onsubmit: send },
      h('div', { class: 'cm-field' }, h('label', { class: 'cm-label', for: emailId }, t('followEmail')), email, error),
      h('div', { class: 'cm-field' }, h('label', { class: 'cm-label', for: selectId }, t('followDistrict')), select),
      h('div', { class: 'cm-actions' }, button)),
    status);
}
