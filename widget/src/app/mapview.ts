// The MapLibre map: district choropleth (vector tiles when the server has them, else districts.geojson),
// optional basemap, hover/tap info, the citizen's pin, and keyboard navigation of a pin/cursor.
import type * as ML from 'maplibre-gl';
import { fillColorExpression, hatchImage, OUTLINE_COLOR, type ClassBreak } from '../lib/choropleth';
import { bboxOf, districtAt } from '../lib/geo';
import { msg } from '../lib/i18n';
import type { View } from '../lib/options';
import type { Campaign, DistrictCollection, DistrictFeature, Lang } from '../lib/types';
import type { MapLibre } from './maplibre';

export interface TileJson { tiles: string[]; minzoom?: number; maxzoom?: number; bounds?: number[]; attribution?: string }

export interface MapViewOptions {
  container: HTMLElement;
  lang: Lang;
  campaign: Campaign;
  districts: DistrictCollection;
  breaks: ClassBreak[];
  tiles: TileJson | null;
  view: View | null;
  /** true: clicks and arrow keys place/move the pin; false: they move a read-only cursor. */
  placing: boolean;
  describedBy?: string;
  onPick(lon: number, lat: number, how: 'click' | 'drag' | 'key'): void;
  onConfirm(lon: number, lat: number): void;
  onInspect(d: DistrictFeature | null, how: 'hover' | 'key' | 'click'): void;
  onError(e: unknown): void;
}

const SRC = 'cm-districts';
const reducedMotion = () => typeof matchMedia === 'function' && matchMedia('(prefers-reduced-motion: reduce)').matches;
const ms = (d: number) => (reducedMotion() ? 0 : d);
const KEY_STEP_PX = 24;

function withParam(url: string, k: string, v: string): string {
  // Tile templates contain {z}/{x}/{y}: append the parameter without URL-encoding them.
  const [base, hash] = url.split('#');
  return `${base}${base.includes('?') ? '&' : '?'}${k}=${encodeURIComponent(v)}${hash != null ? '#' + hash : ''}`;
}

export class MapView {
  map: ML.Map;
  private ml: MapLibre;
  private o: MapViewOptions;
  private pin: ML.Marker | null = null;
  private cursor: ML.Marker | null = null;
  private hovered: string | number | null = null;
  private loaded: Promise<void>;
  private districts: DistrictCollection;
  private tileVersion = 0;

