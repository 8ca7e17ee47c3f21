// The console's privacy panel (planners and admins): what the figures published finer than a
// district reveal at a budget ε, and the campaign's ledger of releases, from GET
// /api/v1/admin/campaigns/{slug}/privacy[?budget=ε] (exact counts: staff only, never published).
// It shows the attacker's bounds in words and percentages (a household's place; each public
// question's answer against the prior), how noisy the estimates are (the map's margin, each
// district's split margins with an example the public might see, simulated by the server with the
// real sampler), the releases it assumes, and the ledger (releases, contributions counted and
// waiting, ε spent, the next release). For admins, "Publish the figures now" (POST …/releases),
// after a confirmation that says what it costs. On the campaign page it follows the budget typed
// in the form (debounced); on the dashboard it shows the campaign's own budget.
import { call } from './api';
import { Key, lang, t } from './i18n';
import type { Field } from './model';
import { fmtDate, h, loc, problemText, scroller, status } from './ui';
import { MAX_BUDGET, MIN_BUDGET, formatPercent, margin95 } from '../lib/figures';

interface Measure { epsilon: number; sensitivity: number; scale: number }

export interface PrivacyReport {
  ledger: {
    budget: number;
    spent: number;
    uncounted: number;
    next_release: string;
    releases: { id: number; period_start: string; period_end: string; released_at: string; epsilon: number; counted: number }[];
  };
  preview: {
    budget: number;
    plan: { epsilon: number; resolution: number; map: Measure; splits: { field: string; values: string[]; measure: Measure }[]; sums: { field: string; lo: number; hi: number; measure: Measure }[] };
    releases: number;
    attacker: { place: number; period: number; answers: { field: string; prior: number; bound: number }[] };
    map_margin: number;
    districts: { code: string; name: string; count: number; splits: { field: string; margin: number; values: { value: string; exact: number; example: number | null }[] }[] }[];
  };
}

export interface PanelOptions {
  slug: string;
  /** Admins get the "publish now" button. */
  admin: boolean;
  fields: Field[];
  k: number;
  releaseEvery: 'day' | 'week';
  /** Whether the budget comes from the campaign form's input (else it is the campaign's). */
  typed: boolean;
  /** The budget to preview first (absent: the campaign's). */
  budget?: number | null;
}

export interface PrivacyPanel {
  el: HTMLElement;
  /** Shows the preview at `budget` (the input's text), after a pause in typing. */
  preview: (budget: string) => void;
  /** Fetches again at the current budget (after the settings are saved, or a release); false when it failed. */
  refresh: () => Promise<boolean>;
}

const DEBOUNCE_MS = 400;

/** A budget as the server takes it, or null (empty, not a number, out of range). */
export function budgetOf(text: string): number | null {
  const x = Number(text.trim().replace(',', '.'));
  return text.trim() !== '' && isFinite(x) && x >= MIN_BUDGET && x <= MAX_BUDGET ? x : null;
}

