// The civicmap widget: header, map (or its text equivalent), contribution form, results table.
// Rendered into a shadow root by <civicmap-map> (element.ts), both on host pages and in the iframe page.
import { Api, ApiError, uuid4 } from '../lib/api';
import { describeSubmitError, minFillSeconds, ProofOfWork, sendProtected } from '../lib/protect';
import { breaksFor, colorFor, totalOf, type ClassBreak } from '../lib/choropleth';
import { chooseLang, formatContributions, formatCount, formatDate, formatRate, hasHouseholds, msg, tr, type MsgKey } from '../lib/i18n';
import { campaignState, type CampaignState, type Mode, type View } from '../lib/options';
import type { Campaign, DistrictCollection, DistrictFeature, Field, Lang, Story, SubmissionResult } from '../lib/types';
import { errorMessage, fieldLabel, validateAnswers, validateField, type RawValue } from '../lib/validate';
import { h, setStyle, uid } from './dom';
import { applyFieldErrors, renderField, renderHoneypot, showSummary, type FieldRef } from './fields';
import { renderFollow } from './follow';
import { LocationPicker } from './location';
import { renderStory } from './story';
import { hasWebGL, linkMapStyles, loadMap, preloadMap } from './maplibre';
import type { MapView, TileJson } from './mapview';

export interface AppOptions {
  /** Base URL of the civicmap server (API, tiles, edit page). */
  api: string;
  /** Base URL of the widget's static files (civicmap-map.js, …), ending with '/'. */
  assets: string;
  campaign: string;
  langAttr: string | null;
  docLang: string | null;
  mode: Mode | null;
  view: View | null;
  height: string | null;
  /** Skip the map (also automatic without WebGL). */
  noMap: boolean;
  /** Full-page rendering (the iframe page): h1 title and no outer border. */
  page: boolean;
  geocoder: string | null;
  /** Called whenever the title is known (the iframe page forwards it to embed.js). */
  onTitle?: (title: string) => void;
}

interface ErrorState { fields: Record<string, string>; geometry: string | null; general: string[] }

export class App {
  private o: AppOptions;
  private host: HTMLElement;
  private api: Api;
  lang: Lang;
  private campaign: Campaign | null = null;
  private districts: DistrictCollection | null = null;
  /** The campaign's story (milestones and updates), null when the server gave none. */
  private story: Story | null = null;
  private breaks: ClassBreak[] = [];
  private tiles: TileJson | null = null;
  private state: CampaignState = 'closed';
  mapView: MapView | null = null;
  private mapFailed = false;
  /** The map could not be loaded (network, CSP): the note says so (not "no WebGL"). */
  private mapUnavailable = false;
  /** The location block of the form (it owns the pin); null before the form and after a submission. */
  private picker: LocationPicker | null = null;
  private values: Record<string, RawValue> = {};
  private sending = false;
  private attempt: { key: string; fp: string } | null = null;
  /** When the form was shown (Date.now()), for Civicmap-Fill-Ms; 0 before. */
  private formStart = 0;
  /** Value of the honeypot field (empty for people). */
  private hp = '';
  private pow: ProofOfWork | null = null;
  private result: SubmissionResult | null = null;
  private errors: ErrorState = { fields: {}, geometry: null, general: [] };
  private updatedCode: string | null = null;
  private destroyed = false;
  private announceTimer = 0;
  private keyAnnounceTimer = 0;

  // DOM references (rebuilt by render()).
  private r: {
    info?: HTMLElement; legend?: HTMLElement; meta?: HTMLElement; tbody?: HTMLElement; tfoot?: HTMLElement; panel?: HTMLElement;
    live?: HTMLElement; submit?: HTMLButtonElement; busy?: HTMLElement; summary?: HTMLElement; general?: HTMLElement;
    form?: HTMLFormElement; mapBox?: HTMLElement; mapEl?: HTMLElement; mapWait?: HTMLElement; mapHelp?: HTMLElement;
    noMapNote?: HTMLElement; honeypot?: HTMLInputElement;
    fields: Record<string, FieldRef>;
  } = { fields: {} };

  constructor(host: HTMLElement, o: AppOptions) {
    this.host = host;
    this.o = o;
    this.api = new Api(o.api);
    this.lang = chooseLang(o.langAttr, o.docLang, null);
  }

