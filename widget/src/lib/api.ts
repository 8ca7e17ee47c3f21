// Thin client of the civicmap HTTP API. Every error is normalised to ApiError (problem+json aware).
import type { Challenge } from './protect';
import type { Campaign, DistrictCollection, OwnSubmission, Problem, Story, SubmissionResult } from './types';

export class ApiError extends Error {
  constructor(
    /** HTTP status, or 0 for a network failure. */
    public status: number,
    public problem: Problem,
    /** Seconds from a Retry-After header, if any. */
    public retryAfter: number | null = null,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
  }
}

export function parseRetryAfter(v: string | null, now = Date.now()): number | null {
  if (!v) return null;
  if (/^\s*\d+\s*$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return isNaN(t) ? null : Math.max(0, Math.round((t - now) / 1000));
}

async function problemOf(res: Response): Promise<Problem> {
  const text = await res.text().catch(() => '');
  try {
    const j = JSON.parse(text);
    if (j && typeof j === 'object') return j as Problem;
  } catch { /* not JSON */ }
  return { status: res.status, title: res.statusText, detail: text.slice(0, 300) || undefined };
}

/** RFC 4122 v4 UUID; uses getRandomValues (crypto.randomUUID needs a secure context). */
export function uuid4(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class Api {
  constructor(public base: string, private fetchImpl: typeof fetch = (...a) => fetch(...a)) {
    this.base = base.replace(/\/+$/, '');
  }

  url(path: string): string {
    return this.base + path;
  }

  private async request<T>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T | null; headers: Headers }> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(path), { credentials: 'omit', ...init, headers: { Accept: 'application/json, application/problem+json', ...(init.headers ?? {}) } });
    } catch (e) {
      throw new ApiError(0, { detail: String((e as Error)?.message ?? e) });
    }
    if (!res.ok) throw new ApiError(res.status, await problemOf(res), parseRetryAfter(res.headers.get('Retry-After')));
    if (res.status === 204) return { status: 204, body: null, headers: res.headers };
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as T) : null, headers: res.headers };
  }

  campaignPath(slug: string): string {
    return `/api/v1/campaigns/${encodeURIComponent(slug)}`;
  }

  async campaign(slug: string): Promise<Campaign> {
    return (await this.request<Campaign>(this.campaignPath(slug))).body as Campaign;
  }

  /** `bust` adds a query parameter so that no cache (browser or CDN) answers with stale counts. */
  async districts(slug: string, bust?: string | number): Promise<DistrictCollection> {
    const q = bust != null ? `?v=${encodeURIComponent(String(bust))}` : '';
    return (await this.request<DistrictCollection>(`${this.campaignPath(slug)}/districts.geojson${q}`, { cache: bust != null ? 'no-store' : 'default' })).body as DistrictCollection;
  }

  /** The campaign's published story, or null when the server has none to give (an older server, an error). */
  async story(slug: string): Promise<Story | null> {
    try {
      const s = (await this.request<Story>(`${this.campaignPath(slug)}/story`)).body;
      return s && Array.isArray(s.entries) ? s : null;
    } catch {
      return null;
    }
  }

  /** The Atom feed of the campaign's story in `lang`. */
  storyFeedUrl(slug: string, lang: string): string {
    return this.url(`${this.campaignPath(slug)}/story.atom?lang=${encodeURIComponent(lang)}`);
  }

  /** TileJSON of the campaign's vector tiles, or null when the server has none (any non-2xx or bad JSON). */
  async tileJson(slug: string): Promise<{ tiles: string[]; minzoom?: number; maxzoom?: number; bounds?: number[]; attribution?: string } | null> {
    try {
      const r = await this.request<{ tiles?: unknown }>(`/tiles/${encodeURIComponent(slug)}.json`);
      const tj = r.body as { tiles?: unknown } | null;
      if (!tj || !Array.isArray(tj.tiles) || !tj.tiles.length || !tj.tiles.every((t) => typeof t === 'string')) return null;
      // Resolve relative tile URLs, keeping the {z}/{x}/{y} placeholders unencoded.
      const abs = (t: string) => new URL(t, this.base + '/').href.replace(/%7B/gi, '{').replace(/%7D/gi, '}');
      return { ...(tj as object), tiles: (tj.tiles as string[]).map(abs) };
    } catch {
      return null;
    }
  }

  /** `extra`: the anti-abuse headers (Civicmap-Honeypot, Civicmap-Fill-Ms, Civicmap-Proof). */
  async submit(slug: string, body: unknown, idempotencyKey: string, extra: Record<string, string> = {}): Promise<SubmissionResult> {
    const r = await this.request<SubmissionResult>(`${this.campaignPath(slug)}/submissions`, {
      method: 'POST',
      headers: { ...extra, 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey },
      body: JSON.stringify(body),
    });
    return r.body as SubmissionResult;
  }

  /**
   * Follows the campaign (or one district) by e-mail: the server sends a confirmation link.
   * `extra`: the anti-abuse headers (Civicmap-Proof, when the campaign asks for a proof of work).
   */
  async follow(slug: string, body: { email: string; district: string | null; lang: string }, extra: Record<string, string> = {}): Promise<void> {
    await this.request<unknown>(`${this.campaignPath(slug)}/subscriptions`, {
      method: 'POST',
      headers: { ...extra, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  /** A proof-of-work challenge for one submission or subscription (any open campaign). */
  async challenge(slug: string): Promise<Challenge> {
    const r = await this.request<Challenge>(`${this.campaignPath(slug)}/challenges`, { method: 'POST' });
    const c = r.body;
    if (!c || typeof c.challenge !== 'string' || typeof c.difficulty !== 'number') throw new ApiError(r.status, { detail: 'malformed challenge' });
    return c;
  }

  private ownPath(slug: string, id: string): string {
    return `${this.campaignPath(slug)}/submissions/${encodeURIComponent(id)}`;
  }

  /** The submitter's own entry (exact point and answers), with the edit token. */
  async own(slug: string, id: string, token: string): Promise<OwnSubmission> {
    return (await this.request<OwnSubmission>(this.ownPath(slug, id), { headers: { 'X-Edit-Token': token }, cache: 'no-store' })).body as OwnSubmission;
  }

  /** Saves the submitter's corrections (a GeoJSON Feature like the POST); the updated entry when the server returns it. */
  async update(slug: string, id: string, token: string, body: unknown): Promise<OwnSubmission | null> {
    const r = await this.request<OwnSubmission>(this.ownPath(slug, id), {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json', 'X-Edit-Token': token },
      body: JSON.stringify(body),
    });
    return r.body && typeof r.body === 'object' && (r.body as OwnSubmission).type === 'Feature' ? r.body : null;
  }

  async erase(slug: string, id: string, token: string): Promise<void> {
    await this.request<null>(this.ownPath(slug, id), { method: 'DELETE', headers: { 'X-Edit-Token': token } });
  }
}