  constructor(ml: MapLibre, o: MapViewOptions) {
    this.ml = ml;
    this.o = o;
    this.districts = o.districts;
    const { campaign, lang } = o;
    const bm = campaign.basemap;
    const raster = bm && bm.type === 'raster' && Array.isArray(bm.tiles) ? bm : null;
    const plainStyle = (): ML.StyleSpecification => ({
      version: 8,
      sources: raster ? { basemap: { type: 'raster', tiles: raster.tiles, tileSize: raster.tileSize ?? 256, maxzoom: raster.maxzoom ?? 19, attribution: raster.attribution ?? '' } } : {},
      layers: [
        { id: 'cm-background', type: 'background', paint: { 'background-color': '#eef1f4' } },
        ...(raster ? [{ id: 'cm-basemap', type: 'raster' as const, source: 'basemap', paint: { 'raster-saturation': -0.4 } }] : []),
      ],
    });
    const style: ML.StyleSpecification | string = bm && bm.type === 'style' && bm.url ? bm.url : plainStyle();
    const b = bboxOf(o.districts) ?? campaign.bounds ?? [-5, 41, 10, 51.5];
    this.fit = [b[0], b[1], b[2], b[3]];
    const opts: ML.MapOptions = {
      container: o.container,
      style,
      attributionControl: { compact: false, customAttribution: campaign.attribution || '© OpenStreetMap contributors' },
      cooperativeGestures: true,
      dragRotate: false,
      pitchWithRotate: false,
      touchPitch: false,
      keyboard: false,
      maxZoom: 19,
      locale: {
        'Map.Title': msg(lang, 'mapLabel'),
        'Marker.Title': msg(lang, 'yourPin'),
        'NavigationControl.ZoomIn': msg(lang, 'zoomIn'),
        'NavigationControl.ZoomOut': msg(lang, 'zoomOut'),
        'NavigationControl.ResetBearing': msg(lang, 'resetBearing'),
        'AttributionControl.ToggleAttribution': msg(lang, 'toggleAttribution'),
        'CooperativeGesturesHandler.WindowsHelpText': msg(lang, 'ctrlScroll'),
        'CooperativeGesturesHandler.MacHelpText': msg(lang, 'cmdScroll'),
        'CooperativeGesturesHandler.MobileHelpText': msg(lang, 'twoFingers'),
      },
    };
    if (o.view) {
      opts.center = [o.view.lon, o.view.lat];
      opts.zoom = o.view.zoom;
    } else {
      opts.bounds = [b[0], b[1], b[2], b[3]];
      opts.fitBoundsOptions = { padding: 16 };
    }
    this.map = new ml.Map(opts);
    this.map.touchZoomRotate.disableRotation();
    this.map.addControl(new ml.NavigationControl({ showCompass: false }), 'top-right');
    const canvas = this.map.getCanvas();
    if (o.describedBy) canvas.setAttribute('aria-describedby', o.describedBy);
    canvas.setAttribute('tabindex', '0');
    this.map.on('error', (e) => o.onError((e as { error?: unknown }).error ?? e));
    // Our layers go in on 'style.load', not 'load': 'load' waits for every basemap tile, and never
    // comes when a basemap tile fails. A basemap style URL that fails falls back to the plain style.
    this.loaded = new Promise((resolve) => {
      this.map.on('style.load', () => {
        this.addLayers();
        this.refit();
        resolve();
      });
    });
    this.map.on('error', () => {
      if (typeof style === 'string' && !this.styleReady && !this.fellBack) {
        this.fellBack = true;
        this.map.setStyle(plainStyle());
      }
    });
    // Until the citizen moves the map, keep the districts framed when the container changes size
    // (the shadow root's stylesheet or the iframe height may settle after the map was created).
    this.map.on('movestart', (e) => { if ((e as { originalEvent?: unknown }).originalEvent) this.userMoved = true; });
    this.map.on('resize', () => this.refit());
    this.bindEvents();
  }

  private fit: [number, number, number, number];
  private userMoved = false;

  private refit(): void {
    if (this.userMoved || this.o.view) return;
    this.map.fitBounds(this.fit, { padding: 16, duration: 0 });
  }

  private sourceLayer(): Record<string, string> {
    return this.o.tiles ? { 'source-layer': 'districts' } : {};
  }

  private styleReady = false;
  private fellBack = false;

