// The console's DOM helpers, shared by its pages (main.ts) and panels (privacy.ts): an element
// maker, labelled controls, a status line, an API problem in words, a scrolling table region, and
// texts and dates in the console's language. Plain DOM: no framework, no inline style attribute
// (the console's CSP forbids one: styles go through the CSSOM).
import { ApiError } from './api';
import { lang, t } from './i18n';

export type Attrs = Record<string, string | boolean | number | EventListener | undefined>;
export type Child = Node | string | null | undefined | false;

/** An element with attributes (`on…` are listeners) and children. */
export function h(tag: string, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value as EventListener);
    // Through the CSSOM: the console's CSP allows no style attribute.
    else if (name === 'style') el.style.cssText = String(value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** A labelled input; returns the wrapper and the control. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), control);
  if (hint) {
    const hid = `${id}-hint`;
    control.setAttribute('aria-describedby', hid);
    wrap.append(h('p', { class: 'hint', id: hid }, hint));
  }
  return wrap;
}

export function input(attrs: Attrs = {}): HTMLInputElement {
  return h('input', { type: 'text', ...attrs }) as HTMLInputElement;
}

export function select(options: [string, string][], value: string, attrs: Attrs = {}): HTMLSelectElement {
  const s = h('select', attrs, ...options.map(([v, label]) => h('option', { value: v, selected: v === value }, label))) as HTMLSelectElement;
  return s;
}

/** A polite status line; errors are assertive. */
export function status(): { el: HTMLElement; ok: (m: string) => void; fail: (e: unknown) => void; clear: () => void } {
  const el = h('div', { class: 'status', role: 'status', 'aria-live': 'polite' });
  return {
    el,
    ok: (m) => { el.className = 'status ok'; el.replaceChildren(m); },
    fail: (e) => { el.className = 'status error'; el.replaceChildren(...problemText(e)); },
    clear: () => { el.className = 'status'; el.replaceChildren(); },
  };
}

export function problemText(e: unknown): Node[] {
  if (e instanceof ApiError) {
    const out: Node[] = [document.createTextNode(t('error', { e: e.problem.detail }))];
    if (e.problem.errors?.length) {
      out.push(h('ul', { class: 'errors' }, ...e.problem.errors.map((x) => h('li', {}, h('code', {}, x.field), t('colon'), x.detail))));
    }
    return out;
  }
  return [document.createTextNode(t('error', { e: String(e instanceof Error ? e.message : e) }))];
}

/** A text in the console's language (else the other one). */
export function loc(l: { fr: string; en: string } | undefined): string {
  return l ? l[lang()] || l.fr || l.en : '';
}

/** A date and time, short, in the console's language and the browser's time zone. */
export function fmtDate(s: string | null | undefined): string {
  if (!s) return '—';
  return new Date(s).toLocaleString(lang() === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'short', timeStyle: 'short' });
}

/** A table that may be wider than the screen scrolls inside a labelled, focusable region. */
export function scroller(labelId: string, table: HTMLElement): HTMLElement {
  return h('div', { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-labelledby': labelId }, table);
}