  private get k(): number {
    return this.districts?.min_count ?? this.campaign?.privacy?.min_count ?? 0;
  }

  /** "every week" / "every day": how often the finer figures (the map's dots) are released. */
  private get every(): string {
    return this.t(this.campaign?.privacy?.release_every === 'day' ? 'everyDay' : 'everyWeek');
  }

  private get placing(): boolean {
    return this.o.mode !== 'view' && this.state === 'open' && !this.result;
  }

  private t(key: MsgKey, params?: Record<string, string | number>): string {
    return msg(this.lang, key, params);
  }

  // ---------------------------------------------------------------- loading

  async start(): Promise<void> {
    this.renderState(this.t('loading'), false);
    try {
      const wantMap = !this.o.noMap && hasWebGL();
      if (wantMap) preloadMap(this.o.assets);
      const [campaign, districts, tiles, story] = await Promise.all([
        this.api.campaign(this.o.campaign),
        this.api.districts(this.o.campaign),
        wantMap ? this.api.tileJson(this.o.campaign) : Promise.resolve(null),
        this.api.story(this.o.campaign),
      ]);
      if (this.destroyed) return;
      this.campaign = campaign;
      this.districts = districts;
      this.tiles = tiles;
      this.story = story;
      this.breaks = breaksFor(districts);
      this.state = campaignState(campaign);
      this.lang = chooseLang(this.o.langAttr, this.o.docLang, campaign.default_lang);
      this.mapFailed = !wantMap;
      this.pow = campaign.proof_of_work ? new ProofOfWork(() => this.api.challenge(campaign.slug)) : null;
      this.render();
      this.o.onTitle?.(tr(campaign.title, this.lang));
    } catch (e) {
      if (this.destroyed) return;
      console.error('[civicmap]', e);
      const notFound = e instanceof ApiError && e.status === 404;
      this.renderState(this.t(notFound ? 'notFound' : 'loadError'), !notFound);
    }
  }

  setLang(attr: string | null): void {
    this.o.langAttr = attr;
    const lang = chooseLang(attr, this.o.docLang, this.campaign?.default_lang);
    if (lang === this.lang) return;
    this.lang = lang;
    if (this.campaign) {
      this.render();
      this.o.onTitle?.(tr(this.campaign.title, this.lang));
    }
  }

  destroy(): void {
    this.destroyed = true;
    this.mapView?.destroy();
    this.mapView = null;
  }

  private rootEl(): HTMLElement {
    const el = h('div', { class: 'cm' + (this.o.page ? ' cm-page' : ''), lang: this.lang });
    if (this.o.height) {
      setStyle(el, { '--cm-map-h': this.o.height, '--cm-map-h-narrow': this.o.height });
    }
    return el;
  }

  private renderState(text: string, retry: boolean): void {
    const root = this.rootEl();
    root.setAttribute('aria-busy', String(!retry && text === this.t('loading')));
    root.append(h('div', { class: 'cm-state', role: 'status' }, h('p', null, text),
      retry ? h('button', { class: 'cm-btn cm-secondary', type: 'button', onclick: () => this.start() }, this.t('retry')) : null));
    this.host.replaceChildren(root);
  }

  // ---------------------------------------------------------------- rendering

