// The location block, shared by the contribution form (app.ts) and the edit page (edit.ts): a fieldset with
// the pin's status line, its error, a how-to hint, optionally the edit page's map, the finders of the form
// (my location, address search, district list) and the coordinates typed by hand (folded in a <details>
// when there are finders). It owns the pin and keeps the inputs, the status, the map's marker and the live
// region in step whichever way the pin was placed.
import { bboxOf, districtAt, interiorPoint, round6, type BBox } from '../lib/geo';
import { msg, type MsgKey } from '../lib/i18n';
import {
  ADDRESS_DEBOUNCE_MS, addressSearchUrl, addressSuggestions, formatCoord, geocoderQueryUrl, geocoderResults, moveActive, pinError,
  type GeocoderResult, type Pin,
} from '../lib/location';
import type { DistrictCollection, DistrictFeature, Lang } from '../lib/types';
import { locationErrorMessage, validateLonLat, type LocationError } from '../lib/validate';
import { describedBy, h, uid } from './dom';
import type { MapView } from './mapview';

export type { Pin };
/** How the pin got where it is: map click or drag, arrow keys on the map, or one of the block's controls. */
export type PinSource = 'map' | 'key' | 'district' | 'coords' | 'geo' | 'geocoder';

export interface LocationPickerOptions {
  lang: Lang;
  /** The districts as they are now (the form refreshes them after a submission). */
  districts: () => DistrictCollection | null;
  /** The campaign's bounds: a pin in no district must lie within them. */
  bounds: BBox | null | undefined;
  /** The pin to start with (an entry being corrected, or the form rendered again). */
  pin: Pin | null;
  /** Decimals of the coordinates shown in the inputs and the status line. */
  decimals: number;
  /** The how-to hint, with and without a map. */
  how: { map: MsgKey; noMap: MsgKey };
  /** A map container to show inside the block, under the hint (the edit page's map). */
  mapBox?: HTMLElement;
  /**
   * "Use my location", the district list and an address search: civicmap's own (`addresses`, the URL of
   * the campaign's `…/addresses` route: suggestions as one types) or an external geocoder (a URL template).
   */
  finders?: { geocoder: string | null; addresses?: string | null };
  /** Says something in the page's live region. */
  announce(text: string): void;
  /** What to announce when the pin moves (default: "Pin placed: {district}"). */
  pinText?(d: DistrictFeature | null): string;
  /** Called after every move of the pin. */
  onPin?(pin: Pin, how: PinSource): void;
}

export class LocationPicker {
  /** The fieldset (data-field="geometry"), to put in the form. */
  readonly el: HTMLFieldSetElement;
  /** Id of the how-to hint (the map canvas is described by it). */
  readonly howId: string;
  private o: LocationPickerOptions;
  private current: Pin | null;
  private map: MapView | null = null;
  private keyTimer = 0;
  private status: HTMLElement;
  private error: HTMLElement;
  private how: HTMLElement;
  private lon: HTMLInputElement;
  private lat: HTMLInputElement;
  private select: HTMLSelectElement | null = null;
  private geoStatus: HTMLElement | null = null;

  constructor(o: LocationPickerOptions) {
    this.o = o;
    this.current = o.pin;
    const legendId = uid('cm-loc');
    this.status = h('p', { class: 'cm-locstatus cm-none' });
    this.error = h('p', { class: 'cm-error', id: uid('cm-loc-err') });
    this.error.hidden = true;
    this.howId = uid('cm-lochow');
    this.how = h('p', { class: 'cm-hint cm-lochow', id: this.howId });
    const lonId = uid('cm-lon');
    const latId = uid('cm-lat');
    this.lon = h('input', { id: lonId, name: 'cm-lon', type: 'text', inputmode: 'decimal', autocomplete: 'off', spellcheck: 'false', class: 'cm-short' });
    this.lat = h('input', { id: latId, name: 'cm-lat', type: 'text', inputmode: 'decimal', autocomplete: 'off', spellcheck: 'false', class: 'cm-short' });
    const onEnter = (e: KeyboardEvent) => { if (e.key === 'Enter') { e.preventDefault(); this.placeCoords(); } };
    this.lon.addEventListener('keydown', onEnter);
    this.lat.addEventListener('keydown', onEnter);
    const coords = h('div', { class: 'cm-row' },
      h('div', { class: 'cm-field' }, h('label', { for: lonId }, this.t('longitude')), this.lon),
      h('div', { class: 'cm-field' }, h('label', { for: latId }, this.t('latitude')), this.lat),
      h('button', { class: 'cm-btn cm-secondary cm-small', type: 'button', onclick: () => this.placeCoords() }, this.t('placePin')));

    this.el = h('fieldset', { class: 'cm-fieldset cm-box', 'aria-labelledby': legendId, 'data-field': 'geometry' },
      h('legend', { id: legendId, class: 'cm-label' }, this.t('locationLegend'), ' ', h('span', { class: 'cm-req', 'aria-hidden': 'true' }, '*')),
      this.status, this.error, this.how, o.mapBox,
      o.finders ? [...this.renderFinders(o.finders.geocoder, o.finders.addresses ?? null), h('details', null, h('summary', null, this.t('coordsSummary')), coords)] : coords);
    if (this.select && this.current) this.select.value = this.district?.properties.code ?? '';
    this.fillInputs();
    this.renderStatus();
    this.renderHow();
  }

