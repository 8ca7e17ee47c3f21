// The "erase my contribution" page: /embed/{slug}/edit#id=…&token=… (link given to the submitter).
import { Api, ApiError } from '../lib/api';
import { chooseLang, msg, tr } from '../lib/i18n';
import { parseEditHash } from '../lib/options';
import type { Campaign, Lang } from '../lib/types';
import { h } from './dom';

export async function mountEditPage(mount: HTMLElement, o: { api: string; slug: string; lang: string | null; onLang: (l: Lang) => void }): Promise<void> {
  const api = new Api(o.api);
  const { id, token } = parseEditHash(location.hash);
  let campaign: Campaign | null = null;
  try {
    campaign = await api.campaign(o.slug);
  } catch { /* the page still works without the title */ }
  const lang = chooseLang(o.lang, null, campaign?.default_lang);
  o.onLang(lang);
  const t = (k: Parameters<typeof msg>[1], p?: Record<string, string | number>) => msg(lang, k, p);
  const title = campaign ? tr(campaign.title, lang) : o.slug;
  const status = h('div', { class: 'cm-edit-status', role: 'status' });
  const back = h('p', null, h('a', { href: `${api.base}/embed/${encodeURIComponent(o.slug)}?lang=${lang}` }, t('backToMap')));
  const root = h('div', { class: 'cm cm-page', lang },
    h('header', { class: 'cm-head' }, h('h1', { class: 'cm-title' }, t('editTitle')), h('p', { class: 'cm-meta' }, title)));
  const body = h('div', { class: 'cm-panel cm-stack' });
  root.append(body);
  mount.replaceChildren(root);
  document.title = `${t('editTitle')} — ${title}`;

  if (!id || !token) {
    body.append(h('p', { class: 'cm-alert' }, t('editMissing')), back);
    return;
  }
  const btn = h('button', { class: 'cm-btn cm-danger', type: 'button' }, t('editConfirm'));
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    status.replaceChildren(t('sending'));
    try {
      await api.erase(o.slug, id, token);
      // Forget the token: it is of no use any more and should not stay in the history.
      history.replaceState(null, '', location.pathname + location.search);
      btn.remove();
      status.replaceChildren(h('p', { class: 'cm-success' }, t('editDone')));
    } catch (e) {
      btn.disabled = false;
      const err = e instanceof ApiError ? e : new ApiError(0, {});
      const text = err.status === 404 || err.status === 403 || err.status === 401 || err.status === 410 ? t('editNotFound')
        : err.status === 0 ? t('errNetwork')
        : err.status === 503 ? t('errUnavailable', { s: err.retryAfter ?? 30 })
        : t('errGeneric', { s: err.problem.detail || `HTTP ${err.status}` });
      status.replaceChildren(h('p', { class: 'cm-alert' }, text));
    }
  });
  body.append(h('p', null, t('editIntro', { t: title })), h('div', { class: 'cm-actions' }, btn), status, back);
}
