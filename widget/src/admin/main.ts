// The staff console at /admin: plain TypeScript and DOM, no framework. It asks the server who is
// signed in and shows only what that role may do; the server enforces it again on every call
// (src/http/routes.rs). Hash routes: #/campaigns, #/campaign/new, #/campaign/{slug},
// #/moderation/{slug}, #/downloads/{slug}, #/dashboard/{slug}, #/tokens, #/audit. Maps: maps.ts.
import { Me, call, signIn, signOut, whenSignedOut, whoAmI } from './api';
import { Key, Lang, lang, setLang, t } from './i18n';
import { type Basemap, NoWebGL, addPolygons, boundsOf, consoleMap, removeMaps } from './maps';
import { type Campaign, type Field, type Pressure } from './model';
import { type PrivacyPanel, budgetOf, privacyPanel } from './privacy';
import { field, fmtDate, h, input, loc, problemText, scroller, select, status } from './ui';
import {
  DEFAULT_BUDGET, DEFAULT_MAP_RESOLUTION, H3_RESOLUTIONS, MAX_BUDGET, MIN_BUDGET, type Provenance, type SeriesRow,
  breakdownColumn, formatArea, formatLength, isEstimated, likelihoodFactor, numberMayBePublic, parseSeries, sumSensitivity,
} from '../lib/figures';
import { interiorPoint } from '../lib/geo';
import { computeBreaks, colorFor, WITHHELD_COLOR } from '../lib/choropleth';
import { PROGRESS_CLASSES as PROGRESS, progressClass } from '../lib/staffmap';
import type { DistrictFeature } from '../lib/types';

const root = document.getElementById('console') as HTMLElement;
let me: Me | null = null;

// ------------------------------------------------------------------ shell

function allowed(view: string): boolean {
  if (!me) return false;
  if (me.role === 'admin') return true;
  if (view === 'dashboard') return true;
  if (me.role === 'moderator') return view === 'moderation';
  return view === 'downloads';
}

function shell(main: HTMLElement): void {
  const switchLang = h('button', { type: 'button', class: 'link', lang: lang() === 'fr' ? 'en' : 'fr', 'aria-label': t('lang_switch_label'), onclick: () => {
    setLang(lang() === 'fr' ? 'en' : 'fr');
    route();
  } }, t('lang_switch'));
  const header = h('header', { class: 'top' }, h('p', { class: 'brand' }, t('title')));
  const nav: [string, Key][] = [];
  if (me) {
    if (me.role === 'admin') nav.push(['#/campaigns', 'nav_campaigns'], ['#/tokens', 'nav_tokens'], ['#/audit', 'nav_audit']);
    if (me.role === 'moderator') nav.push(['#/moderation/', 'nav_moderation']);
    if (me.role === 'planner') nav.push(['#/downloads/', 'nav_downloads']);
    if (me.role !== 'admin') nav.push(['#/dashboard/', 'nav_dashboard']);
    const here = location.hash || '#/';
    header.append(
      h('nav', { 'aria-label': t('nav') }, h('ul', {}, ...nav.map(([href, key]) => h('li', {}, h('a', { href, 'aria-current': here.startsWith(href) ? 'page' : undefined }, t(key)))))),
      h('p', { class: 'who' }, t('signed_in_as', { name: me.name, role: t(`role_${me.role}` as Key) })),
      h('button', { type: 'button', class: 'secondary', onclick: async () => { await signOut().catch(() => {}); me = null; location.hash = '#/'; route(); } }, t('signout')),
    );
  }
  header.append(switchLang);
  document.documentElement.lang = lang();
  document.title = t('title');
  main.id = 'main';
  main.tabIndex = -1;
  removeMaps(root);
  root.replaceChildren(h('a', { href: '#main', class: 'skip', onclick: (e: Event) => { e.preventDefault(); main.focus(); } }, t('skip')), header, main);
}

async function route(): Promise<void> {
  if (!me) me = await whoAmI();
  const main = h('main', {});
  shell(main);
  if (!me) return signInView(main);
  // `#/view/arg?query`: the query (a queue, audit filters) is read by the view itself.
  const [, view = '', arg = ''] = (location.hash || '#/').split('?')[0].split('/');
  const target = view || (me.role === 'admin' ? 'campaigns' : me.role === 'moderator' ? 'moderation' : 'downloads');
  if (!allowed(target)) {
    main.append(h('p', { class: 'status error' }, t('forbidden_view')));
    return;
  }
  const slug = decodeURIComponent(arg);
  try {
    if (target === 'campaigns') await campaignsView(main);
    else if (target === 'campaign') await campaignView(main, slug === 'new' ? null : slug);
    else if (target === 'moderation') await moderationView(main, slug);
    else if (target === 'downloads') await downloadsView(main, slug);
    else if (target === 'dashboard') await dashboardView(main, slug);
    else if (target === 'tokens') await tokensView(main);
    else if (target === 'audit') await auditView(main);
  } catch (e) {
    main.append(h('p', { class: 'status error', role: 'alert' }, ...problemText(e)));
  }
  const heading = main.querySelector('h1');
  if (heading) heading.tabIndex = -1;
}

// ------------------------------------------------------------------ sign-in

function signInView(main: HTMLElement): void {
  const token = input({ type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true });
  const st = status();
  const form = h('form', { class: 'card narrow', onsubmit: async (e: Event) => {
    e.preventDefault();
    st.clear();
    try {
      me = await signIn(token.value.trim());
      token.value = '';
      route();
    } catch (err) {
      st.fail(err);
      token.focus();
    }
  } },
  h('h1', {}, t('signin_title')),
  h('p', {}, t('signin_help')),
  field(t('token'), token),
  h('button', { type: 'submit' }, t('signin')),
  st.el,
  h('p', { class: 'hint' }, t('signin_help_first')));
  main.append(form);
  token.focus();
}

// ------------------------------------------------------------------ campaigns

async function campaignsView(main: HTMLElement): Promise<void> {
  const [list, queues] = await Promise.all([call<Campaign[]>('GET', '/api/v1/admin/campaigns'), staffCampaigns()]);
  const queueOf = new Map((queues ?? []).map((q) => [q.slug, q]));
  const rows = await Promise.all(list.map(async (c) => {
    let districts = '—';
    let count = '—';
    if (c.status !== 'draft') {
      try {
        const fc = await call<{ total?: { count: number | null }; features: unknown[] }>('GET', `/api/v1/campaigns/${c.slug}/districts.geojson`);
        districts = String(fc.features.length);
        count = fc.total?.count == null ? t('withheld') : String(fc.total.count);
      } catch { /* shown as — */ }
    }
    return h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `#/campaign/${encodeURIComponent(c.slug)}` }, loc(c.title)), h('br'), h('code', {}, c.slug)),
      h('td', {}, h('span', { class: `badge ${c.status}` }, t(`status_${c.status}` as Key))),
      h('td', {}, t(`moderation_${c.moderation}` as Key)),
      h('td', { class: 'num' }, districts),
      h('td', { class: 'num' }, count),
      h('td', {}, queueOf.has(c.slug) ? t('pending_reported', { p: queueOf.get(c.slug)?.pending ?? 0, r: queueOf.get(c.slug)?.reported ?? 0 }) : '—'),
      h('td', {}, h('a', { href: `#/dashboard/${encodeURIComponent(c.slug)}` }, t('nav_dashboard')), ' · ', h('a', { href: `#/moderation/${encodeURIComponent(c.slug)}` }, t('nav_moderation')), ' · ', h('a', { href: `#/downloads/${encodeURIComponent(c.slug)}` }, t('nav_downloads'))));
  }));
  // Flooded campaigns first, above the table, where no one can miss them.
  const banners = list.map((c) => pressureBanner(c.pressure ?? queueOf.get(c.slug)?.pressure, h('a', { href: `#/campaign/${encodeURIComponent(c.slug)}` }, loc(c.title))));
  main.append(
    h('h1', { id: 'campaigns-h' }, t('campaigns')),
    ...banners.filter((b): b is HTMLElement => !!b),
    h('p', {}, h('a', { class: 'button', href: '#/campaign/new' }, t('new_campaign'))),
    scroller('campaigns-h', h('table', {},
      h('thead', {}, h('tr', {}, ...(['col_title', 'col_status', 'col_moderation', 'col_districts', 'col_contributions', 'col_queues', 'col_actions'] as Key[]).map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, ...rows))),
  );
}