  get pin(): Pin | null {
    return this.current;
  }

  /** The district the pin is in, if any. */
  get district(): DistrictFeature | null {
    return this.current ? districtAt(this.o.districts(), this.current.lon, this.current.lat) : null;
  }

  /** The map that shows the pin (null: none, or it failed): gets the pin, and the hint says how to use it. */
  attachMap(map: MapView | null): void {
    this.map = map;
    if (map && this.current) map.setPin(this.current.lon, this.current.lat);
    this.renderHow();
  }

  /** MapView's onPick: a click, a drag or the arrow keys moved the map's marker. */
  pickOnMap(lon: number, lat: number, how: 'click' | 'drag' | 'key'): void {
    this.setPin(lon, lat, how === 'key' ? 'key' : 'map');
  }

  /** The message to show when the pin cannot be sent (missing, or out of the campaign's area), else null. */
  check(): string | null {
    const e = pinError(this.current, !!this.district, this.o.bounds);
    return e ? this.errorText(e) : null;
  }

  /** Shows (or clears) the block's error, with aria-invalid and aria-describedby on its controls. */
  showError(text: string | null): void {
    this.error.hidden = !text;
    this.error.textContent = text ?? '';
    for (const c of [this.lon, this.lat, this.select]) {
      if (!c) continue;
      if (text) c.setAttribute('aria-invalid', 'true');
      else c.removeAttribute('aria-invalid');
      describedBy(c, this.error.id, !!text);
    }
  }

  /** Where the error summary's link to the block leads. */
  focusTarget(): HTMLElement {
    return this.select ?? this.lon;
  }

  setPin(lon: number, lat: number, how: PinSource): void {
    const pin = { lon: round6(lon), lat: round6(lat) };
    this.current = pin;
    if (how === 'district') {
      const f = districtAt(this.o.districts(), lon, lat);
      const b = f ? bboxOf({ type: 'FeatureCollection', features: [f] }) : null;
      this.map?.setPin(lon, lat, !b);
      if (b) this.map?.showBox(b);
    } else if (how !== 'map' && how !== 'key') this.map?.setPin(lon, lat, true);
    this.showError(null);
    this.renderStatus();
    const d = this.district;
    if (this.select && how !== 'district') this.select.value = d ? d.properties.code : '';
    if (how !== 'coords') this.fillInputs();
    this.o.onPin?.(pin, how);
    const text = this.o.pinText ? this.o.pinText(d) : this.t('locationSet', { d: d ? d.properties.name : this.t('outside') });
    if (how === 'key') {
      clearTimeout(this.keyTimer);
      this.keyTimer = window.setTimeout(() => this.o.announce(text), 250);
    } else this.o.announce(text);
    // Placed by coordinates, position or address: say at once when it is out of the campaign's area.
    if (how === 'coords' || how === 'geo' || how === 'geocoder') {
      const e = pinError(pin, !!d, this.o.bounds);
      if (e) this.showError(this.errorText(e));
    }
  }

  private t(key: MsgKey, params?: Record<string, string | number>): string {
    return msg(this.o.lang, key, params);
  }

  private errorText(e: LocationError): string {
    return locationErrorMessage(e, this.o.lang);
  }

  private fmt(n: number): string {
    return formatCoord(n, this.o.lang, this.o.decimals);
  }

  /** The coordinate inputs show the pin. */
  private fillInputs(): void {
    const p = this.current;
    if (!p) return;
    this.lon.value = this.fmt(p.lon);
    this.lat.value = this.fmt(p.lat);
  }

  private placeCoords(): void {
    const v = validateLonLat(this.lon.value, this.lat.value);
    if (!v.ok) {
      this.showError(this.errorText(v.error));
      (v.error === 'lat' ? this.lat : this.lon).focus();
      return;
    }
    this.setPin(v.lon, v.lat, 'coords');
  }