  private render(): void {
    const c = this.campaign!;
    this.mapView?.destroy();
    this.mapView = null;
    this.r = { fields: {} };
    const root = this.rootEl();
    const titleId = uid('cm-title');
    root.setAttribute('role', 'region');
    root.setAttribute('aria-labelledby', titleId);

    const meta = h('p', { class: 'cm-meta' });
    this.r.meta = meta;
    const head = h('header', { class: 'cm-head' },
      h(this.o.page ? 'h1' : 'h2', { class: 'cm-title', id: titleId }, tr(c.title, this.lang)),
      meta,
      tr(c.description, this.lang) ? h('p', { class: 'cm-desc' }, tr(c.description, this.lang)) : null,
      this.state !== 'open' && this.o.mode !== 'view' ? h('p', { class: 'cm-closednote', role: 'note' }, this.t('closedNotice')) : null,
    );

    const live = h('div', { class: 'cm-sr', 'aria-live': 'polite', 'aria-atomic': 'true' });
    this.r.live = live;

    const withPanel = this.o.mode !== 'view' && this.state === 'open';
    const main = h('div', { class: 'cm-main' + (withPanel ? ' cm-with-panel' : '') });
    main.append(this.renderMapColumn());
    if (withPanel) {
      const panel = h('section', { class: 'cm-panel', 'aria-labelledby': uid('cm-panel-h') });
      this.r.panel = panel;
      main.append(panel);
      this.renderPanel();
    }
    main.append(this.renderResults());
    const story = renderStory(this.story, this.lang, this.api.storyFeedUrl(c.slug, this.lang));
    if (story) main.append(story);

    const foot = h('footer', { class: 'cm-foot' },
      h('span', null, c.attribution || '© OpenStreetMap contributors'),
      h('span', null, this.t('poweredBy')),
    );
    root.append(head, main, foot, live);
    this.host.replaceChildren(root);
    this.renderMeta();
    this.renderLegend();
    this.renderTable();
    if (!this.mapFailed) this.afterPaint(() => this.startMap());
  }

  /** Runs `f` once the form has been painted (or soon, in a tab that paints nothing). */
  private afterPaint(f: () => void): void {
    let done = false;
    const go = () => {
      if (done) return;
      done = true;
      setTimeout(f, 0);
    };
    requestAnimationFrame(go);
    setTimeout(go, 100);
  }

  private renderMeta(): void {
    const c = this.campaign!;
    const meta = this.r.meta!;
    let chip: string;
    if (this.state === 'open') chip = c.closes_at ? this.t('statusOpenUntil', { d: formatDate(c.closes_at, this.lang) }) : this.t('statusOpen');
    else if (this.state === 'upcoming') chip = c.opens_at ? this.t('statusOpensOn', { d: formatDate(c.opens_at, this.lang) }) : this.t('statusDraft');
    else chip = c.closes_at && Date.parse(c.closes_at) <= Date.now() ? this.t('statusClosedOn', { d: formatDate(c.closes_at, this.lang) }) : this.t('statusClosed');
    const tot = totalOf(this.districts!);
    meta.replaceChildren(
      h('span', { class: 'cm-chip' + (this.state === 'open' ? '' : ' cm-closed') }, chip),
      h('span', null, this.t('totalContribs', { v: formatContributions(tot.count, tot.withheld, this.k, this.lang) })),
    );
  }

  private renderMapColumn(): HTMLElement {
    const col = h('div', { class: 'cm-mapcol' });
    const helpId = uid('cm-maphelp');
    const note = h('p', { class: 'cm-nomap', role: 'note' }, this.t(this.mapUnavailable ? 'mapUnavailable' : 'noWebgl'));
    note.hidden = !this.mapFailed;
    this.r.noMapNote = note;
    const info = h('div', { class: 'cm-info', 'aria-hidden': 'true' });
    info.hidden = true;
    this.r.info = info;
    const mapEl = h('div', { class: 'cm-map' });
    this.r.mapEl = mapEl;
    // Until the map has arrived (it loads after the form): a note in its place; the form works already.
    const wait = h('p', { class: 'cm-mapwait' }, this.t(this.placing ? 'mapLoadingContribute' : 'mapLoading'));
    wait.hidden = !!this.mapView;
    this.r.mapWait = wait;
    const box = h('div', { class: 'cm-mapbox' }, mapEl, wait, info);
    box.hidden = this.mapFailed;
    this.r.mapBox = box;
    const legend = h('div', { class: 'cm-legend' });
    this.r.legend = legend;
    const help = h('p', { class: 'cm-help', id: helpId }, this.t(this.placing ? 'mapHelpContribute' : 'mapHelpView'));
    help.hidden = true;
    this.r.mapHelp = help;
    col.append(note, box, h('div', { class: 'cm-under' }, legend, help));
    mapEl.dataset.helpId = helpId;
    return col;
  }