/**
 * The warning that a campaign is flooded ("under pressure"): every contribution now needs a proof of
 * work, which slows citizens down too, so staff should know and read the runbook. Null when it is not.
 * `name`: the campaign, on a page that lists several.
 */
function pressureBanner(p: Pressure | null | undefined, name?: Node): HTMLElement | null {
  if (!p) return null;
  return h('p', { class: 'pressure', role: 'status', 'data-pressure': p.difficulty },
    name ? [name, t('colon')] : null, t('pressure_since', { time: fmtDate(p.since), d: p.difficulty }));
}

function blankField(n: number): Field {
  return { key: `question_${n}`, type: 'choice', label: { fr: '', en: '' }, required: true, options: [{ value: 'oui', label: { fr: 'Oui', en: 'Yes' } }, { value: 'non', label: { fr: 'Non', en: 'No' } }] };
}

/** The form builder: one fieldset per question; `onChange` redraws the preview. */
function formBuilder(fields: Field[], onChange: () => void): HTMLElement {
  const box = h('div', { class: 'builder' });
  const draw = () => {
    box.replaceChildren(...fields.map((f, i) => {
      const key = input({ value: f.key, pattern: '[a-z][a-z0-9_]*', required: true, oninput: (e: Event) => { f.key = (e.target as HTMLInputElement).value; onChange(); } });
      const type = select((['choice', 'number', 'text', 'boolean'] as const).map((v) => [v, t(`type_${v}` as Key)]), f.type, { onchange: (e: Event) => {
        f.type = (e.target as HTMLSelectElement).value as Field['type'];
        if (f.type === 'choice' && !f.options?.length) f.options = blankField(i).options;
        if (f.type === 'text' && !f.max_length) f.max_length = 500;
        draw(); onChange();
      } });
      const required = h('input', { type: 'checkbox', checked: !!f.required, onchange: (e: Event) => { f.required = (e.target as HTMLInputElement).checked; onChange(); } });
      const rid = `req-${i}`;
      required.id = rid;
      const pub = h('input', { type: 'checkbox', id: `pub-${i}`, checked: !!f.public, 'aria-describedby': `pub-${i}-hint`, onchange: (e: Event) => { f.public = (e.target as HTMLInputElement).checked; onChange(); } });
      const lfr = input({ value: f.label.fr, required: true, oninput: (e: Event) => { f.label.fr = (e.target as HTMLInputElement).value; onChange(); } });
      const len = input({ value: f.label.en, required: true, oninput: (e: Event) => { f.label.en = (e.target as HTMLInputElement).value; onChange(); } });
      // Help under the question: sent when either language has some, the other then repeating
      // it (a citizen never sees an empty help in their language).
      const typed = { fr: f.help?.fr ?? '', en: f.help?.en ?? '' };
      const help = (l: 'fr' | 'en') => h('textarea', { rows: 2, oninput: (e: Event) => {
        typed[l] = (e.target as HTMLTextAreaElement).value;
        const [fr, en] = [typed.fr.trim(), typed.en.trim()];
        f.help = fr || en ? { fr: fr || en, en: en || fr } : null;
        onChange();
      } }, typed[l]);
      const parts: HTMLElement[] = [
        h('legend', {}, t('field', { n: i + 1 })),
        h('div', { class: 'row' }, field(t('key'), key), field(t('type'), type), h('div', { class: 'field check' }, required, h('label', { for: rid }, t('required')))),
        h('div', { class: 'row' }, field(t('label_fr'), lfr), field(t('label_en'), len)),
        h('div', { class: 'row' }, field(t('help_fr'), help('fr')), field(t('help_en'), help('en'))),
      ];
      if (f.type === 'choice' || f.type === 'boolean') {
        parts.push(h('div', { class: 'field check' }, pub, h('label', { for: `pub-${i}` }, t('public_answers'))), h('p', { class: 'hint', id: `pub-${i}-hint` }, t('public_answers_hint')));
      } else if (f.type !== 'number' && f.public) f.public = false;
      if (f.type === 'choice') {
        const opts = h('textarea', { rows: 3, oninput: (e: Event) => {
          f.options = (e.target as HTMLTextAreaElement).value.split('\n').map((l) => l.split('|').map((s) => s.trim())).filter((p) => p[0])
            .map(([value, fr, en]) => ({ value, label: { fr: fr || value, en: en || fr || value } }));
          onChange();
        } }, (f.options ?? []).map((o) => `${o.value} | ${o.label.fr} | ${o.label.en}`).join('\n'));
        parts.push(field(t('options'), opts));
      }
      if (f.type === 'number') {
        // Its sums may be public when its answers are whole numbers between a min and a max:
        // their noise is proportional to that range (the server refuses anything else).
        const sumHint = h('p', { class: 'hint', id: `pub-${i}-hint` });
        const pubSum = h('input', { type: 'checkbox', id: `pub-${i}`, checked: !!f.public, 'aria-describedby': `pub-${i}-hint`, onchange: (e: Event) => { f.public = (e.target as HTMLInputElement).checked; onChange(); } }) as HTMLInputElement;
        const syncPublic = () => {
          const ok = numberMayBePublic(f);
          pubSum.disabled = !ok;
          if (!ok && f.public) { f.public = false; pubSum.checked = false; }
          sumHint.replaceChildren(ok ? t('public_sums_hint', { range: new Intl.NumberFormat(lang() === 'fr' ? 'fr-FR' : 'en-GB').format(sumSensitivity(f.min as number, f.max as number)) }) : t('public_sums_needs'));
        };
        const num = (prop: 'min' | 'max') => input({ type: 'number', value: f[prop] ?? '', oninput: (e: Event) => {
          const v = (e.target as HTMLInputElement).value;
          f[prop] = v === '' ? null : Number(v);
          syncPublic();
          onChange();
        } });
        const whole = h('input', { type: 'checkbox', id: `int-${i}`, checked: !!f.integer, onchange: (e: Event) => { f.integer = (e.target as HTMLInputElement).checked; syncPublic(); onChange(); } });
        parts.push(h('div', { class: 'row' }, field(t('min'), num('min')), field(t('max'), num('max')),
          h('div', { class: 'field check' }, whole, h('label', { for: `int-${i}` }, t('integer')))),
        h('div', { class: 'field check' }, pubSum, h('label', { for: `pub-${i}` }, t('public_sums'))), sumHint);
        syncPublic();
      }
      if (f.type === 'text') {
        parts.push(field(t('max_length'), input({ type: 'number', min: 1, max: 10000, required: true, value: f.max_length ?? 500, oninput: (e: Event) => {
          const v = (e.target as HTMLInputElement).value;
          f.max_length = v === '' ? null : Number(v);
          onChange();
        } })));
      }
      parts.push(h('div', { class: 'actions' },
        i > 0 ? h('button', { type: 'button', class: 'secondary', onclick: () => { [fields[i - 1], fields[i]] = [fields[i], fields[i - 1]]; draw(); onChange(); } }, t('up')) : null,
        h('button', { type: 'button', class: 'secondary', onclick: () => { fields.splice(i, 1); draw(); onChange(); } }, t('remove'))));
      return h('fieldset', { class: 'question' }, ...parts);
    }), h('button', { type: 'button', class: 'secondary', onclick: () => { fields.push(blankField(fields.length + 1)); draw(); onChange(); } }, t('add_field')));
  };
  draw();
  return box;
}

/** The citizen's form as it will look (labels, types, required marks, options), in the console's language. */
function formPreview(fields: Field[]): HTMLElement {
  const l = lang();
  return h('div', { class: 'citizen' }, ...fields.map((f, i) => {
    const id = `pv-${i}`;
    const label = (f.label[l] || f.label.fr || f.key) + (f.required ? ' *' : '');
    const helpText = f.help ? f.help[l] || f.help.fr || f.help.en : '';
    const help = helpText ? h('p', { class: 'hint' }, helpText) : null;
    if (f.type === 'choice') {
      return h('fieldset', {}, h('legend', {}, label), help, ...(f.options ?? []).map((o, j) => h('div', {}, h('input', { type: 'radio', name: id, id: `${id}-${j}`, disabled: true }), h('label', { for: `${id}-${j}` }, o.label[l] || o.value))));
    }
    if (f.type === 'boolean') return h('div', {}, h('input', { type: 'checkbox', id, disabled: true }), h('label', { for: id }, label), help);
    return h('div', { class: 'field' }, h('label', { for: id }, label), help, h('input', { id, disabled: true, type: f.type === 'number' ? 'number' : 'text', min: f.min ?? undefined, max: f.max ?? undefined, step: f.type === 'number' && f.integer ? 1 : undefined, maxlength: f.type === 'text' ? f.max_length ?? undefined : undefined }));
  }));
}

