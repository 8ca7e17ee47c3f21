// The campaign's questions as form controls, their error display and the error summary: shared by the
// contribution form (app.ts) and the edit page (edit.ts). Plus the honeypot field.
import { msg, tr } from '../lib/i18n';
import type { Field, Lang } from '../lib/types';
import { fieldLabel, type RawValue } from '../lib/validate';
import { describedBy, h, uid } from './dom';

export interface FieldRef { controls: HTMLElement[]; error: HTMLElement; group?: HTMLElement }

const RADIO_MAX = 6;

/** The control(s) of one field, with label, hint and (hidden) error; `onInput` gets every change. */
export function renderField(f: Field, lang: Lang, cur: RawValue, onInput: (v: RawValue) => void): { el: HTMLElement; ref: FieldRef } {
  const t = (k: Parameters<typeof msg>[1], p?: Record<string, string | number>) => msg(lang, k, p);
  const id = uid(`cm-f-${f.key.replace(/[^A-Za-z0-9_-]/g, '_')}`);
  const errId = `${id}-err`;
  const hintId = `${id}-hint`;
  const label = fieldLabel(f, lang);
  const req = f.required ? h('span', { class: 'cm-req', 'aria-hidden': 'true' }, ' *') : null;
  const helpText = tr(f.help ?? null, lang);
  const error = h('p', { class: 'cm-error', id: errId });
  error.hidden = true;
  const controls: HTMLElement[] = [];
  let body: HTMLElement;

  if (f.type === 'boolean') {
    const input = h('input', { type: 'checkbox', id, name: f.key, required: !!f.required });
    input.checked = cur === true;
    input.addEventListener('change', () => onInput(input.checked));
    controls.push(input);
    body = h('div', { class: 'cm-field', 'data-field': f.key },
      h('label', { class: 'cm-check', for: id }, input, h('span', null, label, req)),
      helpText ? h('p', { class: 'cm-hint', id: hintId }, helpText) : null, error);
    if (helpText) input.setAttribute('aria-describedby', hintId);
  } else if (f.type === 'choice' && f.options.length <= RADIO_MAX) {
    const legendId = `${id}-legend`;
    const radios = f.options.map((o, i) => {
      const rid = `${id}-${i}`;
      const input = h('input', { type: 'radio', name: f.key, id: rid, value: o.value, required: !!f.required });
      input.checked = cur === o.value;
      input.addEventListener('change', () => { if (input.checked) onInput(o.value); });
      if (helpText) input.setAttribute('aria-describedby', hintId);
      controls.push(input);
      return h('label', { class: 'cm-check', for: rid }, input, h('span', null, tr(o.label, lang) || o.value));
    });
    body = h('fieldset', { class: 'cm-fieldset', 'aria-labelledby': legendId, 'data-field': f.key },
      h('legend', { class: 'cm-label', id: legendId }, label, req),
      helpText ? h('p', { class: 'cm-hint', id: hintId }, helpText) : null,
      error,
      h('div', { class: 'cm-choices' }, radios));
  } else {
    let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    let counter: HTMLElement | null = null;
    const hints: string[] = [];
    if (helpText) hints.push(helpText);
    if (f.type === 'choice') {
      input = h('select', { id, name: f.key, required: !!f.required },
        h('option', { value: '' }, t('chooseOption')),
        ...f.options.map((o) => h('option', { value: o.value }, tr(o.label, lang) || o.value)));
      input.value = typeof cur === 'string' ? cur : '';
      input.addEventListener('change', () => onInput((input as HTMLSelectElement).value));
    } else if (f.type === 'number') {
      const fmt = (n: number) => (lang === 'fr' ? String(n).replace('.', ',') : String(n));
      if (f.min != null && f.max != null) hints.push(t('rangeBoth', { min: fmt(f.min), max: fmt(f.max) }));
      else if (f.min != null) hints.push(t('rangeMin', { min: fmt(f.min) }));
      else if (f.max != null) hints.push(t('rangeMax', { max: fmt(f.max) }));
      else if (f.integer) hints.push(t('wholeNumber'));
      input = h('input', { id, name: f.key, type: 'text', inputmode: f.integer && (f.min == null || f.min >= 0) ? 'numeric' : 'decimal', autocomplete: 'off', required: !!f.required, class: 'cm-short' });
      input.value = typeof cur === 'string' ? cur : '';
      input.addEventListener('input', () => onInput((input as HTMLInputElement).value));
    } else {
      const long = f.max_length == null || f.max_length > 120;
      input = long ? h('textarea', { id, name: f.key, rows: '3', required: !!f.required }) : h('input', { id, name: f.key, type: 'text', required: !!f.required });
      input.value = typeof cur === 'string' ? cur : '';
      if (f.max_length != null) {
        const c = h('span', { class: 'cm-counter', id: `${id}-count` });
        const max = f.max_length;
        const upd = () => { c.textContent = t('charCount', { c: [...input.value.trim()].length, n: max }); };
        upd();
        input.addEventListener('input', upd);
        counter = c;
      }
      input.addEventListener('input', () => onInput(input.value));
    }
    controls.push(input);
    body = h('div', { class: 'cm-field', 'data-field': f.key },
      h('label', { class: 'cm-label', for: id }, label, req),
      hints.length ? h('p', { class: 'cm-hint', id: hintId }, hints.join(' ')) : null,
      error, input, counter);
    if (hints.length) input.setAttribute('aria-describedby', hintId);
    if (counter) describedBy(input, counter.id, true);
  }
  return { el: body, ref: { controls, error, group: body } };
}

/** Shows `errors` (by field key) next to their fields, with aria-invalid and aria-describedby. */
export function applyFieldErrors(refs: Record<string, FieldRef>, errors: Record<string, string>): void {
  for (const [key, ref] of Object.entries(refs)) {
    const text = errors[key] ?? null;
    ref.error.hidden = !text;
    ref.error.textContent = text ?? '';
    for (const c of ref.controls) {
      if (text) c.setAttribute('aria-invalid', 'true');
      else c.removeAttribute('aria-invalid');
      describedBy(c, ref.error.id, !!text);
    }
  }
}

/** Fills and focuses the error summary (a list of links to the fields), or hides it when there is nothing. */
export function showSummary(box: HTMLElement, items: { text: string; target: () => HTMLElement | null | undefined }[], lang: Lang): void {
  if (!items.length) {
    box.hidden = true;
    return;
  }
  const hId = uid('cm-sum');
  box.setAttribute('aria-labelledby', hId);
  box.replaceChildren(h('h4', { id: hId }, msg(lang, 'errSummary', { n: items.length })),
    h('ul', null, items.map((it) => h('li', null, h('button', { type: 'button', class: 'cm-linkbtn', onclick: () => it.target()?.focus() }, it.text)))));
  box.hidden = false;
  box.focus();
}

/**
 * The honeypot: a field named `website` that people never see nor reach (off-screen, aria-hidden,
 * out of the tab order, no autofill); bots that fill every field give themselves away.
 */
export function renderHoneypot(lang: Lang): { el: HTMLElement; input: HTMLInputElement } {
  const id = uid('cm-website');
  const input = h('input', { type: 'text', id, name: 'website', tabindex: '-1', autocomplete: 'off', spellcheck: 'false' });
  const el = h('div', { class: 'cm-hp', 'aria-hidden': 'true' }, h('label', { for: id }, msg(lang, 'honeypot')), input);
  return { el, input };
}
