// civicmap.js: defines <civicmap-map>; on the iframe page (embed.html) also mounts the page.
import { defineElement } from './app/element';
import { mountEmbedPage } from './app/embedpage';

const script = (document.currentScript as HTMLScriptElement | null) ??
  document.querySelector<HTMLScriptElement>('script[src$="/civicmap.js"], script[src*="/civicmap.js?"]');
const src = script?.src || location.href;
const assets = new URL('.', src).href;
const origin = new URL(src).origin;

defineElement({ assets, api: origin });

if (script?.hasAttribute('data-civicmap-embed-page')) {
  const start = () => mountEmbedPage(origin);
  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
}
