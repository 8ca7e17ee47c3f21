import { normalizeLang } from './i18n';
import type { Lang } from './types';

export type Mode = 'view' | 'contribute';
export interface View { lon: number; lat: number; zoom: number }

export interface EmbedOptions {
  /** Origin of the civicmap server, derived from the script's src. */
  host: string;
  campaign: string;
  lang: Lang | null;
  mode: Mode | null;
  view: View | null;
  /** CSS length of the map area (px, em or rem). */
  height: string | null;
}

const SLUG = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export function isValidSlug(s: string | null | undefined): s is string {
  return !!s && SLUG.test(s);
}

/** "2.2069,48.8924,13" -> {lon, lat, zoom}; null when malformed or out of range. */
export function parseView(v: string | null | undefined): View | null {
  if (!v) return null;
  const parts = v.split(',').map((p) => p.trim());
  if (parts.length !== 3 || parts.some((p) => !/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(p))) return null;
  const [lon, lat, zoom] = parts.map(Number);
  if (lon < -180 || lon > 180 || lat < -85.06 || lat > 85.06 || zoom < 0 || zoom > 24) return null;
  return { lon, lat, zoom };
}

export function formatView(v: View): string {
  return `${v.lon},${v.lat},${v.zoom}`;
}

export function parseMode(v: string | null | undefined): Mode | null {
  const m = (v ?? '').trim().toLowerCase();
  return m === 'view' || m === 'contribute' ? m : null;
}

/** "480" -> "480px"; "480px", "30em", "28.5rem" kept; anything else (incl. vh: the iframe sizes itself) -> null. */
export function parseHeight(v: string | null | undefined): string | null {
  const m = /^\s*(\d{1,4}(?:\.\d+)?)\s*(px|em|rem)?\s*$/i.exec(v ?? '');
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'px').toLowerCase();
  if (unit === 'px' && (n < 150 || n > 4000)) return null;
  if (unit !== 'px' && (n < 8 || n > 250)) return null;
  return `${m[1]}${unit}`;
}

export type EmbedParseResult = { ok: true; options: EmbedOptions } | { ok: false; error: string };

/**
 * Options of the embed snippet, from its <script> tag:
 *   <script src="https://HOST/embed.js" data-campaign="slug" data-lang="fr|en" data-height="480"
 *           data-mode="view|contribute" data-view="lon,lat,zoom" async></script>
 * `docLang` is the host page's <html lang>, used when data-lang is absent.
 */
export function parseEmbedOptions(src: string, data: Record<string, string | undefined>, docLang?: string | null, baseHref?: string): EmbedParseResult {
  let url: URL;
  try {
    url = new URL(src, baseHref);
  } catch {
    return { ok: false, error: `cannot parse the script src ${JSON.stringify(src)}` };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, error: `unsupported script src ${url.href}` };
  const campaign = (data.campaign ?? '').trim();
  if (!isValidSlug(campaign)) return { ok: false, error: `missing or invalid data-campaign ${JSON.stringify(data.campaign ?? null)}` };
  return {
    ok: true,
    options: {
      host: url.origin,
      campaign,
      lang: normalizeLang(data.lang) ?? normalizeLang(docLang),
      mode: parseMode(data.mode),
      view: parseView(data.view),
      height: parseHeight(data.height),
    },
  };
}

/** URL of the iframe page for these options: HOST/embed/{campaign}?lang=..&mode=..&view=..&height=.. */
export function iframeSrc(o: EmbedOptions): string {
  const q = new URLSearchParams();
  if (o.lang) q.set('lang', o.lang);
  if (o.mode) q.set('mode', o.mode);
  if (o.view) q.set('view', formatView(o.view));
  if (o.height) q.set('height', o.height);
  const qs = q.toString();
  return `${o.host}/embed/${encodeURIComponent(o.campaign)}${qs ? '?' + qs : ''}`;
}

/** The embed page's route: /embed/{slug} or /embed/{slug}/edit (any prefix before /embed/ is allowed). */
export function parseEmbedPath(pathname: string): { slug: string; edit: boolean } | null {
  const m = /\/embed\/([^/]+)(\/edit)?\/?$/.exec(pathname);
  if (!m) return null;
  let slug: string;
  try {
    slug = decodeURIComponent(m[1]);
  } catch {
    return null;
  }
  return isValidSlug(slug) ? { slug, edit: !!m[2] } : null;
}

/** "#id=…&token=…" -> {id, token}. */
export function parseEditHash(hash: string): { id: string | null; token: string | null } {
  const q = new URLSearchParams(hash.replace(/^#/, ''));
  return { id: q.get('id'), token: q.get('token') };
}

/** Message the embed page posts to its parent; validated by embed.js. */
export interface HeightMessage { type: 'civicmap:height'; height: number; campaign: string; title?: string }

export function isHeightMessage(d: unknown): d is HeightMessage {
  if (!d || typeof d !== 'object') return false;
  const m = d as Record<string, unknown>;
  return m.type === 'civicmap:height' && typeof m.height === 'number' && Number.isFinite(m.height) && m.height > 0 && m.height < 100000;
}

export type CampaignState = 'open' | 'upcoming' | 'closed';

/** Whether the campaign accepts contributions now, from its status and its opening/closing dates. */
export function campaignState(c: { status: string; opens_at?: string | null; closes_at?: string | null }, now = Date.now()): CampaignState {
  const opens = c.opens_at ? Date.parse(c.opens_at) : NaN;
  const closes = c.closes_at ? Date.parse(c.closes_at) : NaN;
  if (c.status === 'closed') return 'closed';
  if (!isNaN(closes) && closes <= now) return 'closed';
  if (c.status === 'draft') return 'upcoming';
  if (!isNaN(opens) && opens > now) return 'upcoming';
  return c.status === 'open' ? 'open' : 'closed';
}