  private addLayers(): void {
    this.styleReady = true;
    const m = this.map;
    if (m.getSource(SRC)) return;
    const t = this.o.tiles;
    if (!m.hasImage('cm-hatch')) m.addImage('cm-hatch', hatchImage());
    if (t) {
      m.addSource(SRC, {
        type: 'vector', tiles: t.tiles, minzoom: t.minzoom ?? 0, maxzoom: t.maxzoom ?? 14,
        ...(Array.isArray(t.bounds) && t.bounds.length === 4 ? { bounds: t.bounds as [number, number, number, number] } : {}),
        attribution: t.attribution ?? '', promoteId: { districts: 'code' },
      });
    } else {
      m.addSource(SRC, { type: 'geojson', data: this.districts as any, promoteId: 'code' });
    }
    const sl = this.sourceLayer();
    const withheld: ML.ExpressionSpecification = ['to-boolean', ['get', 'withheld']];
    const basemap = !!this.o.campaign.basemap;
    m.addLayer({ id: 'cm-fill', type: 'fill', source: SRC, ...sl, filter: ['!', withheld], paint: { 'fill-color': fillColorExpression(this.o.breaks) as ML.ExpressionSpecification, 'fill-opacity': basemap ? 0.6 : 0.85 } } as ML.LayerSpecification);
    m.addLayer({ id: 'cm-withheld', type: 'fill', source: SRC, ...sl, filter: withheld, paint: { 'fill-pattern': 'cm-hatch', 'fill-opacity': basemap ? 0.55 : 0.8 } } as ML.LayerSpecification);
    m.addLayer({ id: 'cm-line', type: 'line', source: SRC, ...sl, paint: { 'line-color': OUTLINE_COLOR, 'line-width': ['case', ['boolean', ['feature-state', 'hover'], false], 3.5, 1.2] } } as ML.LayerSpecification);
    // A basemap style's labels (street and district names) go above the choropleth, so that
    // they stay readable through it.
    for (const layer of m.getStyle().layers ?? []) {
      if (layer.type === 'symbol' && !layer.id.startsWith('cm-')) m.moveLayer(layer.id);
    }
    if (t) {
      m.addLayer({
        id: 'cm-demand', type: 'circle', source: SRC, 'source-layer': 'demand',
        paint: {
          'circle-color': '#9a3412', 'circle-opacity': 0.8, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1,
          'circle-radius': ['interpolate', ['linear'], ['sqrt', ['to-number', ['coalesce', ['get', 'count'], 1]]], 1, 3, 10, 14, 40, 28],
        },
      });
    }
  }

  private bindEvents(): void {
    const m = this.map;
    let raf = 0;
    m.on('mousemove', (e) => {
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(() => {
        const d = districtAt(this.districts, e.lngLat.lng, e.lngLat.lat);
        this.setHover(d);
        m.getCanvas().style.cursor = this.o.placing ? 'crosshair' : d ? 'pointer' : '';
        this.o.onInspect(d, 'hover');
      });
    });
    m.on('mouseout', () => { cancelAnimationFrame(raf); this.setHover(null); this.o.onInspect(null, 'hover'); });
    m.on('click', (e) => {
      const { lng, lat } = e.lngLat;
      const d = districtAt(this.districts, lng, lat);
      this.setHover(d);
      this.o.onInspect(d, 'click');
      if (this.o.placing) {
        this.setPin(lng, lat);
        this.o.onPick(lng, lat, 'click');
      }
    });
    const canvas = m.getCanvas();
    canvas.addEventListener('keydown', (e) => this.onKey(e));
    canvas.addEventListener('focus', () => {
      const p = this.keyPoint();
      if (p) this.inspectAt(p[0], p[1], 'key');
    });
    canvas.addEventListener('blur', () => { if (this.cursor) { this.cursor.remove(); this.cursor = null; } });
  }

  private keyPoint(): [number, number] | null {
    if (this.o.placing) {
      const p = this.pin?.getLngLat();
      return p ? [p.lng, p.lat] : null;
    }
    const c = this.cursor?.getLngLat();
    return c ? [c.lng, c.lat] : null;
  }

  private inspectAt(lon: number, lat: number, how: 'key' | 'click'): void {
    const d = districtAt(this.districts, lon, lat);
    this.setHover(d);
    this.o.onInspect(d, how);
  }

  private onKey(e: KeyboardEvent): void {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const m = this.map;
    const dirs: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (e.key in dirs) {
      e.preventDefault();
      this.userMoved = true;
      const step = e.shiftKey ? KEY_STEP_PX / 4 : KEY_STEP_PX;
      const cur = this.keyPoint();
      const { width, height } = m.getCanvas().getBoundingClientRect();
      let px = cur ? m.project(cur as [number, number]) : m.project(m.getCenter());
      if (cur) px = px.add(new this.ml.Point(dirs[e.key][0] * step, dirs[e.key][1] * step));
      const ll = m.unproject(px);
      if (px.x < 20 || px.y < 20 || px.x > width - 20 || px.y > height - 20) m.panTo(ll, { duration: ms(200) });
      if (this.o.placing) {
        this.setPin(ll.lng, ll.lat);
        this.o.onPick(ll.lng, ll.lat, 'key');
      } else {
        this.setCursor(ll.lng, ll.lat);
      }
      this.inspectAt(ll.lng, ll.lat, 'key');
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault();
      this.userMoved = true;
      const p = this.keyPoint();
      m.easeTo({ zoom: m.getZoom() + 1, duration: ms(200), ...(p ? { around: p as [number, number] } : {}) });
    } else if (e.key === '-' || e.key === '_') {
      e.preventDefault();
      this.userMoved = true;
      const p = this.keyPoint();
      m.easeTo({ zoom: m.getZoom() - 1, duration: ms(200), ...(p ? { around: p as [number, number] } : {}) });
    } else if (e.key === 'Enter' || e.key === ' ') {
      const p = this.keyPoint();
      if (this.o.placing && p) {
        e.preventDefault();
        this.o.onConfirm(p[0], p[1]);
      }
    }
  }

