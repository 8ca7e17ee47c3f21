// "Follow my district": an e-mail address and a district (the pin's, after a contribution), sent
// to POST …/subscriptions. The server answers the same whatever the address's state, and sends a
// confirmation link (double opt-in); this form only says so. No honeypot: a program that fills it
// gets no further than one confirmation message per address and hour, which nobody confirms.
// A campaign with a proof of work, or under pressure, asks for one here too (422 `proof_of_work`):
// sent as with a contribution (sendProtected), which also sends again after a short 429 or 503.
import { ApiError, type Api } from '../lib/api';
import { msg } from '../lib/i18n';
import { ProofOfWork, problemField, sendProtected } from '../lib/protect';
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
  /** The campaign asks for a proof of work: solved from the first keystroke, so that it is ready. */
  proofOfWork?: boolean;
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
  const pow = o.proofOfWork ? new ProofOfWork(() => o.api.challenge(o.slug)) : null;
  if (pow) email.addEventListener('input', () => pow.start());
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
      const body = { email: value, district: select.value || null, lang: o.lang };
      await sendProtected({
        send: (headers) => o.api.follow(o.slug, body, headers),
        formStart: 0,
        minFillSeconds: 0,
        pow,
        challenge: () => o.api.challenge(o.slug),
        onWait: () => { status.textContent = t('sendingWait'); },
        onBusy: (s) => { status.textContent = t('sendingBusy', { s }); },
      });
      status.textContent = t('followSent');
      email.value = '';
    } catch (err) {
      const proof = err instanceof ApiError && err.status === 422 && problemField(err.problem) === 'proof_of_work';
      const detail = proof ? t('errProof') : err instanceof ApiError ? err.message : String(err);
      if (!proof && err instanceof ApiError && err.status === 422 && /email/.test(JSON.stringify(err.problem))) {
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