async function campaignView(main: HTMLElement, slug: string | null): Promise<void> {
  const c: Campaign = slug
    ? await call<Campaign>('GET', `/api/v1/admin/campaigns/${encodeURIComponent(slug)}`)
    : { slug: '', title: { fr: '', en: '' }, description: { fr: '', en: '' }, status: 'draft', moderation: 'post', form: { fields: [blankField(1)] }, privacy: { min_count: 5, public_precision_m: 200, budget: DEFAULT_BUDGET, release_every: 'week', map_resolution: DEFAULT_MAP_RESOLUTION }, allowed_origins: [] };
  const fields: Field[] = JSON.parse(JSON.stringify(c.form.fields));
  main.append(h('h1', {}, slug ? `${t('campaign')}${t('colon')}${loc(c.title)}` : t('new_campaign')));
  const banner = pressureBanner(c.pressure);
  if (banner) main.append(banner);

  // Settings and form.
  const slugIn = input({ value: c.slug, required: true, pattern: '[a-z0-9][a-z0-9-]*', disabled: !!slug });
  const tfr = input({ value: c.title.fr, required: true });
  const ten = input({ value: c.title.en, required: true });
  const dfr = h('textarea', { rows: 2 }, c.description?.fr ?? '') as HTMLTextAreaElement;
  const den = h('textarea', { rows: 2 }, c.description?.en ?? '') as HTMLTextAreaElement;
  const mod = select([['post', t('moderation_post')], ['pre', t('moderation_pre')]], c.moderation);
  // Privacy: k and the precision; the budget ε, the release period and the map's hexagons of
  // the figures finer than a district (released with differential privacy).
  const k = input({ type: 'number', min: 1, value: c.privacy.min_count });
  const m = input({ type: 'number', min: 1, value: c.privacy.public_precision_m });
  const budget = input({ type: 'number', name: 'budget', min: MIN_BUDGET, max: MAX_BUDGET, step: 0.1, required: true, value: c.privacy.budget ?? DEFAULT_BUDGET });
  const every = select([['week', t('release_week')], ['day', t('release_day')]], c.privacy.release_every ?? 'week', { name: 'release_every' });
  const resolution = select(H3_RESOLUTIONS.map((r) => {
    const label = t('resolution_option', { r: r.resolution, area: formatArea(r.areaKm2, lang()), side: formatLength(r.edgeM, lang()) });
    return [String(r.resolution), r.resolution === DEFAULT_MAP_RESOLUTION ? t('resolution_default', { label }) : label];
  }), String(c.privacy.map_resolution ?? DEFAULT_MAP_RESOLUTION), { name: 'map_resolution' });
  const explained = h('p', { class: 'explain', 'data-privacy-explained': '' });
  const explain = () => {
    const res = H3_RESOLUTIONS.find((r) => String(r.resolution) === resolution.value) ?? H3_RESOLUTIONS[2];
    const e = budgetOf(budget.value);
    const x = new Intl.NumberFormat(lang() === 'fr' ? 'fr-FR' : 'en-GB', { maximumFractionDigits: 1 });
    explained.replaceChildren(t('privacy_explained', {
      k: k.value, m: m.value, area: formatArea(res.areaKm2, lang()), every: t(every.value === 'day' ? 'every_day' : 'every_week'),
      e: e === null ? budget.value : x.format(e), x: e === null ? 'e^ε' : x.format(likelihoodFactor(e)),
    }));
  };
  let panel: PrivacyPanel | null = null;
  for (const el of [k, m, budget]) el.addEventListener('input', explain);
  for (const el of [every, resolution]) el.addEventListener('change', explain);
  budget.addEventListener('input', () => panel?.preview(budget.value));
  explain();
  const origins = h('textarea', { rows: 2 }, (c.allowed_origins ?? []).join('\n')) as HTMLTextAreaElement;
  // Every submission and subscription pays this work from the first one (empty: only when the
  // campaign is under pressure).
  const pow = input({ type: 'number', name: 'proof_of_work', min: 1, max: 26, value: c.proof_of_work?.difficulty ?? '' });
  // Dates in the browser's time zone, sent as RFC 3339.
  const local = (iso: string | null | undefined) => {
    if (!iso) return '';
    const d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  };
  const opens = input({ type: 'datetime-local', value: local(c.opens_at) });
  const closes = input({ type: 'datetime-local', value: local(c.closes_at) });
  const targets = h('textarea', { rows: 3 }, Object.entries(c.targets ?? {}).map(([code, n]) => `${code} = ${n}`).join('\n')) as HTMLTextAreaElement;
  // The map behind the citizen's form, the address search, how long exact data is kept.
  const bm = c.basemap ?? null;
  const bmKind = select([['none', t('basemap_none')], ['raster', t('basemap_raster')], ['style', t('basemap_style')]], bm ? bm.type : 'none', { name: 'basemap' });
  const bmTiles = h('textarea', { rows: 2, name: 'basemap_tiles' }, bm && bm.type === 'raster' ? bm.tiles.join('\n') : '') as HTMLTextAreaElement;
  const bmAttr = input({ name: 'basemap_attribution', value: bm && bm.type === 'raster' ? bm.attribution ?? '' : '' });
  const bmZoom = input({ type: 'number', name: 'basemap_maxzoom', min: 0, max: 24, value: bm && bm.type === 'raster' ? bm.maxzoom ?? '' : '' });
  const bmUrl = input({ type: 'url', name: 'basemap_url', value: bm && bm.type === 'style' ? bm.url : '' });
  const rasterBox = h('div', {}, field(t('basemap_tiles'), bmTiles, t('basemap_tiles_hint')), h('div', { class: 'row' }, field(t('basemap_attribution'), bmAttr), field(t('basemap_maxzoom'), bmZoom)));
  const styleBox = h('div', {}, field(t('basemap_url'), bmUrl, t('basemap_url_hint')));
  const showBasemap = () => { rasterBox.hidden = bmKind.value !== 'raster'; styleBox.hidden = bmKind.value !== 'style'; };
  bmKind.addEventListener('change', showBasemap);
  showBasemap();
  const geocoder = input({ type: 'url', name: 'geocoder', value: c.geocoder?.url ?? '' });
  const retention = input({ type: 'number', name: 'retention_days', min: 0, max: 36500, value: c.retention_days ?? '' });
  const basemapBody = (): Basemap => {
    if (bmKind.value === 'raster') {
      const out: Record<string, unknown> = { type: 'raster', tiles: bmTiles.value.split('\n').map((x) => x.trim()).filter(Boolean), attribution: bmAttr.value.trim() };
      if (bmZoom.value !== '') out.maxzoom = Number(bmZoom.value);
      return out as Basemap;
    }
    if (bmKind.value === 'style') return { type: 'style', url: bmUrl.value.trim() };
    return null;
  };
  const preview = h('div', { class: 'preview', 'aria-live': 'off' });
  const redraw = () => preview.replaceChildren(formPreview(fields));
  redraw();
  const st = status();
  const settings = h('form', { class: 'card', onsubmit: async (e: Event) => {
    e.preventDefault();
    st.clear();
    const body: Record<string, unknown> = {
      title: { fr: tfr.value, en: ten.value },
      description: { fr: dfr.value, en: den.value },
      moderation: mod.value,
      form: { fields },
      privacy: { min_count: Number(k.value), public_precision_m: Number(m.value), budget: Number(budget.value), release_every: every.value, map_resolution: Number(resolution.value) },
      allowed_origins: origins.value.split('\n').map((s) => s.trim()).filter(Boolean),
      proof_of_work: pow.value === '' ? null : { difficulty: Number(pow.value) },
      opens_at: opens.value ? new Date(opens.value).toISOString() : null,
      closes_at: closes.value ? new Date(closes.value).toISOString() : null,
      basemap: basemapBody(),
      geocoder: geocoder.value.trim() ? { url: geocoder.value.trim() } : null,
      retention_days: retention.value === '' ? null : Number(retention.value),
      targets: Object.fromEntries(targets.value.split('\n').map((l) => l.split('=').map((x) => x.trim())).filter((p) => p[0] && p[1]).map(([code, n]) => [code, Number(n)])),
    };
    try {
      if (slug) {
        const updated = await call<Campaign>('PATCH', `/api/v1/admin/campaigns/${encodeURIComponent(slug)}`, body);
        st.ok(t('saved'));
        // The preview follows the saved settings (release period, public questions, k).
        if (panel && updated?.privacy) {
          const fresh = privacyPanelFor(slug, updated, fields, budget.value);
          panel.el.replaceWith(fresh.el);
          panel = fresh;
        }
      } else {
        body.slug = slugIn.value.trim();
        await call('POST', '/api/v1/admin/campaigns', body);
        location.hash = `#/campaign/${encodeURIComponent(String(body.slug))}`;
      }
    } catch (err) {
      st.fail(err);
    }
  } },
  h('h2', {}, t('campaign')),
  field(t('slug'), slugIn),
  h('div', { class: 'row' }, field(t('title_fr'), tfr), field(t('title_en'), ten)),
  h('div', { class: 'row' }, field(t('desc_fr'), dfr), field(t('desc_en'), den)),
  field(t('moderation_mode'), mod),
  h('fieldset', { class: 'privacy' }, h('legend', {}, t('privacy')), h('div', { class: 'row' }, field(t('min_count'), k), field(t('precision'), m)),
    field(t('budget'), budget, t('budget_hint')),
    h('div', { class: 'row' }, field(t('release_every'), every, t('release_hint')), field(t('map_resolution'), resolution, t('resolution_hint'))),
    explained),
  field(t('allowed_origins'), origins),
  field(t('proof_of_work'), pow, t('proof_of_work_hint')),
  h('div', { class: 'row' }, field(t('opens_at'), opens), field(t('closes_at'), closes)),
  field(t('targets'), targets),
  h('fieldset', {}, h('legend', {}, t('basemap')), field(t('basemap_kind'), bmKind, t('basemap_hint')), rasterBox, styleBox),
  field(t('geocoder'), geocoder, t('geocoder_hint')),
  field(t('retention'), retention, t('retention_hint')),
  h('div', { class: 'split' },
    h('section', { 'aria-labelledby': 'fb-h' }, h('h3', { id: 'fb-h' }, t('form_builder')), formBuilder(fields, redraw)),
    h('section', { 'aria-labelledby': 'pv-h' }, h('h3', { id: 'pv-h' }, t('preview')), preview)),
  h('button', { type: 'submit' }, slug ? t('save') : t('create')),
  st.el);
  main.append(settings);
  if (!slug) return;
  // What the budget typed above means for this campaign, and its ledger of releases.
  panel = privacyPanelFor(slug, c, fields, budget.value);
  main.append(panel.el);

  main.append(await districtsCard(slug, c), openCloseCard(slug, c), await embedCard(slug));
}