  private setHover(d: DistrictFeature | null): void {
    const id = d ? d.properties.code ?? d.id ?? null : null;
    if (id === this.hovered) return;
    const sl = this.sourceLayer()['source-layer'];
    try {
      if (this.hovered != null) this.map.setFeatureState({ source: SRC, sourceLayer: sl, id: this.hovered }, { hover: false });
      if (id != null) this.map.setFeatureState({ source: SRC, sourceLayer: sl, id }, { hover: true });
    } catch { /* source not loaded yet */ }
    this.hovered = id;
  }

  setCursor(lon: number, lat: number): void {
    if (!this.cursor) {
      const el = document.createElement('div');
      el.className = 'cm-cursor';
      el.setAttribute('aria-hidden', 'true');
      this.cursor = new this.ml.Marker({ element: el }).setLngLat([lon, lat]).addTo(this.map);
    } else this.cursor.setLngLat([lon, lat]);
  }

  setPin(lon: number, lat: number, fly = false): void {
    if (!this.pin) {
      this.pin = new this.ml.Marker({ color: '#c2410c', draggable: true }).setLngLat([lon, lat]).addTo(this.map);
      this.pin.getElement().setAttribute('aria-hidden', 'true');
      this.pin.getElement().setAttribute('tabindex', '-1');
      this.pin.on('dragend', () => {
        const p = this.pin!.getLngLat();
        this.inspectAt(p.lng, p.lat, 'click');
        this.o.onPick(p.lng, p.lat, 'drag');
      });
    } else this.pin.setLngLat([lon, lat]);
    if (fly) {
      this.userMoved = true;
      const z = Math.max(this.map.getZoom(), 14);
      this.map.easeTo({ center: [lon, lat], zoom: z, duration: ms(400) });
    }
  }

  /** Frames a district (after the citizen picked it from the list). */
  showBox(b: [number, number, number, number]): void {
    this.userMoved = true;
    this.map.fitBounds(b, { padding: 30, duration: ms(400), maxZoom: 16 });
  }

  clearPin(): void {
    this.pin?.remove();
    this.pin = null;
  }

  setPlacing(placing: boolean): void {
    this.o.placing = placing;
    if (!placing) this.clearPin();
  }

  /** New counts: new colours and legend classes; GeoJSON gets the new data, vector tiles are refetched. */
  async update(districts: DistrictCollection, breaks: ClassBreak[]): Promise<void> {
    this.districts = districts;
    this.o.breaks = breaks;
    await this.loaded;
    const m = this.map;
    m.setPaintProperty('cm-fill', 'fill-color', fillColorExpression(breaks) as ML.ExpressionSpecification);
    const src = m.getSource(SRC);
    if (!src) return;
    if (this.o.tiles) {
      this.tileVersion = Date.now();
      (src as ML.VectorTileSource).setTiles(this.o.tiles.tiles.map((t) => withParam(t, 'v', String(this.tileVersion))));
    } else {
      (src as ML.GeoJSONSource).setData(districts as any);
    }
  }

  resize(): void {
    this.map.resize();
  }

  destroy(): void {
    this.map.remove();
  }
}
