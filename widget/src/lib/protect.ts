// Anti-abuse parts of a submission: honeypot and fill-time headers, waiting out the campaign's minimum
// fill time (a fast human never sees an error), the proof of work, and the messages for 409/429.
import type { ApiError } from './api';
import { msg } from './i18n';
import { solvePow } from './pow';
import type { Campaign, Lang, Problem } from './types';
import { mapServerErrors } from './validate';


/** The campaign's minimum fill time in seconds (default 3, as the server's). */
export function minFillSeconds(c: Pick<Campaign, 'min_fill_seconds'> | null | undefined): number {
  const v = c?.min_fill_seconds;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 3;
}

/** Headers sent with every submission. */
export function submissionHeaders(o: { honeypot: string; fillMs: number; proof?: string | null }): Record<string, string> {
  const h: Record<string, string> = {
    'Civicmap-Honeypot': o.honeypot,
    'Civicmap-Fill-Ms': String(Math.max(0, Math.floor(o.fillMs))),
  };
  if (o.proof) h['Civicmap-Proof'] = o.proof;
  return h;
}

/** Milliseconds still to wait before the form has been open `minSeconds`; 0 when it has. */
export function fillWaitMs(startedAt: number, now: number, minSeconds: number): number {
  return Math.max(0, Math.ceil(minSeconds * 1000 - (now - startedAt)));
}

/**
 * Resolves once `minSeconds` have passed since `startedAt`, with the fill time in ms (≥ minSeconds × 1000).
 * `onWait(ms)` is called first when there is something to wait for.
 */
export async function waitForMinFill(startedAt: number, minSeconds: number, onWait?: (ms: number) => void, now: () => number = () => Date.now()): Promise<number> {
  let wait = fillWaitMs(startedAt, now(), minSeconds);
  if (wait > 0) onWait?.(wait);
  // A timer may fire a little early on some platforms: loop until the clock agrees.
  while (wait > 0) {
    await new Promise((ok) => setTimeout(ok, wait));
    wait = fillWaitMs(startedAt, now(), minSeconds);
  }
  return now() - startedAt;
}

export interface Challenge { challenge: string; difficulty: number; expires_at?: string }

/**
 * One proof of work at a time, started early (when the form is shown or first used) so that it is
 * usually ready when the citizen sends. A proof is used once: get() hands it over and forgets it.
 */
export class ProofOfWork {
  private pending: Promise<{ proof: string; expires: number }> | null = null;
  /** True when a solved proof is waiting to be used. */
  ready = false;

  constructor(
    private fetchChallenge: () => Promise<Challenge>,
    private solve: (challenge: string, difficulty: number) => Promise<string> = (c, d) => solvePow(c, d),
    private now: () => number = () => Date.now(),
  ) {}

  /** Starts fetching and solving a challenge, unless one is under way or ready. */
  start(): void {
    if (this.pending) return;
    const p = (async () => {
      const c = await this.fetchChallenge();
      const nonce = await this.solve(c.challenge, c.difficulty);
      const expires = c.expires_at ? Date.parse(c.expires_at) : NaN;
      return { proof: `${c.challenge}:${nonce}`, expires: isNaN(expires) ? Infinity : expires };
    })();
    this.pending = p;
    this.ready = false;
    p.then(() => { if (this.pending === p) this.ready = true; }, () => {});
    // A failed attempt is forgotten, so that the next start() or get() tries again.
    p.catch(() => { if (this.pending === p) this.pending = null; });
  }

  /** A fresh proof (waits for the one under way); one that expires within 5 s is replaced once. */
  async get(): Promise<string> {
    for (let i = 0; ; i++) {
      this.start();
      const p = this.pending!;
      const r = await p;
      if (this.pending === p) { this.pending = null; this.ready = false; }
      if (r.expires - this.now() > 5000 || i > 0) return r.proof;
    }
  }

  /** Forgets the proof under way or ready (e.g. the server said it expired or was used). */
  reset(): void {
    this.pending = null;
    this.ready = false;
  }
}

/**
 * Sends a submission with its anti-abuse headers: waits until the form has been open the campaign's
 * minimum time, attaches the proof of work when there is one, and retries once with a new proof when
 * the server says the proof expired or was used (422, field `proof_of_work`).
 */
export async function sendProtected<T>(o: {
  send: (headers: Record<string, string>) => Promise<T>;
  /** When the form was shown (ms, same clock as `now`). */
  formStart: number;
  minFillSeconds: number;
  honeypot: () => string;
  pow: ProofOfWork | null;
  /** Called when the citizen has to wait (minimum fill time, or the proof not solved yet). */
  onWait?: () => void;
  now?: () => number;
}): Promise<T> {
  const now = o.now ?? (() => Date.now());
  let told = false;
  const wait = () => { if (!told) { told = true; o.onWait?.(); } };
  await waitForMinFill(o.formStart, o.minFillSeconds, wait, now);
  for (let i = 0; ; i++) {
    if (o.pow && !o.pow.ready) wait();
    const proof = o.pow ? await o.pow.get() : null;
    try {
      return await o.send(submissionHeaders({ honeypot: o.honeypot(), fillMs: now() - o.formStart, proof }));
    } catch (e) {
      const err = e as Partial<ApiError>;
      if (i === 0 && o.pow && err?.status === 422 && err.problem && problemField(err.problem) === 'proof_of_work') continue;
      throw e;
    }
  }
}

/** Where the messages of a failed submission go: next to fields, the location block, or the general alert. */
export interface SubmitErrors { fields: Record<string, string>; geometry: string | null; general: string[] }

/** The field a 422 is about, for the anti-abuse checks (`website`, `form`, `proof_of_work`). */
export function problemField(p: Problem): string | null {
  return (p.errors ?? []).map((e) => e?.field).find((f) => f === 'website' || f === 'form' || f === 'proof_of_work') ?? p.field ?? null;
}

/** Messages for a failed submission (or correction), in the citizen's language. */
export function describeSubmitError(err: Pick<ApiError, 'status' | 'problem' | 'retryAfter'>, lang: Lang, fieldKeys: string[], refused: 'errServer' | 'editRefused' = 'errServer'): SubmitErrors {
  const out: SubmitErrors = { fields: {}, geometry: null, general: [] };
  const p = err.problem ?? {};
  const s = err.status;
  const t = (k: Parameters<typeof msg>[1], params?: Record<string, string | number>) => msg(lang, k, params);
  if (s === 422 || (s === 400 && p.errors?.length)) {
    const special = s === 422 ? problemField(p) : null;
    if (special === 'website') out.general = [t('errSpam')];
    else if (special === 'form') out.general = [t('errTooFast')];
    else if (special === 'proof_of_work') out.general = [t('errProof')];
    else {
      const m = mapServerErrors(p, fieldKeys);
      out.fields = m.fields;
      out.geometry = m.geometry;
      out.general = m.general.map((g) => t(refused, { d: g }));
    }
  } else if (s === 429) {
    out.general = [t('errRateLimited', { s: err.retryAfter ?? 60 })];
  } else if (s === 503 || s === 502 || s === 504) {
    out.general = [t('errUnavailable', { s: err.retryAfter ?? 30 })];
  } else if (s === 0) {
    out.general = [t('errNetwork')];
  } else if (s >= 400 && s < 500) {
    out.general = [t(refused, { d: p.detail || p.title || `HTTP ${s}` })];
  } else {
    out.general = [t('errGeneric', { s: p.detail || `HTTP ${s}` })];
  }
  return out;
}
