// The submitter's page: /embed/{slug}/edit#id=…&token=… (link given at submission). Shows their entry
// (answers in the same form as the widget, the exact point on a map or as coordinates), saves
// corrections (PATCH), and erases it (DELETE). The token only ever travels in the X-Edit-Token header:
// it is read from the fragment, dropped from the address bar at once and kept in memory.
import { Api, ApiError } from '../lib/api';
import { breaksFor } from '../lib/choropleth';
import { chooseLang, formatDate, msg, tr } from '../lib/i18n';
import { parseEditHash } from '../lib/options';
import { parseOwn } from '../lib/own';
import { describeSubmitError } from '../lib/protect';
import type { Campaign, DistrictCollection, Lang, OwnSubmission } from '../lib/types';
import { errorMessage, fieldLabel, validateAnswers, validateField, type RawValue } from '../lib/validate';
import { h, setStyle, uid } from './dom';
import { applyFieldErrors, renderField, showSummary, type FieldRef } from './fields';
import { LocationPicker } from './location';
import { hasWebGL, linkMapStyles, loadMap } from './maplibre';
import type { MapView } from './mapview';

export interface EditPageOptions { api: string; assets: string; slug: string; lang: string | null; onLang: (l: Lang) => void }

export async function mountEditPage(mount: HTMLElement, o: EditPageOptions): Promise<void> {
  const api = new Api(o.api);
  const { id, token } = parseEditHash(location.hash);
  // The token must not stay in the address bar (history, screenshots, shoulder surfing): memory only.
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  let campaign: Campaign | null = null;
  try {
    campaign = await api.campaign(o.slug);
  } catch { /* the page still works without the title */ }
  const lang = chooseLang(o.lang, null, campaign?.default_lang);
  o.onLang(lang);
  const t = (k: Parameters<typeof msg>[1], p?: Record<string, string | number>) => msg(lang, k, p);
  const title = campaign ? tr(campaign.title, lang) : o.slug;
  const status = h('div', { class: 'cm-edit-status', role: 'status' });
  const live = h('div', { class: 'cm-sr', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const back = h('p', null, h('a', { href: `${api.base}/embed/${encodeURIComponent(o.slug)}?lang=${lang}` }, t('backToMap')));
  const root = h('div', { class: 'cm cm-page', lang },
    h('header', { class: 'cm-head' }, h('h1', { class: 'cm-title' }, t('editTitle')), h('p', { class: 'cm-meta' }, title)));
  const body = h('div', { class: 'cm-panel cm-edit' });
  root.append(body, live);
  mount.replaceChildren(root);
  document.title = `${t('editTitle')} — ${title}`;
  const say = (text: string) => {
    live.textContent = '';
    setTimeout(() => { live.textContent = text; }, 60);
  };

  if (!id || !token) {
    body.append(h('p', { class: 'cm-alert' }, t('editMissing')), back);
    return;
  }
  const gone = (s: number) => s === 404 || s === 403 || s === 401 || s === 410;
  const loadErrorText = (err: ApiError) => gone(err.status) ? t('editNotFound')
    : err.status === 0 ? t('errNetwork')
    : err.status === 503 ? t('errUnavailable', { s: err.retryAfter ?? 30 })
    : t('errGeneric', { s: err.problem.detail || `HTTP ${err.status}` });

  // ------------------------------------------------------------ erase
  const eraseSection = (onErased: () => void): HTMLElement => {
    const hId = uid('cm-erase-h');
    const eraseStatus = h('div', { class: 'cm-edit-status', role: 'status' });
    const btn = h('button', { class: 'cm-btn cm-danger', type: 'button' }, t('editConfirm'));
    const section = h('section', { class: 'cm-stack cm-erase', 'aria-labelledby': hId },
      h('h2', { id: hId }, t('editEraseTitle')), h('p', null, t('editEraseIntro')), h('div', { class: 'cm-actions' }, btn), eraseStatus);
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      eraseStatus.replaceChildren(t('sending'));
      try {
        await api.erase(o.slug, id, token);
        btn.remove();
        onErased();
        eraseStatus.replaceChildren(h('p', { class: 'cm-success' }, t('editDone')));
      } catch (e) {
        btn.disabled = false;
        eraseStatus.replaceChildren(h('p', { class: 'cm-alert' }, loadErrorText(e instanceof ApiError ? e : new ApiError(0, {}))));
      }
    });
    return section;
  };

  // ------------------------------------------------------------ load
  status.textContent = t('editLoading');
  body.append(status);
  let own: OwnSubmission;
  let districts: DistrictCollection | null = null;
  try {
    [own, districts] = await Promise.all([
      api.own(o.slug, id, token),
      api.districts(o.slug).catch(() => null),
    ]);
  } catch (e) {
    const err = e instanceof ApiError ? e : new ApiError(0, {});
    status.replaceChildren(h('p', { class: 'cm-alert' }, loadErrorText(err)));
    // Erasing may still work when reading failed for another reason than a missing entry.
    if (!gone(err.status)) body.append(eraseSection(() => {}));
    body.append(back);
    return;
  }
  status.replaceChildren();
  const fields = campaign?.form.fields ?? [];
  const entry = parseOwn(own, fields, lang);
  const values: Record<string, RawValue> = { ...entry.values };
  let errors: { fields: Record<string, string>; geometry: string | null; general: string[] } = { fields: {}, geometry: null, general: [] };
  const refs: Record<string, FieldRef> = {};

  // Facts about the entry.
  const facts = h('ul', { class: 'cm-facts' });
  const renderFacts = () => {
    const items: string[] = [];
    if (entry.created) items.push(t('editSentOn', { d: formatDate(entry.created, lang) }) + (entry.updated && entry.updated !== entry.created ? `, ${t('editUpdatedOn', { d: formatDate(entry.updated, lang) })}` : ''));
    if (entry.status) {
      const st = entry.status === 'published' ? t('statusPublished') : entry.status === 'pending' ? t('statusPending') : entry.status === 'hidden' ? t('statusHidden') : entry.status;
      items.push(t('editStatus', { s: st }));
    }
    if (entry.district) items.push(t('editDistrict', { d: entry.district }));
    facts.replaceChildren(...items.map((x) => h('li', null, x)));
    facts.hidden = !items.length;
  };
  renderFacts();

  // ------------------------------------------------------------ location (its map stays hidden until MapLibre loads, at the end)
  const mapEl = h('div', { class: 'cm-map' });
  setStyle(mapEl, { '--cm-map-h': '320px', '--cm-map-h-narrow': '280px' });
  const mapBox = h('div', { class: 'cm-mapbox cm-edit-map' }, mapEl);
  mapBox.hidden = true;
  let mapView: MapView | null = null;
  const picker = new LocationPicker({
    lang,
    districts: () => districts,
    bounds: campaign?.bounds,
    pin: entry.lon != null && entry.lat != null ? { lon: entry.lon, lat: entry.lat } : null,
    decimals: 6,
    how: { map: 'editLocationHowMap', noMap: 'editLocationHowNoMap' },
    mapBox,
    announce: say,
    onPin: () => { errors.geometry = null; },
  });

  // ------------------------------------------------------------ form
  const summary = h('div', { class: 'cm-summary', tabindex: '-1' });
  summary.hidden = true;
  const general = h('div', { class: 'cm-alert', role: 'alert' });
  general.hidden = true;
  const save = h('button', { class: 'cm-btn cm-submit', type: 'submit' }, t('editSave'));
  const form = h('form', { class: 'cm-form', novalidate: true });
  form.append(summary, picker.el);
  for (const f of fields) {
    const { el, ref } = renderField(f, lang, values[f.key], (v) => {
      values[f.key] = v;
      if (errors.fields[f.key] && validateField(f, v).ok) {
        delete errors.fields[f.key];
        applyFieldErrors(refs, errors.fields);
      }
    });
    refs[f.key] = ref;
    form.append(el);
  }
  const saved = h('div', { class: 'cm-edit-status', role: 'status' });
  form.append(general, h('div', { class: 'cm-actions' }, save), saved);

  const apply = () => {
    applyFieldErrors(refs, errors.fields);
    picker.showError(errors.geometry);
    general.hidden = !errors.general.length;
    general.replaceChildren(...errors.general.map((g) => h('p', null, g)));
  };
  const summarize = () => {
    const colon = lang === 'fr' ? ' : ' : ': ';
    const items: { text: string; target: () => HTMLElement | null | undefined }[] = [];
    if (errors.geometry) items.push({ text: t('locationLegend') + colon + errors.geometry, target: () => picker.focusTarget() });
    for (const f of fields) if (errors.fields[f.key]) items.push({ text: fieldLabel(f, lang) + colon + errors.fields[f.key], target: () => refs[f.key]?.controls[0] });
    showSummary(summary, items, lang);
  };
  let busy = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (busy) return;
    const v = validateAnswers(fields, values);
    errors = { fields: {}, geometry: null, general: [] };
    for (const [k, fe] of Object.entries(v.errors)) errors.fields[k] = errorMessage(fe, lang);
    errors.geometry = picker.check();
    saved.replaceChildren();
    apply();
    if (Object.keys(errors.fields).length || errors.geometry) {
      summarize();
      return;
    }
    summary.hidden = true;
    busy = true;
    save.disabled = true;
    save.replaceChildren(h('span', { class: 'cm-spinner', 'aria-hidden': 'true' }), t('sending'));
    form.setAttribute('aria-busy', 'true');
    try {
      const updated = await api.update(o.slug, id, token, { type: 'Feature', geometry: { type: 'Point', coordinates: [picker.pin!.lon, picker.pin!.lat] }, properties: v.properties });
      if (updated) {
        const n = parseOwn(updated, fields, lang);
        Object.assign(entry, { status: n.status ?? entry.status, district: n.district ?? entry.district, created: n.created ?? entry.created, updated: n.updated ?? entry.updated });
      }
      renderFacts();
      saved.replaceChildren(h('p', { class: 'cm-success' }, t('editSaved')));
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, { detail: String(e) });
      errors = gone(err.status) ? { fields: {}, geometry: null, general: [t('editNotFound')] } : describeSubmitError(err, lang, fields.map((f) => f.key), 'editRefused');
      apply();
      if (Object.keys(errors.fields).length || errors.geometry) summarize();
      else say(errors.general.join(' '));
    } finally {
      busy = false;
      save.disabled = false;
      save.replaceChildren(t('editSave'));
      form.setAttribute('aria-busy', 'false');
    }
  });

  const intro = h('p', null, t('editIntro', { t: title }));
  const erase = eraseSection(() => {
    form.remove();
    facts.remove();
    intro.remove();
    mapView?.destroy();
    mapView = null;
  });
  body.replaceChildren(intro, facts, form, erase, back);

  // ------------------------------------------------------------ map (when WebGL works)
  if (!campaign || !districts || !hasWebGL()) return;
  try {
    const [{ MapView, maplibregl }] = await Promise.all([loadMap(o.assets), linkMapStyles(mapEl, o.assets)]);
    if (!mapEl.isConnected) return;
    mapBox.hidden = false;
    mapView = new MapView(maplibregl, {
      container: mapEl,
      lang,
      campaign,
      districts,
      breaks: breaksFor(districts),
      tiles: null,
      view: picker.pin ? { ...picker.pin, zoom: 15 } : null,
      placing: true,
      describedBy: picker.howId,
      onPick: (x, y, kind) => picker.pickOnMap(x, y, kind),
      onConfirm: () => { const first = fields[0] ? refs[fields[0].key]?.controls[0] : save; first?.focus(); },
      onInspect: () => {},
      onError: (e) => console.warn('[civicmap] map:', e),
    });
    picker.attachMap(mapView);
  } catch (e) {
    console.warn('[civicmap] no map:', e);
    mapBox.hidden = true;
    picker.attachMap(null);
  }
}
