// embed.js: the one line a city pastes into its CMS.
//   <script src="https://HOST/embed.js" data-campaign="fibre-pour-tous" async></script>
// Inserts an iframe HOST/embed/{campaign}?lang=..&mode=..&view=..&height=.. right after the script tag,
// and resizes it from the page's {type:'civicmap:height'} messages. Every style is inline with
// !important (set through CSSOM, which a strict CSP allows) so that host CSS cannot break it.
import { iframeSrc, isHeightMessage, parseEmbedOptions } from './lib/options';

const MARK = 'data-civicmap-embedded';

function important(el: HTMLElement, styles: Record<string, string>): void {
  for (const k in styles) el.style.setProperty(k, styles[k], 'important');
}

function mount(script: HTMLScriptElement): void {
  script.setAttribute(MARK, '');
  const d = script.dataset;
  const parsed = parseEmbedOptions(script.src, { campaign: d.campaign, lang: d.lang, mode: d.mode, view: d.view, height: d.height }, document.documentElement.lang, location.href);
  if (!parsed.ok) {
    console.error('[civicmap] embed.js: ' + parsed.error);
    return;
  }
  const o = parsed.options;
  const iframe = document.createElement('iframe');
  iframe.src = iframeSrc(o);
  iframe.title = (o.lang === 'en' ? 'civicmap participatory map: ' : 'Carte participative civicmap : ') + o.campaign;
  iframe.setAttribute('allow', 'geolocation; clipboard-write');
  iframe.setAttribute('referrerpolicy', 'strict-origin-when-cross-origin');
  iframe.setAttribute('data-civicmap-campaign', o.campaign);
  important(iframe, {
    display: 'block', position: 'static', float: 'none', visibility: 'visible', opacity: '1',
    width: '100%', 'min-width': '0', 'max-width': '100%', height: '640px', 'min-height': '0', 'max-height': 'none',
    border: '0', margin: '0', padding: '0', 'box-sizing': 'border-box', overflow: 'hidden',
    transform: 'none', filter: 'none', 'clip-path': 'none', 'pointer-events': 'auto', background: 'transparent',
    'color-scheme': 'normal', 'aspect-ratio': 'auto', 'z-index': 'auto', zoom: '1',
  });
  window.addEventListener('message', (e: MessageEvent) => {
    if (e.origin !== o.host || e.source !== iframe.contentWindow) return;
    const m = e.data;
    if (!isHeightMessage(m)) return;
    important(iframe, { height: Math.ceil(m.height) + 'px' });
    if (typeof m.title === 'string' && m.title) iframe.title = m.title.slice(0, 200);
  });
  const parent = script.parentNode;
  if (parent && parent !== document.head && parent !== document.documentElement) parent.insertBefore(iframe, script.nextSibling);
  else {
    const add = () => document.body.appendChild(iframe);
    if (document.body) add();
    else document.addEventListener('DOMContentLoaded', add);
  }
}

function findScripts(): HTMLScriptElement[] {
  const cur = document.currentScript as HTMLScriptElement | null;
  if (cur && cur.src && !cur.hasAttribute(MARK)) return [cur];
  // Fallback (e.g. the script was injected by a tag manager): every not-yet-mounted embed.js tag.
  return Array.from(document.querySelectorAll<HTMLScriptElement>('script[src][data-campaign]')).filter(
    (s) => !s.hasAttribute(MARK) && /\/embed\.js(?:[?#].*)?$/.test(s.src),
  );
}

try {
  findScripts().forEach(mount);
} catch (e) {
  console.error('[civicmap] embed.js failed', e);
}