export function privacyPanel(o: PanelOptions): PrivacyPanel {
  const nf = (digits = 0) => new Intl.NumberFormat(lang() === 'fr' ? 'fr-FR' : 'en-GB', { maximumFractionDigits: digits });
  const pct = (x: number) => formatPercent(x, lang());
  const eps = (x: number) => nf(2).format(x);
  const fieldOf = (key: string) => o.fields.find((f) => f.key === key);
  const question = (key: string) => loc(fieldOf(key)?.label) || key;
  const answer = (key: string, v: string) => {
    if (v === '') return t('no_answer');
    const f = fieldOf(key);
    if (f?.type === 'choice') return loc(f.options?.find((x) => x.value === v)?.label) || v;
    return v === 'true' ? t('yes') : v === 'false' ? t('no') : v;
  };

  const live = h('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-privacy-status': '' });
  const body = h('div', { class: 'pp-body', 'aria-busy': 'true' }, h('p', {}, t('pp_loading')));
  const ledger = h('div', { class: 'pp-ledger' });
  const el = h('section', { class: 'card privacy-panel', 'aria-labelledby': 'pp-h', 'data-privacy': '' },
    h('h2', { id: 'pp-h' }, t('pp_title')),
    h('p', { class: 'warning' }, t('pp_staff_only')),
    live, body, ledger);

  let budget: number | null = o.budget ?? null;
  let seq = 0;
  let timer = 0;

  /** Fetches and draws the preview and the ledger; false when it failed (and says so). */
  const load = async (): Promise<boolean> => {
    const mine = ++seq;
    body.setAttribute('aria-busy', 'true');
    const q = budget === null ? '' : `?budget=${encodeURIComponent(String(budget))}`;
    try {
      const r = await call<PrivacyReport>('GET', `/api/v1/admin/campaigns/${encodeURIComponent(o.slug)}/privacy${q}`);
      // A later request (the budget typed on) wins over this one.
      if (mine !== seq) return false;
      // The budget asked (the preview's own is what its measures add up to, a hair below).
      const asked = budget ?? r.ledger.budget;
      body.replaceChildren(...previewView(r.preview, asked));
      ledger.replaceChildren(...ledgerView(r.ledger));
      live.className = 'status ok';
      live.replaceChildren(t('pp_updated', { e: eps(asked) }));
      return true;
    } catch (e) {
      if (mine !== seq) return false;
      live.className = 'status error';
      live.replaceChildren(...problemText(e));
      return false;
    } finally {
      if (mine === seq) body.setAttribute('aria-busy', 'false');
    }
  };

  function previewView(p: PrivacyReport['preview'], asked: number): Node[] {
    const out: Node[] = [h('p', { class: 'explain', 'data-preview-budget': String(asked) }, t(o.typed ? 'pp_at_typed' : 'pp_at_saved', { e: eps(asked) }))];
    // What an attacker who knows everything else can learn.
    const bounds = h('ul', { class: 'bounds' },
      h('li', { 'data-bound': 'place' }, t('pp_place', { p: pct(p.attacker.place) })),
      h('li', { 'data-bound': 'period' }, t(o.releaseEvery === 'day' ? 'pp_period_day' : 'pp_period_week', { p: pct(p.attacker.period) })),
      ...p.attacker.answers.map((a) => h('li', { 'data-bound': a.field }, t('pp_answer', { q: question(a.field), b: pct(a.bound), p: pct(a.prior) }))));
    out.push(h('h3', { id: 'pp-att-h' }, t('pp_attacker_h')), h('p', {}, t('pp_attacker_intro')), bounds);
    if (!p.attacker.answers.length) out.push(h('p', {}, t('pp_no_public_fields')));
    // How noisy the estimates are, after the releases the preview assumes.
    out.push(h('h3', { id: 'pp-noise-h' }, t('pp_noise_h')),
      h('p', { 'data-releases': String(p.releases) }, t('pp_releases', { n: p.releases })),
      h('p', { 'data-margin': 'map' }, t('pp_map_margin', { m: nf(1).format(p.map_margin) })));
    for (const s of p.plan.sums) {
      out.push(h('p', { 'data-margin': `sum-${s.field}` }, t('pp_sum_margin', { q: question(s.field), lo: nf().format(s.lo), hi: nf().format(s.hi), m: nf(1).format(margin95(s.measure.scale, p.releases)) })));
    }
    // Per public question, a table: a row per district, its margin, and per answer the exact
    // count beside one example of the estimate (two header rows: the answer over its pair).
    for (const split of p.plan.splits) {
      const id = `pp-split-${split.field}`;
      const rows = p.districts
        .filter((d) => d.code || d.count > 0)
        .map((d) => {
          const s = d.splits.find((x) => x.field === split.field);
          return h('tr', { 'data-district': d.code },
            h('th', { scope: 'row' }, d.code ? `${d.name} (${d.code})` : t('outside')),
            h('td', { class: 'num', 'data-split-margin': '' }, s ? `± ${nf(1).format(s.margin)}` : '—'),
            ...split.values.flatMap((value) => {
              const v = s?.values.find((x) => x.value === value);
              return [
                h('td', { class: 'num', 'data-value-exact': value }, v ? nf().format(v.exact) : '—'),
                h('td', { class: 'num example', 'data-value-example': value }, !v ? '—' : v.example === null ? t('pp_below_k', { k: o.k }) : nf().format(v.example)),
              ];
            }));
        });
      out.push(scroller(id, h('table', { class: 'pp-split', 'data-field': split.field },
        h('caption', { id }, t('pp_split_caption', { q: question(split.field) })),
        h('colgroup', { span: 2 }), ...split.values.map(() => h('colgroup', { span: 2 })),
        h('thead', {},
          h('tr', {},
            h('th', { scope: 'col', rowspan: 2 }, t('district')),
            h('th', { scope: 'col', rowspan: 2, class: 'num' }, t('pp_col_margin')),
            ...split.values.map((value) => h('th', { scope: 'colgroup', colspan: 2, class: 'group' }, answer(split.field, value)))),
          h('tr', {}, ...split.values.flatMap(() => [h('th', { scope: 'col', class: 'num' }, t('pp_col_exact')), h('th', { scope: 'col', class: 'num' }, t('pp_col_example'))]))),
        h('tbody', {}, ...rows))));
    }
    return out;
  }

  function ledgerView(l: PrivacyReport['ledger']): Node[] {
    const out: Node[] = [
      h('h3', { id: 'pp-ledger-h' }, t('pp_ledger_h')),
      h('dl', { class: 'pp-facts' },
        h('dt', {}, t('pp_budget_in_force')), h('dd', { 'data-ledger': 'budget' }, eps(l.budget)),
        h('dt', {}, t('pp_spent')), h('dd', { 'data-ledger': 'spent' }, eps(l.spent)),
        h('dt', {}, t('pp_uncounted')), h('dd', { 'data-ledger': 'uncounted' }, nf().format(l.uncounted)),
        h('dt', {}, t('pp_next')), h('dd', { 'data-ledger': 'next' }, fmtDate(l.next_release))),
    ];
    if (!l.releases.length) out.push(h('p', { 'data-ledger': 'empty' }, t('pp_no_release')));
    else {
      out.push(scroller('pp-ledger-c', h('table', { class: 'pp-releases' },
        h('caption', { id: 'pp-ledger-c' }, t('pp_ledger_caption')),
        h('thead', {}, h('tr', {}, ...(['pp_col_released', 'pp_col_period', 'pp_col_counted', 'pp_col_epsilon'] as Key[]).map((key, i) => h('th', { scope: 'col', class: i > 1 ? 'num' : undefined }, t(key))))),
        h('tbody', {}, ...l.releases.slice().reverse().map((r) => h('tr', { 'data-release': String(r.id) },
          h('th', { scope: 'row' }, fmtDate(r.released_at)),
          h('td', {}, t('pp_period_range', { a: fmtDate(r.period_start), b: fmtDate(r.period_end) })),
          h('td', { class: 'num' }, nf().format(r.counted)),
          h('td', { class: 'num' }, eps(r.epsilon))))))));
    }
    if (o.admin) out.push(publishNow(l));
    return out;
  }

  /** "Publish the figures now", after a confirmation that says what it does and costs. */
  function publishNow(l: PrivacyReport['ledger']): HTMLElement {
    const st = status();
    const box = h('div', { class: 'pp-publish' });
    const ask = h('button', { type: 'button', class: 'secondary', 'data-publish': '' }, t('pp_publish')) as HTMLButtonElement;
    const confirmBox = h('div', { class: 'confirm', role: 'group', 'aria-labelledby': 'pp-confirm-t', hidden: true },
      h('p', { id: 'pp-confirm-t' }, t('pp_publish_confirm', { n: nf().format(l.uncounted), d: fmtDate(l.next_release) })));
    const yes = h('button', { type: 'button', 'data-publish-confirm': '', onclick: async () => {
      yes.disabled = true;
      st.clear();
      try {
        const made = await call<{ id: number; counted: number; epsilon: number }>('POST', `/api/v1/admin/campaigns/${encodeURIComponent(o.slug)}/releases`, {});
        // The ledger is redrawn with the new release; the panel's live line says what happened.
        if (!(await load())) return;
        live.className = 'status ok';
        live.replaceChildren(t('pp_published', { n: nf().format(made.counted), e: eps(made.epsilon) }));
        ledger.querySelector<HTMLButtonElement>('[data-publish]')?.focus();
      } catch (e) {
        st.fail(e);
        yes.disabled = false;
      }
    } }, t('pp_publish_yes')) as HTMLButtonElement;
    const no = h('button', { type: 'button', class: 'secondary', onclick: () => { confirmBox.hidden = true; ask.hidden = false; ask.focus(); } }, t('pp_cancel'));
    confirmBox.append(h('div', { class: 'actions' }, yes, no));
    ask.addEventListener('click', () => { confirmBox.hidden = false; ask.hidden = true; yes.focus(); });
    box.append(ask, confirmBox, st.el);
    return box;
  }

  load();
  return {
    el,
    preview: (text: string) => {
      window.clearTimeout(timer);
      const b = budgetOf(text);
      if (b === null) {
        // Nothing to ask the server (it would answer 422): say why the preview stays as it is.
        seq++;
        body.setAttribute('aria-busy', 'false');
        live.className = 'status error';
        live.replaceChildren(t('pp_budget_invalid'));
        return;
      }
      timer = window.setTimeout(() => {
        budget = b;
        load();
      }, DEBOUNCE_MS);
    },
    refresh: load,
  };
}