/** The privacy panel of a campaign's page: at the budget typed in its form, publishing for admins. */
function privacyPanelFor(slug: string, c: Campaign, fields: Field[], typed: string): PrivacyPanel {
  // A draft releases nothing (the server answers 409): no button to publish it.
  return privacyPanel({ slug, admin: me?.role === 'admin' && c.status !== 'draft', fields, k: c.privacy.min_count, releaseEvery: c.privacy.release_every ?? 'week', typed: true, budget: budgetOf(typed) });
}

/** A map box with its caption; `fail` puts a short note in place of the map (no WebGL, or it failed). */
function mapFigure(name: string, caption: string): { fig: HTMLElement; box: HTMLElement; fail: (e: unknown) => void } {
  const box = h('div', { class: 'map', 'data-map': name });
  const fig = h('figure', { class: 'map-figure' }, box, h('figcaption', {}, caption));
  return {
    fig,
    box,
    fail: (e) => {
      box.replaceWith(h('p', { class: 'note', 'data-map-note': name }, e instanceof NoWebGL ? t('map_needs_webgl') : t('map_failed', { e: String(e instanceof Error ? e.message : e) })));
    },
  };
}

type Polygons = { type: 'FeatureCollection'; features: { type: 'Feature'; properties: Record<string, unknown>; geometry: { type: string; coordinates: unknown } | null }[] };

/** District polygons on a map with their names and codes as HTML markers (no glyphs needed). */
async function districtsMap(box: HTMLElement, fc: Polygons, bm: Basemap, label: string): Promise<void> {
  // Names and codes only: outlines, not counts (the dashboard's map shows those).
  const polys = { ...fc, features: fc.features.filter((f) => f.geometry && (f.geometry.type === 'Polygon' || f.geometry.type === 'MultiPolygon'))
    .map((f) => ({ ...f, properties: { name: f.properties?.name, code: f.properties?.code } })) };
  const { map, ml } = await consoleMap(box, bm, boundsOf(polys), label);
  addPolygons(map, 'cm-districts', polys);
  for (const f of polys.features) {
    const el = h('div', { class: 'map-label' }, String(f.properties?.name ?? '?'), ' ', h('span', { class: 'code' }, `(${String(f.properties?.code ?? '?')})`));
    new ml.Marker({ element: el }).setLngLat(interiorPoint(f as unknown as DistrictFeature)).addTo(map);
  }
  box.dataset.ready = 'true';
}

async function districtsCard(slug: string, c: Campaign): Promise<HTMLElement> {
  let current: Polygons | null = null;
  try {
    current = await call<Polygons>('GET', `/api/v1/campaigns/${slug}/districts.geojson`);
  } catch { /* a draft has no public districts layer */ }
  const st = status();
  const summary = h('div', { class: 'districts-preview' });
  let pending: unknown = null;
  const confirm = h('button', { type: 'button', hidden: true, onclick: async () => {
    st.clear();
    try {
      const report = await call<{ imported?: number; districts?: number }>('PUT', `/api/v1/admin/campaigns/${slug}/districts`, pending, 'application/geo+json');
      const n = report.imported ?? report.districts ?? (pending as { features: unknown[] }).features.length;
      st.ok(t('districts_done', { n }));
      confirm.hidden = true;
    } catch (err) {
      st.fail(err);
    }
  } }, t('confirm_replace')) as HTMLButtonElement;
  const read = async (file: File) => {
    st.clear();
    confirm.hidden = true;
    try {
      const fc = JSON.parse(await file.text());
      if (!fc || !Array.isArray(fc.features)) throw new Error('FeatureCollection?');
      pending = fc;
      const items = (fc.features as { properties?: Record<string, unknown> }[]).slice(0, 200)
        .map((f) => h('li', {}, `${String(f.properties?.name ?? '?')} (${String(f.properties?.code ?? '?')})`));
      const m = mapFigure('districts-preview', t('districts_preview_map'));
      removeMaps(summary);
      summary.replaceChildren(h('p', {}, t('districts_preview', { n: fc.features.length })), m.fig, h('ul', { class: 'compact' }, ...items));
      confirm.hidden = false;
      districtsMap(m.box, fc as Polygons, c.basemap, t('districts_preview_map')).catch(m.fail);
    } catch (e) {
      st.fail(new Error(t('file_error', { e: String(e instanceof Error ? e.message : e) })));
    }
  };
  const fileIn = h('input', { type: 'file', accept: '.geojson,.json,application/geo+json,application/json', onchange: (e: Event) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) read(f);
  } });
  const drop = h('div', { class: 'drop' }, h('p', {}, t('districts_help')), field(t('choose_file'), fileIn));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = (e as DragEvent).dataTransfer?.files?.[0];
    if (f) read(f);
  });
  const n = current?.features.length ?? 0;
  const card = h('section', { class: 'card', 'aria-labelledby': 'd-h' }, h('h2', { id: 'd-h' }, t('districts')), h('p', {}, t('current_districts', { n })));
  if (current && n) {
    const m = mapFigure('districts-current', t('districts_current_map'));
    card.append(m.fig);
    // The public endpoint's basemap (the campaign's, or the server's own).
    campaignForm(slug)
      .then((pc) => districtsMap(m.box, current as Polygons, pc?.basemap, t('districts_current_map')))
      .catch(m.fail);
  }
  card.append(drop, summary, confirm, st.el);
  return card;
}

function openCloseCard(slug: string, c: Campaign): HTMLElement {
  const st = status();
  const set = async (s: string) => {
    try {
      await call('PATCH', `/api/v1/admin/campaigns/${encodeURIComponent(slug)}`, { status: s });
      route();
    } catch (err) {
      st.fail(err);
    }
  };
  return h('section', { class: 'card', 'aria-labelledby': 'o-h' }, h('h2', { id: 'o-h' }, t('open_close')),
    h('p', {}, t('col_status'), t('colon'), h('span', { class: `badge ${c.status}` }, t(`status_${c.status}` as Key))),
    c.status === 'open'
      ? h('button', { type: 'button', class: 'secondary', onclick: () => set('closed') }, t('close_now'))
      : h('button', { type: 'button', onclick: () => set('open') }, c.status === 'closed' ? t('reopen') : t('open_now')),
    st.el);
}

