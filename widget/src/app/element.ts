// <civicmap-map campaign="…" lang="fr|en" height="480px" mode="view|contribute" view="lon,lat,zoom" api="https://HOST">
// Renders the widget in an open shadow root with our CSS adopted, so that the host page's CSS can
// neither break it nor be broken by it (MapLibre's CSS is linked into it with the map, app.ts).
import { parseHeight, parseMode, parseView } from '../lib/options';
import { App } from './app';
import { CSS } from './styles';

let sheet: CSSStyleSheet | null = null;

function attachStyles(root: ShadowRoot): void {
  try {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    }
    root.adoptedStyleSheets = [sheet];
  } catch {
    // No constructable stylesheets (old Safari): a <style> element (needs style-src 'unsafe-inline' under a CSP).
    const style = document.createElement('style');
    style.textContent = CSS;
    root.appendChild(style);
  }
}

export interface ElementDefaults {
  /** Base URL of the static files (directory of civicmap.js). */
  assets: string;
  /** Default API origin (origin of civicmap.js). */
  api: string;
}

export function defineElement(defaults: ElementDefaults): void {
  if (customElements.get('civicmap-map')) return;

  class CivicmapMap extends HTMLElement {
    static observedAttributes = ['campaign', 'lang', 'height', 'mode', 'view', 'api', 'nomap', 'geocoder'];
    app: App | null = null;
    private mount: HTMLElement | null = null;
    private restartQueued = false;

    /** The MapLibre map, when shown (for tests and integrators). */
    get map(): unknown {
      return this.app?.mapView?.map ?? null;
    }

    connectedCallback(): void {
      if (!this.shadowRoot) {
        const root = this.attachShadow({ mode: 'open' });
        attachStyles(root);
        this.mount = document.createElement('div');
        root.appendChild(this.mount);
      }
      // Host CSS such as `* { all: revert }` would make the element inline; it must be a block.
      this.style.setProperty('display', 'block', 'important');
      if (!this.app) this.startApp();
    }

    disconnectedCallback(): void {
      // Allow moving the element in the DOM without losing state: tear down only if it stays detached.
      queueMicrotask(() => {
        if (!this.isConnected) {
          this.app?.destroy();
          this.app = null;
        }
      });
    }

    attributeChangedCallback(name: string, old: string | null, value: string | null): void {
      if (!this.app || old === value) return;
      if (name === 'lang') {
        this.app.setLang(value);
        return;
      }
      if (this.restartQueued) return;
      this.restartQueued = true;
      queueMicrotask(() => {
        this.restartQueued = false;
        this.app?.destroy();
        this.app = null;
        this.startApp();
      });
    }

    private startApp(): void {
      const campaign = (this.getAttribute('campaign') ?? '').trim();
      if (!campaign || !this.mount) {
        if (!campaign) console.error('[civicmap] <civicmap-map> needs a campaign attribute');
        return;
      }
      const api = this.getAttribute('api') || defaults.api;
      this.app = new App(this.mount, {
        api,
        assets: defaults.assets,
        campaign,
        langAttr: this.getAttribute('lang'),
        docLang: document.documentElement.lang,
        mode: parseMode(this.getAttribute('mode')),
        view: parseView(this.getAttribute('view')),
        height: parseHeight(this.getAttribute('height')),
        noMap: this.hasAttribute('nomap'),
        page: this.hasAttribute('page'),
        geocoder: this.getAttribute('geocoder'),
        onTitle: (t) => this.dispatchEvent(new CustomEvent('civicmap:title', { detail: { title: t } })),
      });
      this.app.start();
    }
  }
  customElements.define('civicmap-map', CivicmapMap);
}