  private renderStatus(): void {
    const el = this.status;
    const p = this.current;
    if (!p) {
      el.className = 'cm-locstatus cm-none';
      el.textContent = this.t('locationNone');
      return;
    }
    const d = this.district;
    el.className = 'cm-locstatus';
    el.replaceChildren(this.t('locationSet', { d: d ? d.properties.name : this.t('outside') }), h('br'),
      h('span', { class: 'cm-hint' }, this.t('coords', { lon: this.fmt(p.lon), lat: this.fmt(p.lat) })));
  }

  private renderHow(): void {
    this.how.textContent = this.t(this.map ? this.o.how.map : this.o.how.noMap);
  }

  // ------------------------------------------------------------ finders (the contribution form)

  private renderFinders(geocoder: string | null, addresses: string | null): HTMLElement[] {
    const geoStatus = h('p', { class: 'cm-hint', 'aria-live': 'polite' });
    this.geoStatus = geoStatus;
    const geoBtn: HTMLButtonElement = h('button', { class: 'cm-btn cm-secondary cm-small', type: 'button', onclick: () => this.useMyLocation(geoBtn) }, this.t('useMyLocation'));
    const geoNoteId = uid('cm-geonote');
    geoBtn.setAttribute('aria-describedby', geoNoteId);

    // District list: puts the pin at a point inside the district.
    const selId = uid('cm-district');
    const select = h('select', { id: selId, name: 'cm-district', onchange: () => {
      const f = this.o.districts()?.features.find((x) => x.properties.code === select.value);
      if (!f) return;
      const [lon, lat] = interiorPoint(f);
      this.setPin(lon, lat, 'district');
    } },
    h('option', { value: '' }, this.t('chooseDistrictPlaceholder')),
    ...[...(this.o.districts()?.features ?? [])].sort((a, b) => a.properties.name.localeCompare(b.properties.name, this.o.lang))
      .map((f) => h('option', { value: f.properties.code }, f.properties.name)));
    this.select = select;
    const selNoteId = uid('cm-selnote');
    select.setAttribute('aria-describedby', selNoteId);

    return [
      h('div', { class: 'cm-field' }, h('div', { class: 'cm-actions' }, geoBtn), h('p', { class: 'cm-hint', id: geoNoteId }, this.t('useMyLocationNote')), geoStatus),
      ...(addresses ? [this.renderAddressBox(addresses)] : geocoder ? [this.renderGeocoder(geocoder)] : []),
      h('div', { class: 'cm-field' },
        h('label', { class: 'cm-label', for: selId }, this.t('chooseDistrict')),
        select,
        h('p', { class: 'cm-hint', id: selNoteId }, this.t('districtPinNote'))),
    ];
  }

