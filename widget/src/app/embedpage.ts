// The iframe page (embed.html, served at /embed/{slug} and /embed/{slug}/edit): mounts the widget
// full-width and tells the parent page (embed.js) its height.
import { msg } from '../lib/i18n';
import { parseEmbedPath, parseHeight, parseMode, parseView } from '../lib/options';
import type { Lang } from '../lib/types';
import { mountEditPage } from './edit';
import { CSS } from './styles';
import { setStyle } from './dom';

export function mountEmbedPage(apiBase: string): void {
  const route = parseEmbedPath(location.pathname);
  const q = new URLSearchParams(location.search);
  const body = document.body;
  setStyle(document.documentElement, { background: '#ffffff' });
  setStyle(body, { margin: '0', padding: '0', background: '#ffffff' });
  let title: string | undefined;

  const post = () => {
    if (window.parent === window || !route) return;
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    window.parent.postMessage({ type: 'civicmap:height', height, campaign: route.slug, title }, '*');
  };
  new ResizeObserver(post).observe(document.documentElement);
  window.addEventListener('load', post);

  if (!route) {
    document.documentElement.lang = 'fr';
    body.textContent = 'Campagne inconnue / Unknown campaign';
    return;
  }
  const setLang = (l: Lang) => { document.documentElement.lang = l; };

  if (route.edit) {
    const host = document.createElement('div');
    body.appendChild(host);
    const shadow = host.attachShadow({ mode: 'open' });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
    const mount = document.createElement('div');
    shadow.appendChild(mount);
    mountEditPage(mount, { api: apiBase, assets: `${apiBase}/widget/`, slug: route.slug, lang: q.get('lang'), onLang: setLang });
    return;
  }

  const el = document.createElement('civicmap-map');
  el.setAttribute('campaign', route.slug);
  el.setAttribute('page', '');
  el.setAttribute('api', apiBase);
  const lang = q.get('lang');
  if (lang) el.setAttribute('lang', lang);
  const mode = parseMode(q.get('mode'));
  if (mode) el.setAttribute('mode', mode);
  const view = q.get('view');
  if (view && parseView(view)) el.setAttribute('view', view);
  const height = parseHeight(q.get('height'));
  if (height) el.setAttribute('height', height);
  if (q.get('map') === '0') el.setAttribute('nomap', '');
  el.addEventListener('civicmap:title', (e) => {
    const t = (e as CustomEvent<{ title: string }>).detail.title;
    const app = (el as HTMLElement & { app?: { lang: Lang } }).app;
    const lang = app?.lang ?? 'fr';
    setLang(lang);
    // Also sent to embed.js, which uses it as the iframe's title (what screen readers announce).
    title = msg(lang, 'iframeTitle', { c: t });
    document.title = title;
    post();
  });
  body.appendChild(el);
}