  private renderLegend(): void {
    const legend = this.r.legend!;
    const titleId = uid('cm-legend-t');
    const items = this.breaks.map((b) => h('li', null,
      this.swatch(b.color),
      b.to == null ? `${this.num(b.from)}+` : b.from === b.to ? this.num(b.from) : `${this.num(b.from)}–${this.num(b.to)}`,
    ));
    const hasWithheld = this.k > 0;
    if (hasWithheld) items.push(h('li', null, h('span', { class: 'cm-swatch cm-swatch-withheld', 'aria-hidden': 'true' }), this.t('legendWithheld', { k: this.k })));
    if (this.tiles) items.push(h('li', { class: 'cm-legend-demand' }, h('span', { class: 'cm-swatch cm-swatch-demand', 'aria-hidden': 'true' }), this.t('legendDemand', { every: this.every })));
    legend.replaceChildren(h('span', { class: 'cm-legend-title', id: titleId }, this.t('legendTitle')), h('ul', { class: 'cm-legend-items', 'aria-labelledby': titleId }, items));
    if (hasHouseholds(this.districts)) legend.append(h('p', { class: 'cm-legend-note' }, this.t('legendPer1000')));
  }

  private swatch(color: string): HTMLElement {
    const s = h('span', { class: 'cm-swatch', 'aria-hidden': 'true' });
    setStyle(s, { background: color });
    return s;
  }

  private num(n: number): string {
    return formatCount(n, false, 0, this.lang);
  }