  private renderGeocoder(template: string): HTMLElement {
    const qId = uid('cm-addr');
    const q = h('input', { id: qId, type: 'search', autocomplete: 'street-address' });
    const list = h('ul', { class: 'cm-georesults' });
    const st = h('p', { class: 'cm-hint', 'aria-live': 'polite' });
    const go = () => this.geocode(template, q.value, list, st);
    q.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); go(); } });
    return h('div', { class: 'cm-field' },
      h('label', { class: 'cm-label', for: qId }, this.t('address')),
      h('div', { class: 'cm-row' }, h('div', { class: 'cm-field' }, q), h('button', { class: 'cm-btn cm-secondary cm-small', type: 'button', onclick: go }, this.t('search'))),
      st, list);
  }

  /**
   * civicmap's address search as an ARIA 1.2 combobox: suggestions as one types (debounced), a listbox
   * walked with the arrow keys (aria-activedescendant: the focus stays in the text), Enter or a click
   * places the pin where the address is, Escape closes the list. The count of suggestions is announced.
   */
  private renderAddressBox(route: string): HTMLElement {
    const qId = uid('cm-addr');
    const listId = uid('cm-addrlist');
    const hintId = uid('cm-addrhint');
    const q = h('input', {
      id: qId, type: 'text', role: 'combobox', autocomplete: 'off', spellcheck: 'false',
      'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': listId, 'aria-describedby': hintId,
    });
    const list = h('ul', { id: listId, role: 'listbox', class: 'cm-georesults cm-addrlist', 'aria-label': this.t('address') });
    list.hidden = true;
    const status = h('p', { class: 'cm-hint', role: 'status', 'aria-live': 'polite' });
    let items: GeocoderResult[] = [];
    let active = -1;
    let timer = 0;
    let asked = 0;
    let inflight: AbortController | null = null;
    const setActive = (i: number) => {
      active = i;
      [...list.children].forEach((li, k) => li.setAttribute('aria-selected', String(k === i)));
      const li = list.children[i] as HTMLElement | undefined;
      if (li) {
        q.setAttribute('aria-activedescendant', li.id);
        li.scrollIntoView?.({ block: 'nearest' });
      } else q.removeAttribute('aria-activedescendant');
    };
    const close = () => {
      list.hidden = true;
      q.setAttribute('aria-expanded', 'false');
      setActive(-1);
    };
    const pick = (it: GeocoderResult) => {
      q.value = it.label;
      items = [];
      list.replaceChildren();
      close();
      status.textContent = '';
      this.setPin(it.lon, it.lat, 'geocoder');
    };
    const show = (found: GeocoderResult[]) => {
      items = found;
      list.replaceChildren(...found.map((it, k) => {
        const li = h('li', { id: `${listId}-${k}`, role: 'option', 'aria-selected': 'false', class: 'cm-addropt' }, it.label);
        // mousedown would move the focus out of the text before the click lands.
        li.addEventListener('mousedown', (e) => e.preventDefault());
        li.addEventListener('click', () => pick(it));
        return li;
      }));
      active = -1;
      q.removeAttribute('aria-activedescendant');
      list.hidden = !found.length;
      q.setAttribute('aria-expanded', String(!!found.length));
      status.textContent = found.length ? this.t('addressSuggestions', { n: found.length }) : this.t('noResults');
    };
    const ask = async () => {
      const url = addressSearchUrl(route, q.value);
      inflight?.abort();
      if (!url) {
        items = [];
        list.replaceChildren();
        close();
        status.textContent = '';
        return;
      }
      const mine = ++asked;
      inflight = new AbortController();
      try {
        const res = await fetch(url, { credentials: 'omit', signal: inflight.signal, headers: { Accept: 'application/json' } });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const found = addressSuggestions(await res.json());
        if (mine === asked) show(found);
      } catch (e) {
        if ((e as Error)?.name === 'AbortError' || mine !== asked) return;
        console.warn('[civicmap] address search:', e);
        close();
        status.textContent = this.t('geocoderError');
      }
    };
    q.addEventListener('input', () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => void ask(), ADDRESS_DEBOUNCE_MS);
    });
    q.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        // Never submits the form from here: Enter picks the active suggestion (or the only one).
        e.preventDefault();
        const it = items[active] ?? (items.length === 1 ? items[0] : undefined);
        if (it && !list.hidden) pick(it);
        return;
      }
      if (e.key === 'Escape') {
        if (!list.hidden) {
          e.preventDefault();
          close();
        }
        return;
      }
      if (list.hidden && e.key === 'ArrowDown' && items.length) {
        e.preventDefault();
        list.hidden = false;
        q.setAttribute('aria-expanded', 'true');
        setActive(0);
        return;
      }
      const next = list.hidden ? null : moveActive(active, items.length, e.key);
      if (next != null) {
        e.preventDefault();
        setActive(next);
      }
    });
    q.addEventListener('blur', () => close());
    return h('div', { class: 'cm-field cm-addrbox' },
      h('label', { class: 'cm-label', for: qId }, this.t('address')),
      h('p', { class: 'cm-hint', id: hintId }, this.t('addressHint')),
      q, list, status);
  }

  private useMyLocation(btn: HTMLButtonElement): void {
    const status = this.geoStatus!;
    if (!('geolocation' in navigator)) {
      status.textContent = this.t('geoUnsupported');
      return;
    }
    btn.disabled = true;
    status.textContent = this.t('locating');
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        btn.disabled = false;
        status.textContent = '';
        this.setPin(pos.coords.longitude, pos.coords.latitude, 'geo');
      },
      () => {
        btn.disabled = false;
        status.textContent = this.t('geoDenied');
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
    );
  }

  private async geocode(template: string, q: string, list: HTMLElement, status: HTMLElement): Promise<void> {
    if (!q.trim()) return;
    const url = geocoderQueryUrl(template, q, this.o.lang, this.o.bounds);
    status.textContent = this.t('searching');
    list.replaceChildren();
    try {
      const res = await fetch(url, { credentials: 'omit' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const items = geocoderResults(await res.json());
      status.textContent = items.length ? this.t('results') + ` (${items.length})` : this.t('noResults');
      list.replaceChildren(...items.slice(0, 8).map((it) => h('li', null,
        h('button', { type: 'button', onclick: () => this.setPin(it.lon, it.lat, 'geocoder') }, it.label))));
    } catch (e) {
      console.warn('[civicmap] geocoder:', e);
      status.textContent = this.t('geocoderError');
    }
  }
}