async function embedCard(slug: string): Promise<HTMLElement> {
  const snip = await call<{ script: string; element: string; iframe_url: string }>('GET', `/api/v1/admin/campaigns/${encodeURIComponent(slug)}/embed`);
  const block = (label: string, text: string, name: string) => {
    const ta = h('textarea', { readonly: true, rows: 2, 'data-snippet': name }, text) as HTMLTextAreaElement;
    const st = status();
    return h('div', {}, field(label, ta), h('button', { type: 'button', class: 'secondary', onclick: async () => {
      ta.select();
      try { await navigator.clipboard.writeText(text); } catch { document.execCommand('copy'); }
      st.ok(t('copied'));
    } }, t('copy')), st.el);
  };
  const previews = (['fr', 'en'] as Lang[]).map((l) => h('figure', {},
    h('figcaption', {}, t('live_preview', { lang: l === 'fr' ? 'français' : 'English' })),
    h('iframe', { src: `/embed/${encodeURIComponent(slug)}?lang=${l}`, title: `${t('live_preview', { lang: l })}`, loading: 'lazy', width: '100%', height: '520' })));
  return h('section', { class: 'card', 'aria-labelledby': 'e-h' }, h('h2', { id: 'e-h' }, t('embed')),
    block(t('embed_iframe'), snip.script, 'iframe'), block(t('embed_element'), snip.element, 'element'), block(t('embed_url'), snip.iframe_url, 'url'),
    h('div', { class: 'split' }, ...previews));
}

// ------------------------------------------------------------------ moderation

interface QueueItem {
  id: string;
  status: string;
  location: { type: 'Point'; coordinates: [number, number] } | null;
  answers: Record<string, unknown>;
  district?: { code: string; name: string } | null;
  created_at: string;
  report_count: number;
  reports?: { reason: string; reporter: string; created_at: string }[];
}

interface StaffCampaignRow { slug: string; title: { fr: string; en: string }; status: Campaign['status']; moderation: Campaign['moderation']; pending: number; reported: number; pressure?: Pressure | null }

/** The campaigns this staff member may pick from (any staff role); `null` when the list cannot be read. */
async function staffCampaigns(): Promise<StaffCampaignRow[] | null> {
  try {
    return await call<StaffCampaignRow[]>('GET', '/api/v1/staff/campaigns');
  } catch {
    return null;
  }
}

/**
 * Which campaign a moderator's or planner's page is about: a list to pick from, kept in the hash
 * route. Returns the picked campaign's row, when the list could be read.
 */
async function slugPicker(main: HTMLElement, view: string, slug: string): Promise<StaffCampaignRow | null> {
  const go = (v: string) => { location.hash = `#/${view}/${encodeURIComponent(v.trim())}`; };
  const list = await staffCampaigns();
  if (!list) {
    // The list could not be read: the identifier, typed.
    const s = input({ value: slug, required: true });
    main.append(h('form', { class: 'inline', onsubmit: (e: Event) => { e.preventDefault(); go(s.value); } },
      field(t('campaign_slug'), s), h('button', { type: 'submit' }, t('go'))));
    return null;
  }
  if (!list.length) {
    main.append(h('p', {}, t('no_campaigns')));
    return null;
  }
  const counts = (c: StaffCampaignRow) => (view === 'moderation' ? ` — ${t('pending_reported', { p: c.pending, r: c.reported })}` : '');
  const options: [string, string][] = list.map((c) => [c.slug, `${loc(c.title)} (${c.slug}, ${t(`status_${c.status}` as Key)})${counts(c)}`]);
  if (!slug) options.unshift(['', t('choose_campaign')]);
  const s = select(options, slug, { name: 'campaign', required: true });
  main.append(h('form', { class: 'inline picker', onsubmit: (e: Event) => { e.preventDefault(); if (s.value) go(s.value); } },
    field(t('campaign_pick'), s), h('button', { type: 'submit' }, t('go'))));
  return list.find((c) => c.slug === slug) ?? null;
}

/** The campaign's form (public endpoint, or the admin one for a draft), for labels of answers. */
async function campaignForm(slug: string): Promise<{ fields: Field[]; basemap: Basemap; status?: string; privacy?: Campaign['privacy'] } | null> {
  const s = encodeURIComponent(slug);
  try {
    const c = await call<Campaign>('GET', `/api/v1/campaigns/${s}`);
    return { fields: c.form.fields, basemap: c.basemap, status: c.status, privacy: c.privacy };
  } catch { /* a draft: admins only */ }
  if (me?.role !== 'admin') return null;
  try {
    const c = await call<Campaign>('GET', `/api/v1/admin/campaigns/${s}`);
    return { fields: c.form.fields, basemap: c.basemap, status: c.status, privacy: c.privacy };
  } catch {
    return null;
  }
}

/** An answer with its question's label and the option's label, in the console's language. */
function answerText(fields: Field[], key: string, v: unknown): [string, string] {
  const f = fields.find((x) => x.key === key);
  const label = f ? loc(f.label) || key : key;
  if (v === null || v === undefined || v === '') return [label, '—'];
  if (f?.type === 'choice') return [label, loc(f.options?.find((o) => o.value === v)?.label) || String(v)];
  if (f?.type === 'boolean' || typeof v === 'boolean') return [label, v === true || v === 'true' ? t('yes') : t('no')];
  return [label, String(v)];
}