  private renderResults(): HTMLElement {
    const hId = uid('cm-results-h');
    const tbody = h('tbody');
    const tfoot = h('tfoot');
    this.r.tbody = tbody;
    this.r.tfoot = tfoot;
    return h('section', { class: 'cm-results', 'aria-labelledby': hId },
      h('h3', { id: hId }, this.t('tableTitle')),
      h('div', { class: 'cm-tablewrap' },
        h('table', { class: 'cm-table' },
          h('caption', null, this.t('tableCaption')),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, this.t('tableDistrict')), h('th', { scope: 'col', class: 'cm-num' }, this.t('tableCount')),
            hasHouseholds(this.districts) ? h('th', { scope: 'col', class: 'cm-num cm-rate' }, this.t('tablePer1000')) : null)),
          tbody, tfoot)),
      // Following without contributing: folded under the table.
      this.campaign?.notices ? h('details', { class: 'cm-followbox' }, h('summary', null, this.t('followTitle')), this.renderFollow(null, null)) : null);
  }

  /** The "follow my district" form, with `district` chosen first. */
  private renderFollow(district: string | null, heading: 'h4' | null = 'h4'): HTMLElement {
    return renderFollow({
      api: this.api,
      slug: this.campaign!.slug,
      lang: this.lang,
      districts: (this.districts?.features ?? []).map((f) => ({ code: f.properties.code, name: f.properties.name })),
      district,
      proofOfWork: !!this.campaign!.proof_of_work,
    }, heading);
  }

  private renderTable(): void {
    const fc = this.districts!;
    const rows = [...fc.features].sort((a, b) => a.properties.name.localeCompare(b.properties.name, this.lang));
    const rates = hasHouseholds(fc);
    this.r.tbody!.replaceChildren(...rows.map((f) => {
      const p = f.properties;
      const withheld = !!p.withheld || p.count == null;
      const tr_ = h('tr', { 'data-code': p.code, class: p.code === this.updatedCode ? 'cm-updated' : null },
        h('th', { scope: 'row' }, this.swatchFor(p.count, withheld), p.name),
        h('td', { class: 'cm-num', 'data-count': withheld ? 'withheld' : String(p.count) },
          withheld ? h('span', { class: 'cm-withheld-text' }, formatCount(null, true, this.k, this.lang)) : formatCount(p.count, false, this.k, this.lang)),
        // The rate comes from the server, beside the count it was derived from: withheld with it.
        rates ? h('td', { class: 'cm-num cm-rate', 'data-rate': withheld ? 'withheld' : p.per_1000_households == null ? 'none' : String(p.per_1000_households) },
          withheld ? h('span', { class: 'cm-withheld-text' }, formatRate(null, true, this.lang)) : formatRate(p.per_1000_households, false, this.lang)) : null);
      return tr_;
    }));
    const tot = totalOf(fc);
    this.r.tfoot!.replaceChildren(h('tr', null, h('th', { scope: 'row' }, this.t('tableTotal')),
      h('td', { class: 'cm-num', 'data-count': tot.withheld || tot.count == null ? 'withheld' : String(tot.count) }, formatCount(tot.count, tot.withheld, this.k, this.lang)),
      rates ? h('td', { class: 'cm-num cm-rate' }) : null));
  }

  private swatchFor(count: number | null, withheld: boolean): HTMLElement {
    if (withheld) return h('span', { class: 'cm-swatch cm-swatch-withheld', 'aria-hidden': 'true' });
    return this.swatch(colorFor(count, false, this.breaks));
  }

  // ---------------------------------------------------------------- map

  /**
   * The map arrives after the form (render() calls this last): civicmap-map.js (MapLibre and MapView)
   * and MapLibre's stylesheet are fetched now; until they are here the district list and the
   * coordinates place the pin, and the map takes it over when it comes (LocationPicker.attachMap).
   */
  private async startMap(): Promise<void> {
    const mapEl = this.r.mapEl!;
    if (this.destroyed || !mapEl.isConnected) return;
    try {
      const [{ MapView, maplibregl }] = await Promise.all([loadMap(this.o.assets), linkMapStyles(mapEl, this.o.assets)]);
      if (this.destroyed || !mapEl.isConnected) return;
      this.mapView = new MapView(maplibregl, {
        container: mapEl,
        lang: this.lang,
        campaign: this.campaign!,
        districts: this.districts!,
        breaks: this.breaks,
        tiles: this.tiles,
        view: this.o.view,
        placing: this.placing,
        describedBy: mapEl.dataset.helpId,
        onPick: (lon, lat, how) => this.picker?.pickOnMap(lon, lat, how),
        onConfirm: () => this.confirmPin(),
        onInspect: (d, how) => this.inspect(d, how),
        onError: (e) => console.warn('[civicmap] map:', e),
      });
      if (this.r.mapWait) this.r.mapWait.hidden = true;
      if (this.r.mapHelp) this.r.mapHelp.hidden = false;
      this.picker?.attachMap(this.mapView);
    } catch (e) {
      if (this.destroyed || !mapEl.isConnected) return;
      console.warn('[civicmap] no map:', e);
      this.mapFailed = true;
      this.mapUnavailable = true;
      if (this.r.mapBox) this.r.mapBox.hidden = true;
      if (this.r.mapHelp) this.r.mapHelp.hidden = true;
      if (this.r.noMapNote) {
        this.r.noMapNote.textContent = this.t('mapUnavailable');
        this.r.noMapNote.hidden = false;
      }
      this.mapView = null;
      this.picker?.attachMap(null);
    }
  }

  private inspect(d: DistrictFeature | null, how: 'hover' | 'key' | 'click'): void {
    const info = this.r.info;
    if (info) {
      if (!d && how === 'hover') info.hidden = true;
      else {
        info.hidden = false;
        const p = d?.properties;
        info.replaceChildren(h('strong', null, p ? p.name : this.t('outside')),
          ...(p ? [h('span', null, formatContributions(p.count, !!p.withheld || p.count == null, this.k, this.lang))] : []),
          ...(p && !p.withheld && p.per_1000_households != null ? [h('span', null, this.t('rateOf', { r: formatRate(p.per_1000_households, false, this.lang) }))] : []));
      }
    }
    if (how === 'key' && !this.placing) {
      clearTimeout(this.keyAnnounceTimer);
      this.keyAnnounceTimer = window.setTimeout(() => this.announce(d ? this.t('cursorAnnounce', { d: d.properties.name, c: formatContributions(d.properties.count, !!d.properties.withheld, this.k, this.lang) }) : this.t('outside')), 250);
    }
  }

  announce(text: string): void {
    const live = this.r.live;
    if (!live) return;
    clearTimeout(this.announceTimer);
    live.textContent = '';
    this.announceTimer = window.setTimeout(() => { live.textContent = text; }, 60);
  }

  // ---------------------------------------------------------------- location

  private renderLocation(): HTMLElement {
    this.picker = new LocationPicker({
      lang: this.lang,
      districts: () => this.districts,
      bounds: this.campaign!.bounds,
      pin: this.picker?.pin ?? null,
      decimals: 5,
      how: { map: 'locationHowMap', noMap: 'locationHowNoMap' },
      finders: { geocoder: this.geocoderUrl(), addresses: this.addressesUrl() },
      announce: (text) => this.announce(text),
      pinText: (d) => this.t('pinAnnounce', { d: d ? d.properties.name : this.t('outside'), c: d ? formatContributions(d.properties.count, !!d.properties.withheld, this.k, this.lang) : '' }).replace(/, \.$/, '.'),
      onPin: () => {
        this.warmUp();
        this.errors.geometry = null;
      },
    });
    this.picker.attachMap(this.mapView);
    return this.picker.el;
  }

  private confirmPin(): void {
    const d = this.picker?.district ?? null;
    this.announce(this.t('pinConfirmed', { d: d ? d.properties.name : this.t('outside') }));
    const key = this.campaign?.form.fields[0]?.key;
    const first = key ? this.r.fields[key]?.controls[0] : this.r.submit;
    window.setTimeout(() => first?.focus(), 30);
  }

  private geocoderUrl(): string | null {
    return this.campaign?.geocoder?.url || this.o.geocoder || null;
  }

  /**
   * civicmap's own address search, when the campaign has addresses and no external geocoder was
   * chosen (by the campaign's setting or the embed's attribute): what is typed stays on this server.
   */
  private addressesUrl(): string | null {
    const c = this.campaign;
    return c?.address_search && !this.geocoderUrl() ? this.api.url(`${this.api.campaignPath(c.slug)}/addresses`) : null;
  }

  // ---------------------------------------------------------------- form

  /** First use of the form: start the proof of work, if the campaign asks for one. */
  private warmUp(): void {
    if (this.placing && this.pow) this.pow.start();
  }

  private renderPanel(): void {
    const panel = this.r.panel!;
    const hId = panel.getAttribute('aria-labelledby')!;
    if (this.state !== 'open') {
      panel.replaceChildren(h('h3', { id: hId }, this.t(this.state === 'upcoming' ? 'statusDraft' : 'statusClosed')), h('p', null, this.t('closedNotice')));
      return;
    }
    if (this.result) {
      this.renderSuccess(panel, hId);
      return;
    }
    const c = this.campaign!;
    const form = h('form', { class: 'cm-form', novalidate: true, onsubmit: (e: Event) => { e.preventDefault(); this.submit(); } });
    this.r.form = form;
    if (!this.formStart) this.formStart = Date.now();
    // The proof of work (if any) starts with the first use of the form, so it is ready when the citizen sends.
    for (const ev of ['focusin', 'input', 'pointerdown']) form.addEventListener(ev, () => this.warmUp());
    const hp = renderHoneypot(this.lang);
    hp.input.value = this.hp;
    hp.input.addEventListener('input', () => { this.hp = hp.input.value; });
    this.r.honeypot = hp.input;
    const summary = h('div', { class: 'cm-summary', tabindex: '-1' });
    summary.hidden = true;
    this.r.summary = summary;
    const general = h('div', { class: 'cm-alert', role: 'alert' });
    general.hidden = true;
    this.r.general = general;
    form.append(summary, this.renderLocation(), hp.el);
    for (const f of c.form?.fields ?? []) form.append(this.renderField(f));
    const submit = h('button', { class: 'cm-btn cm-submit', type: 'submit' }, this.t('submit'));
    this.r.submit = submit;
    // Seen while the widget waits to send again to a busy server (the live region tells screen readers).
    const busy = h('span', { class: 'cm-hint cm-busy' });
    this.r.busy = busy;
    form.append(general, h('div', { class: 'cm-actions' }, submit, busy),
      h('p', { class: 'cm-note cm-privacy' }, this.t('privacy', { k: c.privacy?.min_count ?? this.k, every: this.every })));
    panel.replaceChildren(h('h3', { id: hId }, this.t('formTitle')), h('p', { class: 'cm-note' }, this.t('requiredNote')), form);
    this.applyErrors();
  }

  private renderField(f: Field): HTMLElement {
    const { el, ref } = renderField(f, this.lang, this.values[f.key], (v) => {
      this.values[f.key] = v;
      this.attempt = null;
      if (this.errors.fields[f.key] && validateField(f, v).ok) {
        delete this.errors.fields[f.key];
        this.applyErrors();
      }
    });
    this.r.fields[f.key] = ref;
    return el;
  }

  /** Shows this.errors next to the fields, in the summary and in the general alert. */
  private applyErrors(): void {
    const e = this.errors;
    applyFieldErrors(this.r.fields, e.fields);
    this.picker?.showError(e.geometry);
    const general = this.r.general;
    if (general) {
      general.hidden = e.general.length === 0;
      general.replaceChildren(...e.general.map((g) => h('p', null, g)));
    }
  }

  private showSummary(): void {
    const items: { text: string; target: () => HTMLElement | null | undefined }[] = [];
    const colon = this.lang === 'fr' ? ' : ' : ': ';
    if (this.errors.geometry) items.push({ text: this.t('locationLegend') + colon + this.errors.geometry, target: () => this.picker?.focusTarget() });
    for (const f of this.campaign!.form.fields) {
      const text = this.errors.fields[f.key];
      if (text) items.push({ text: fieldLabel(f, this.lang) + colon + text, target: () => this.r.fields[f.key]?.controls[0] });
    }
    showSummary(this.r.summary!, items, this.lang);
  }

  private collectErrors(): { properties: Record<string, unknown>; ok: boolean } {
    const c = this.campaign!;
    const { properties, errors } = validateAnswers(c.form.fields, this.values);
    this.errors = { fields: {}, geometry: null, general: [] };
    for (const [k, err] of Object.entries(errors)) this.errors.fields[k] = errorMessage(err, this.lang);
    this.errors.geometry = this.picker?.check() ?? null;
    return { properties, ok: Object.keys(this.errors.fields).length === 0 && !this.errors.geometry };
  }

  private setSending(on: boolean): void {
    this.sending = on;
    const b = this.r.submit;
    if (!b) return;
    b.disabled = on;
    if (!on && this.r.busy) this.r.busy.textContent = '';
    b.replaceChildren(...(on ? [h('span', { class: 'cm-spinner', 'aria-hidden': 'true' }), this.t('sending')] : [this.t('submit')]));
    this.r.form?.setAttribute('aria-busy', String(on));
  }

  async submit(): Promise<void> {
    if (this.sending || !this.campaign || this.result) return;
    const { properties, ok } = this.collectErrors();
    this.applyErrors();
    if (!ok) {
      this.showSummary();
      return;
    }
    this.r.summary!.hidden = true;
    const pin = this.picker!.pin!;
    const body = { type: 'Feature', geometry: { type: 'Point', coordinates: [pin.lon, pin.lat] }, properties };
    const fp = JSON.stringify(body);
    // Same answers as the previous attempt (retry, double submit): same key, so the server stores one.
    if (!this.attempt || this.attempt.fp !== fp) this.attempt = { key: uuid4(), fp };
    this.setSending(true);
    try {
      const c = this.campaign;
      const key = this.attempt.key;
      // Sent before the campaign's minimum fill time: wait it out quietly (never an error for a fast human).
      // Every attempt (new proof of work, busy server) carries the same key: the server stores one.
      const res = await sendProtected({
        send: (headers) => this.api.submit(c.slug, body, key, headers),
        formStart: this.formStart || Date.now(),
        minFillSeconds: minFillSeconds(c),
        honeypot: () => this.hp,
        pow: this.pow,
        // Under pressure, the server asks for a proof of work even if the campaign asked for none at load.
        challenge: () => this.api.challenge(c.slug),
        onWait: () => this.announce(this.t('sendingWait')),
        onBusy: (s) => {
          const text = this.t('sendingBusy', { s });
          if (this.r.busy) this.r.busy.textContent = text;
          this.announce(text);
        },
      });
      if (this.destroyed) return;
      this.result = res;
      this.attempt = null;
      this.formStart = 0;
      this.hp = '';
      this.errors = { fields: {}, geometry: null, general: [] };
      this.values = {};
      this.picker = null;
      this.mapView?.setPlacing(false);
      this.renderPanel();
      this.announce(this.t('thanks'));
      await this.refreshCounts(res);
    } catch (e) {
      if (this.destroyed) return;
      this.handleSubmitError(e);
    } finally {
      if (!this.destroyed && !this.result) this.setSending(false);
      else this.sending = false;
    }
  }

  private handleSubmitError(e: unknown): void {
    const err = e instanceof ApiError ? e : new ApiError(0, { detail: String(e) });
    if (err.status === 409) this.attempt = null;
    this.errors = describeSubmitError(err, this.lang, this.campaign!.form.fields.map((f) => f.key));
    this.applyErrors();
    if (Object.keys(this.errors.fields).length || this.errors.geometry) this.showSummary();
    else this.announce(this.errors.general.join(' '));
  }

  private editUrl(res: SubmissionResult): string {
    const u = new URL(res.edit_url, this.api.base + '/');
    u.searchParams.set('lang', this.lang);
    return u.href;
  }

  private renderSuccess(panel: HTMLElement, hId: string): void {
    const res = this.result!;
    const heading = h('h3', { id: hId, tabindex: '-1' }, this.t('thanks'));
    const where = h('p', { class: 'cm-where' });
    this.fillWhere(where);
    const url = this.editUrl(res);
    const linkId = uid('cm-editurl');
    const copyStatus = h('span', { class: 'cm-hint', 'aria-live': 'polite' });
    const urlInput = h('input', { id: linkId, type: 'text', readonly: true, value: url, class: 'cm-editlink' });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(url);
      } catch {
        urlInput.select();
        try { document.execCommand('copy'); } catch { /* ignore */ }
      }
      copyStatus.textContent = this.t('copied');
    };
    panel.replaceChildren(h('div', { class: 'cm-success' },
      heading,
      where,
      h('p', null, this.t('editLinkIntro')),
      h('p', null, h('a', { href: url, target: '_blank', rel: 'noopener', class: 'cm-editanchor' }, this.t('editLink'))),
      h('label', { class: 'cm-sr', for: linkId }, this.t('editLink')),
      urlInput,
      h('div', { class: 'cm-actions' },
        h('button', { type: 'button', class: 'cm-btn cm-secondary cm-small', onclick: copy }, this.t('copyLink')),
        copyStatus),
      h('div', { class: 'cm-actions' },
        h('button', { type: 'button', class: 'cm-btn cm-secondary', onclick: () => this.another() }, this.t('another')))));
    // After contributing: follow the pin's district.
    if (this.campaign?.notices) panel.append(this.renderFollow(res.district?.code ?? null));
    // The panel is in the document: move the focus now, so that it never rests on <body>.
    heading.focus();
  }

  private fillWhere(where: HTMLElement): void {
    const res = this.result;
    if (!res) return;
    if (res.status === 'pending') {
      where.textContent = this.t('pending');
      return;
    }
    if (!res.district) {
      where.textContent = this.t('countedNoDistrict');
      return;
    }
    // The district's count once re-fetched after this submission (refreshCounts), never the
    // count from before it.
    const fresh = this.updatedCode === res.district.code;
    const f = this.districts?.features.find((x) => x.properties.code === res.district!.code);
    const p = fresh ? f?.properties : undefined;
    where.textContent = this.t('countedIn', {
      d: res.district.name,
      c: p ? formatContributions(p.count, !!p.withheld || p.count == null, this.k, this.lang) : '…',
    });
  }

  private another(): void {
    this.result = null;
    this.formStart = 0;
    this.picker = null;
    this.updatedCode = null;
    this.mapView?.setPlacing(true);
    this.renderPanel();
    this.renderTable();
    const first = this.r.form?.querySelector<HTMLElement>('button, input, select');
    first?.focus();
  }

  /** Re-fetches the counts (bypassing caches) and updates the map, legend, table and confirmation. */
  async refreshCounts(res?: SubmissionResult): Promise<void> {
    try {
      const fc = await this.api.districts(this.campaign!.slug, Date.now());
      if (this.destroyed) return;
      this.districts = fc;
      this.breaks = breaksFor(fc);
      this.updatedCode = res?.district?.code ?? null;
      this.renderMeta();
      this.renderLegend();
      this.renderTable();
      await this.mapView?.update(fc, this.breaks);
      const where = this.r.panel?.querySelector<HTMLElement>('.cm-where');
      if (where) this.fillWhere(where);
      if (where && res && res.status !== 'pending') this.announce(`${this.t('thanks')} ${where.textContent}`);
      else this.announce(this.t('refreshed'));
    } catch (e) {
      console.warn('[civicmap] refresh failed', e);
    }
  }
}