async function moderationView(main: HTMLElement, slug: string): Promise<void> {
  main.append(h('h1', {}, t('moderation')));
  await slugPicker(main, 'moderation', slug);
  if (!slug) return;
  const queue = new URLSearchParams(location.hash.split('?')[1] ?? '').get('status') ?? 'pending';
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': t('moderation') }, ...['pending', 'reported', 'hidden', 'rejected'].map((q) =>
    h('a', { href: `#/moderation/${encodeURIComponent(slug)}?status=${q}`, 'aria-current': q === queue ? 'page' : undefined }, t(`queue_${q}` as Key))));
  const [page, form] = await Promise.all([
    call<{ items: QueueItem[] }>('GET', `/api/v1/moderation/campaigns/${encodeURIComponent(slug)}/queue?status=${queue}&limit=200`),
    campaignForm(slug),
  ]);
  const fields = form?.fields ?? [];
  const reason = input({ name: 'reason' });
  const st = status();
  const checks: HTMLInputElement[] = [];
  const decide = async (ids: string[], action: string) => {
    st.clear();
    let n = 0;
    try {
      for (const id of ids) {
        await call('POST', `/api/v1/moderation/campaigns/${encodeURIComponent(slug)}/submissions/${id}/decision`, { action, reason: reason.value.trim() || undefined });
        n++;
      }
      st.ok(t('decided', { n }));
      setTimeout(route, 400);
    } catch (err) {
      st.fail(err);
    }
  };
  const actions = queue === 'pending' ? ['approve', 'reject'] : queue === 'reported' ? ['hide', 'dismiss'] : ['restore'];
  const label = (a: string) => (a === 'dismiss' ? '✓' : t(a as Key));
  const pins: (HTMLElement | null)[] = [];
  /** One item is "current": its list entry and its marker are highlighted together. */
  const highlight = (i: number) => {
    list.querySelectorAll('li.item.current').forEach((el) => el.classList.remove('current'));
    pins.forEach((p) => p?.classList.remove('current'));
    list.querySelectorAll<HTMLElement>('li.item')[i]?.classList.add('current');
    pins[i]?.classList.add('current');
  };
  const items = page.items.map((item, i) => {
    const cb = h('input', { type: 'checkbox', id: `sel-${i}`, value: item.id }) as HTMLInputElement;
    checks.push(cb);
    const answers = Object.entries(item.answers).map(([key, v]) => answerText(fields, key, v));
    const reports = item.reports ?? [];
    return h('li', { class: 'item', tabindex: 0, 'data-id': item.id, 'data-n': i + 1, onfocus: () => highlight(i) },
      h('div', { class: 'item-head' }, h('span', { class: 'num-badge', 'aria-hidden': 'true' }, String(i + 1)),
        h('div', { class: 'check' }, cb, h('label', { for: `sel-${i}` }, t('select_n', { n: i + 1 })))),
      h('dl', {},
        h('dt', {}, t('received')), h('dd', {}, fmtDate(item.created_at)),
        h('dt', {}, t('district')), h('dd', {}, item.district ? `${item.district.name} (${item.district.code})` : '—'),
        h('dt', {}, t('answers')), h('dd', {}, h('ul', { class: 'answers' }, ...answers.map(([q, a]) => h('li', {}, h('span', { class: 'q' }, q), t('colon'), a)))),
        reports.length ? [h('dt', {}, t('reports')), h('dd', {}, h('ul', { class: 'reports' }, ...reports.map((r) => h('li', {}, `${t('quoted', { s: r.reason })} — ${r.reporter}, ${fmtDate(r.created_at)}`))))] : null),
      h('div', { class: 'actions' }, ...actions.map((a) => h('button', { type: 'button', class: a === 'approve' ? '' : 'secondary', 'data-action': a, onclick: () => decide([item.id], a) }, label(a)))));
  });
  const list = h('ol', { class: 'queue' }, ...items);
  const bulk = h('div', { class: 'actions' },
    h('button', { type: 'button', class: 'secondary', onclick: () => checks.forEach((c) => { c.checked = true; }) }, t('select_all')),
    ...actions.map((a) => h('button', { type: 'button', class: 'secondary', onclick: () => decide(checks.filter((c) => c.checked).map((c) => c.value), a) }, `${label(a)} — ${t('selected_apply')}`)));
  list.addEventListener('keydown', (e) => {
    const ev = e as KeyboardEvent;
    if ((ev.target as HTMLElement).tagName === 'INPUT' && ev.key !== 'x') return;
    const li = (ev.target as HTMLElement).closest('li.item') as HTMLElement | null;
    if (!li) return;
    const all = [...list.querySelectorAll<HTMLElement>('li.item')];
    const at = all.indexOf(li);
    const press = (a: string) => li.querySelector<HTMLButtonElement>(`button[data-action="${a}"]`)?.click();
    if (ev.key === 'j') all[Math.min(at + 1, all.length - 1)]?.focus();
    else if (ev.key === 'k') all[Math.max(at - 1, 0)]?.focus();
    else if (ev.key === 'x') { const cb = li.querySelector<HTMLInputElement>('input[type=checkbox]'); if (cb) cb.checked = !cb.checked; }
    else if (ev.key === 'a') press('approve');
    else if (ev.key === 'r') press('reject');
    else if (ev.key === 'h') press('hide');
    else return;
    ev.preventDefault();
  });
  main.append(tabs, h('p', { class: 'hint' }, t('shortcuts')), field(t('reason'), reason), bulk, st.el);
  if (!page.items.length) {
    main.append(h('p', {}, t('queue_empty')));
    return;
  }
  // The queue on a map (exact positions: staff only), numbered as in the list.
  const m = mapFigure('moderation', t('queue_map'));
  main.append(h('div', { class: 'queue-layout' }, m.fig, list));
  const points = page.items.map((x) => x.location).filter((p): p is NonNullable<QueueItem['location']> => !!p && Array.isArray(p.coordinates));
  (async () => {
    const bounds = boundsOf({ features: points.map((g) => ({ geometry: g })) });
    const { map, ml } = await consoleMap(m.box, form?.basemap, bounds, t('queue_map'));
    try {
      const districts = await call<Polygons>('GET', `/api/v1/campaigns/${encodeURIComponent(slug)}/districts.geojson`);
      addPolygons(map, 'cm-districts', { ...districts, features: districts.features.map((f) => ({ ...f, properties: { ...f.properties, withheld: false, color: '#ffffff' } })) });
    } catch { /* a draft: no outlines */ }
    page.items.forEach((item, i) => {
      if (!item.location) { pins.push(null); return; }
      const pin = h('button', { type: 'button', class: 'map-pin', 'data-n': i + 1, 'aria-label': t('show_item', { n: i + 1 }), onclick: () => {
        const li = list.querySelectorAll<HTMLElement>('li.item')[i];
        li?.focus();
        li?.scrollIntoView({ block: 'nearest' });
        highlight(i);
      } }, String(i + 1));
      pins.push(pin);
      new ml.Marker({ element: pin }).setLngLat(item.location.coordinates).addTo(map);
    });
    const focused = list.querySelector<HTMLElement>('li.item:focus');
    if (focused) highlight(Number(focused.dataset.n) - 1);
    m.box.dataset.ready = 'true';
  })().catch(m.fail);
}

// ------------------------------------------------------------------ downloads

async function downloadsView(main: HTMLElement, slug: string): Promise<void> {
  main.append(h('h1', {}, t('downloads')));
  await slugPicker(main, 'downloads', slug);
  if (!slug) return;
  const s = encodeURIComponent(slug);
  const form = await campaignForm(slug);
  // The public's hexagons are never finer than the campaign's map resolution.
  const res = form?.privacy?.map_resolution ?? DEFAULT_MAP_RESOLUTION;
  const publicFields = (form?.fields ?? []).filter((f) => f.public);
  const links: [string, string][] = [
    [t('dl_districts'), `/api/v1/campaigns/${s}/districts.geojson`],
    [t('dl_agg_csv'), `/api/v1/campaigns/${s}/aggregates.csv`],
    [t('dl_agg_excel'), `/api/v1/campaigns/${s}/aggregates.csv?excel=1`],
    [t('dl_h3'), `/api/v1/campaigns/${s}/aggregates.geojson?by=h3:${res}`],
    ...publicFields.filter((f) => f.type === 'choice' || f.type === 'boolean')
      .map((f): [string, string] => [t('dl_breakdown', { q: loc(f.label) || f.key }), `/api/v1/campaigns/${s}/aggregates.csv?breakdown=${encodeURIComponent(f.key)}`]),
    ...publicFields.filter((f) => f.type === 'number')
      .map((f): [string, string] => [t('dl_sum', { q: loc(f.label) || f.key }), `/api/v1/campaigns/${s}/aggregates.csv?sum=${encodeURIComponent(f.key)}`]),
    [t('dl_timeseries'), `/api/v1/campaigns/${s}/timeseries.csv`],
    [t('dl_report_pdf'), `/api/v1/admin/campaigns/${s}/report.pdf?lang=${lang()}`],
    [t('dl_report_zip'), `/api/v1/admin/campaigns/${s}/report.zip?lang=${lang()}`],
    [t('dl_raw_geojson'), `/api/v1/admin/campaigns/${s}/submissions.geojson`],
    [t('dl_raw_csv'), `/api/v1/admin/campaigns/${s}/submissions.csv`],
  ];
  main.append(
    h('p', { class: 'explain' }, t('dl_explain', { every: t(form?.privacy?.release_every === 'day' ? 'every_day' : 'every_week') })),
    h('ul', { class: 'downloads' }, ...links.map(([label, href]) => {
      const query = new URLSearchParams(href.split('?')[1] ?? '');
      const extra = ['breakdown', 'sum'].map((p) => (query.get(p) ? `-${p}-${query.get(p)}` : '')).join('');
      const name = href.split('/').pop()?.split('?')[0] ?? 'export';
      const file = `${slug}-${name.replace(/(\.[a-z]+)$/, `${extra}$1`)}`;
      return h('li', {}, h('a', { class: 'button secondary', href, download: file }, label));
    })));
}

// ------------------------------------------------------------------ dashboard

interface DistrictFigures { code: string; name: string; count: number | null; withheld: boolean; target: number | null; progress: number | null }

const NO_TARGET = '#ffffff';

async function dashboardView(main: HTMLElement, slug: string): Promise<void> {
  main.append(h('h1', {}, t('dashboard')));
  const picked = await slugPicker(main, 'dashboard', slug);
  if (!slug) return;
  const banner = pressureBanner(picked?.pressure);
  if (banner) main.append(banner);
  const s = encodeURIComponent(slug);
  const [fc, form] = await Promise.all([
    call<{ min_count: number; total: { count: number | null; withheld: boolean }; features: { type: 'Feature'; geometry: { type: string; coordinates: unknown } | null; properties: DistrictFigures }[] }>('GET', `/api/v1/campaigns/${s}/districts.geojson`),
    campaignForm(slug),
  ]);
  const nf = new Intl.NumberFormat(lang() === 'fr' ? 'fr-FR' : 'en-GB');
  const fmt = (n: number | null) => (n === null ? t('withheld') : nf.format(n));
  const rows = fc.features.map(({ properties: d }) => {
    const pct = d.target && d.count !== null ? Math.min(100, Math.round((100 * d.count) / d.target)) : null;
    return h('tr', {}, h('th', { scope: 'row' }, `${d.name} (${d.code})`), h('td', { class: 'num' }, fmt(d.count)), h('td', { class: 'num' }, d.target === null ? '—' : fmt(d.target)),
      h('td', {}, pct === null ? '—' : h('span', { class: 'bar', role: 'img', 'aria-label': `${pct} %` }, h('span', { class: 'fill', style: `width:${pct}%` }), ` ${pct} %`)));
  });
  // The public's series (the session's cookie alone does not make this a staff request): one
  // estimate per release, noise added.
  const csv = await fetch(`/api/v1/campaigns/${s}/timeseries.csv`, { credentials: 'same-origin', cache: 'no-store' }).then((r) => (r.ok ? r.text() : ''));
  const { estimated: seriesEstimated, rows: series } = parseSeries(csv);
  const max = Math.max(1, ...series.map((x) => x.count ?? 0));
  const periodText = (x: SeriesRow) => (x.end ? t('series_range', { a: x.period, b: x.end.slice(0, 10) }) : x.period);

  // The choropleth: progress toward the target when the campaign has targets, else the count.
  const byTarget = fc.features.some((f) => f.properties.target);
  const breaks = computeBreaks(fc.features.map((f) => (f.properties.withheld ? null : f.properties.count)), fc.min_count);
  const colorOf = (d: DistrictFigures) => {
    if (d.withheld || d.count === null) return WITHHELD_COLOR;
    if (!byTarget) return colorFor(d.count, false, breaks);
    const cls = progressClass(d.count, d.target);
    return cls === null ? NO_TARGET : PROGRESS[cls].color;
  };
  const swatch = (color: string, hatched = false) => h('span', { class: `swatch${hatched ? ' hatched' : ''}`, style: hatched ? '' : `background:${color}`, 'aria-hidden': 'true' });
  const legend = h('ul', { class: 'legend', 'aria-label': t('legend') },
    ...(byTarget
      ? PROGRESS.map((c, i) => h('li', {}, swatch(c.color), i === PROGRESS.length - 1 ? t('legend_reached') : `${c.from}–${PROGRESS[i + 1].from - 1} %`))
        .concat(fc.features.some((f) => !f.properties.target) ? [h('li', {}, swatch(NO_TARGET), t('legend_no_target'))] : [])
      : breaks.map((b) => h('li', {}, swatch(b.color), b.to === null ? `≥ ${nf.format(b.from)}` : `${nf.format(b.from)}–${nf.format(b.to)}`))),
    h('li', {}, swatch(WITHHELD_COLOR, true), t('legend_withheld', { k: fc.min_count })));
  const m = mapFigure('dashboard', byTarget ? t('map_progress') : t('map_counts'));
  m.fig.append(legend);

  main.append(
    h('p', { class: 'explain' }, t('dashboard_public', { k: fc.min_count })),
    h('p', { class: 'total' }, t('total'), t('colon'), h('strong', {}, fmt(fc.total.count))),
    h('h2', { id: 'dist-h' }, t('per_district')),
    h('div', { class: 'split' }, m.fig,
      scroller('dist-h', h('table', { class: 'districts' }, h('thead', {}, h('tr', {}, ...(['district', 'col_contributions', 'target', 'progress'] as Key[]).map((k) => h('th', { scope: 'col' }, t(k))))), h('tbody', {}, ...rows)))),
    h('h2', { id: 'time-h' }, t('over_time')),
    h('p', { class: 'explain', 'data-series-basis': seriesEstimated ? 'estimate' : 'exact' }, t(seriesEstimated ? 'series_estimated' : 'series_exact')),
    series.length ? '' : h('p', {}, t('series_empty')),
    scroller('time-h', h('table', { class: 'series' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('period')), h('th', { scope: 'col' }, t(seriesEstimated ? 'col_estimate' : 'col_contributions')))),
      h('tbody', {}, ...series.map((x) => h('tr', {}, h('th', { scope: 'row' }, periodText(x)), h('td', {}, h('span', { class: 'bar wide' }, h('span', { class: 'fill', style: `width:${Math.round((100 * (x.count ?? 0)) / max)}%` })), ` ${fmt(x.count)}`)))))),
  );
  const withColor = { type: 'FeatureCollection' as const, features: fc.features.map((f) => ({ ...f, properties: { ...f.properties, color: colorOf(f.properties) } })) };
  consoleMap(m.box, form?.basemap, boundsOf(fc), byTarget ? t('map_progress') : t('map_counts')).then(({ map }) => {
    addPolygons(map, 'cm-districts', withColor);
    m.box.dataset.ready = 'true';
  }).catch(m.fail);

  // Breakdowns by answer: moderators see the public's (estimates, by public fields only);
  // planners and admins exact counts, by any choice or yes/no field, labelled not public.
  const staff = me?.role === 'planner' || me?.role === 'admin';
  const fields = (form?.fields ?? []).filter((f) => (f.type === 'choice' || f.type === 'boolean') && (staff || f.public));
  if (fields.length) {
    main.append(h('h2', {}, t('breakdowns')), h('p', { class: 'explain' }, t('breakdowns_explained', { k: fc.min_count })));
    for (const f of fields) main.append(await breakdownTable(slug, f, fmt, form?.privacy?.release_every ?? 'week'));
  }
  if (staff) main.append(await exactFigures(slug, form?.fields ?? [], nf));
  // The privacy ledger and what the campaign's budget means (staff: it shows exact counts).
  if (staff && form?.privacy && form.status !== 'draft') {
    main.append(privacyPanel({ slug, admin: me?.role === 'admin', fields: form.fields, k: form.privacy.min_count, releaseEvery: form.privacy.release_every ?? 'week', typed: false }).el);
  }
}

type Breakdown = Provenance & { features: { properties: Record<string, unknown> & { code: string; name: string } }[]; breakdown_totals?: Record<string, number | null>; total: { count: number | null } };

/**
 * A breakdown by one answer, per district. The public's (a moderator's view) are estimates,
 * `estimate_F=v`, labelled with their release; staff's (planners and admins, whose session
 * sends its CSRF token) are exact, `F=v`, labelled as not public.
 */
async function breakdownTable(slug: string, f: Field, fmt: (n: number | null) => string, every: 'day' | 'week'): Promise<HTMLElement> {
  const id = `bd-${f.key}`;
  const section = h('section', { class: 'breakdown', 'aria-labelledby': id, 'data-field': f.key }, h('h3', { id }, loc(f.label) || f.key));
  let data: Breakdown;
  try {
    data = await call<Breakdown>('GET', `/api/v1/campaigns/${encodeURIComponent(slug)}/aggregates.geojson?breakdown=${encodeURIComponent(f.key)}`, undefined, undefined, me?.role !== 'moderator');
  } catch (e) {
    section.append(h('p', { class: 'status error' }, ...problemText(e)));
    return section;
  }
  const estimated = isEstimated(data);
  const released = data.estimates?.released_at;
  section.dataset.basis = estimated ? 'estimate' : 'exact';
  section.append(h('p', { class: estimated ? 'basis' : 'basis warning' },
    !estimated ? t('basis_exact', { every: t(every === 'day' ? 'every_day' : 'every_week') })
      : released ? t('basis_estimates', { d: fmtDate(released) }) : t('basis_unreleased', { d: fmtDate(data.estimates?.next_release) })));
  const values: [string, string][] = f.type === 'choice'
    ? (f.options ?? []).map((o) => [o.value, loc(o.label) || o.value])
    : [['true', t('yes')], ['false', t('no')]];
  const column = (v: string) => breakdownColumn(f.key, v, estimated);
  // "No answer" is a column of the figures unless the question is required (the public's
  // estimates then have none: it would only hold noise).
  if (column('') in (data.breakdown_totals ?? {})) values.push(['', t('no_answer')]);
  const cell = (n: unknown) => h('td', { class: 'num' }, n === null || n === undefined ? t('withheld') : fmt(Number(n)));
  const rows = data.features.map(({ properties: p }) => h('tr', {},
    h('th', { scope: 'row' }, p.code ? `${p.name} (${p.code})` : t('outside')),
    ...values.map(([v]) => cell(p[column(v)])),
    cell(p.count)));
  const totals = data.breakdown_totals ?? {};
  section.append(scroller(id, h('table', { class: 'breakdown-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('district')), ...values.map(([, label]) => h('th', { scope: 'col', class: 'num' }, label)), h('th', { scope: 'col', class: 'num' }, t('total_short')))),
    h('tbody', {}, ...rows),
    h('tfoot', {}, h('tr', {}, h('th', { scope: 'row' }, t('total_short')), ...values.map(([v]) => cell(totals[column(v)])), cell(data.total.count))))));
  return section;
}

interface Figures {
  generated_at: string;
  total: { published: number; pending: number; hidden: number; rejected: number };
  outside_districts: number;
  districts: { code: string; name: string; published: number; pending: number }[];
  answers: { field: string; values: { value: string; count: number; districts: Record<string, number> }[] }[];
}

/** Exact figures (planners and admins): not k-protected, not public, labelled as such. */
async function exactFigures(slug: string, fields: Field[], nf: Intl.NumberFormat): Promise<HTMLElement> {
  const section = h('section', { class: 'card exact', 'aria-labelledby': 'x-h', 'data-exact': 'true' }, h('h2', { id: 'x-h' }, t('exact_title')), h('p', { class: 'warning' }, t('exact_warning')));
  let x: Figures;
  try {
    x = await call<Figures>('GET', `/api/v1/admin/campaigns/${encodeURIComponent(slug)}/figures`);
  } catch (e) {
    section.append(h('p', { class: 'status error' }, ...problemText(e)));
    return section;
  }
  const n = (v: number) => nf.format(v);
  section.append(
    h('p', { class: 'hint' }, t('exact_generated', { at: fmtDate(x.generated_at) })),
    h('dl', { class: 'exact-totals' },
      ...(['published', 'pending', 'hidden', 'rejected'] as const).flatMap((k) => [h('dt', {}, t(`exact_${k}` as Key)), h('dd', { 'data-total': k }, n(x.total[k]))]),
      h('dt', {}, t('outside')), h('dd', { 'data-total': 'outside' }, n(x.outside_districts))),
    h('h3', { id: 'xd-h' }, t('exact_districts')),
    scroller('xd-h', h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('district')), h('th', { scope: 'col', class: 'num' }, t('exact_published')), h('th', { scope: 'col', class: 'num' }, t('exact_pending')))),
      h('tbody', {}, ...x.districts.map((d) => h('tr', {}, h('th', { scope: 'row' }, `${d.name} (${d.code})`), h('td', { class: 'num' }, n(d.published)), h('td', { class: 'num' }, n(d.pending))))))),
  );
  for (const a of x.answers) {
    const f = fields.find((y) => y.key === a.field);
    const id = `xa-${a.field}`;
    const valueLabel = (v: string) => (f?.type === 'choice' ? loc(f.options?.find((o) => o.value === v)?.label) || v : v === 'true' ? t('yes') : v === 'false' ? t('no') : v || t('no_answer'));
    section.append(h('h3', { id }, f ? loc(f.label) || a.field : a.field),
      scroller(id, h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('answer')), h('th', { scope: 'col', class: 'num' }, t('total_short')), ...x.districts.map((d) => h('th', { scope: 'col', class: 'num' }, d.code)))),
        h('tbody', {}, ...a.values.map((v) => h('tr', {}, h('th', { scope: 'row' }, valueLabel(v.value)), h('td', { class: 'num' }, n(v.count)), ...x.districts.map((d) => h('td', { class: 'num' }, n(v.districts[d.code] ?? 0)))))))));
  }
  return section;
}

// ------------------------------------------------------------------ tokens and audit

interface TokenInfo { id: number; name: string; role: string; created_at: string; expires_at: string | null; revoked_at: string | null; last_used_at: string | null }

async function tokensView(main: HTMLElement): Promise<void> {
  const tokens = await call<TokenInfo[]>('GET', '/api/v1/admin/tokens');
  const now = Date.now();
  const stateOf = (x: TokenInfo) => (x.revoked_at ? 'revoked' : x.expires_at && Date.parse(x.expires_at) <= now ? 'expired' : 'active');
  const st = status();
  const name = input({ required: true, maxlength: 200 });
  const role = select([['admin', t('role_admin')], ['moderator', t('role_moderator')], ['planner', t('role_planner')]], 'moderator');
  const expires = input({ type: 'date' });
  const shown = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', onsubmit: async (e: Event) => {
    e.preventDefault();
    st.clear();
    try {
      const body: Record<string, unknown> = { name: name.value, role: role.value };
      if (expires.value) body.expires_at = new Date(`${expires.value}T23:59:59Z`).toISOString();
      const issued = await call<{ token: string }>('POST', '/api/v1/admin/tokens', body);
      const out = h('input', { readonly: true, value: issued.token, class: 'secret', id: 'new-token' });
      shown.replaceChildren(h('p', { class: 'status ok' }, t('token_shown_once')), field(t('token'), out));
      (out as HTMLInputElement).select();
      table.replaceWith(await tokenTable());
    } catch (err) {
      st.fail(err);
    }
  } }, h('h2', {}, t('token_create')), h('div', { class: 'row' }, field(t('token_name'), name), field(t('token_role'), role), field(t('token_expires'), expires)),
  h('button', { type: 'submit' }, t('token_create')), st.el, shown);
  const act = async (path: string, method: string, body: unknown) => {
    try {
      await call(method, path, body);
      table.replaceWith(await tokenTable());
    } catch (err) {
      st.fail(err);
    }
  };
  const tokenTable = async (): Promise<HTMLElement> => {
    const list = first ? tokens : await call<TokenInfo[]>('GET', '/api/v1/admin/tokens');
    first = false;
    const el = h('table', {}, h('thead', {}, h('tr', {}, ...(['col_id', 'col_name', 'col_role', 'col_state', 'token_expires', 'col_last_used', 'col_actions'] as Key[]).map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, ...list.map((x) => h('tr', {},
        h('td', { class: 'num' }, String(x.id)), h('th', { scope: 'row' }, x.name), h('td', {}, t(`role_${x.role}` as Key)),
        h('td', {}, t(`state_${stateOf(x)}` as Key)), h('td', {}, fmtDate(x.expires_at)), h('td', {}, fmtDate(x.last_used_at)),
        h('td', {}, stateOf(x) === 'revoked' ? '' : [
          h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('expire_now')}${t('colon')}${x.name}`, onclick: () => act(`/api/v1/admin/tokens/${x.id}`, 'PATCH', { expires_at: new Date().toISOString() }) }, t('expire_now')), ' ',
          h('button', { type: 'button', class: 'danger', 'aria-label': `${t('revoke')}${t('colon')}${x.name}`, onclick: () => act(`/api/v1/admin/tokens/${x.id}/revoke`, 'POST', {}) }, t('revoke'))])))));
    table = el;
    return el;
  };
  let first = true;
  let table: HTMLElement = h('div');
  table = await tokenTable();
  main.append(h('h1', {}, t('tokens')), form, table);
}

interface AuditEntry { id: number; at?: string; created_at?: string; actor: string; action: string; campaign?: string | null; subject?: string | null; reason?: string | null }

async function auditView(main: HTMLElement): Promise<void> {
  const q = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const action = input({ value: q.get('action') ?? '' });
  const campaign = input({ value: q.get('campaign') ?? '' });
  const form = h('form', { class: 'inline', onsubmit: (e: Event) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (action.value.trim()) p.set('action', action.value.trim());
    if (campaign.value.trim()) p.set('campaign', campaign.value.trim());
    location.hash = `#/audit/?${p}`;
  } }, field(t('filter_action'), action), field(t('filter_campaign'), campaign), h('button', { type: 'submit' }, t('filter')));
  const params = new URLSearchParams();
  if (q.get('action')) params.set('action', q.get('action') as string);
  if (q.get('campaign')) params.set('campaign', q.get('campaign') as string);
  const page = await call<{ entries: AuditEntry[] }>('GET', `/api/v1/admin/audit?${params}`);
  main.append(h('h1', {}, t('audit')), form, h('table', {},
    h('thead', {}, h('tr', {}, ...(['col_when', 'col_actor', 'col_action', 'col_subject', 'col_reason'] as Key[]).map((k) => h('th', { scope: 'col' }, t(k))))),
    h('tbody', {}, ...page.entries.map((e) => h('tr', {}, h('td', {}, fmtDate(e.at ?? e.created_at)), h('td', {}, e.actor), h('td', {}, h('code', {}, e.action)), h('td', {}, [e.campaign, e.subject].filter(Boolean).join(' / ')), h('td', {}, e.reason ?? ''))))));
}

// ------------------------------------------------------------------ start

const saved = new URLSearchParams(location.search).get('lang');
setLang(saved === 'en' || (!saved && navigator.language?.startsWith('en')) ? 'en' : 'fr');
whenSignedOut(() => { me = null; route(); });
window.addEventListener('hashchange', () => { route(); });
route();
