// Anti-abuse parts of a submission: honeypot and fill-time headers, waiting out the campaign's minimum
// fill time (a fast human never sees an error), the proof of work (also when a campaign under pressure
// asks for one), sending again after a short 429/503, and the messages for 409/429.
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

/** The longest Retry-After (seconds) of a 429 or 503 waited out automatically; a longer one is shown. */
export const BUSY_RETRY_MAX_SECONDS = 10;
/** Automatic sends again after a 429 or 503, per submission. */
const BUSY_RETRIES = 3;
/** Proofs of work sent per submission: the difficulty of a campaign under pressure may rise between two. */
const PROOF_ATTEMPTS = 3;

/**
 * Seconds to wait before sending again after `err`: a 429 (rate limited) or 503 (busy) whose
 * Retry-After is short enough that the citizen would rather wait than read an error; else null.
 */
export function busyRetrySeconds(err: unknown): number | null {
  const e = err as Partial<ApiError> | null;
  if (e?.status !== 429 && e?.status !== 503) return null;
  const s = e.retryAfter;
  return typeof s === 'number' && s >= 0 && s <= BUSY_RETRY_MAX_SECONDS ? s : null;
}

/** Whether the server refused a request for want of a (good, fresh) proof of work (422, field `proof_of_work`). */
function proofRefused(err: unknown): boolean {
  const e = err as Partial<ApiError> | null;
  return e?.status === 422 && !!e.problem && problemField(e.problem) === 'proof_of_work';
}

/**
 * Sends a submission (or a subscription) with its anti-abuse headers: waits until the form has been
 * open the campaign's minimum time, attaches the proof of work when there is one, and sends the same
 * request again (same body, same Idempotency-Key in `send`, same headers but the proof):
 * - after a 422 `proof_of_work`, with a new proof: the one sent expired or was used, or the campaign is
 *   under pressure and asks for one although it asked for none at load (`pow` null: a challenge is then
 *   fetched with `challenge`), or for a higher difficulty than before; at most 3 proofs in all;
 * - after a 429 or 503 whose Retry-After is at most 10 s, once that time (and up to 1 s of jitter, so
 *   that the clients held back together do not all come back in the same instant) has passed; at most
 *   3 times. The proof goes again unchanged: the server did not spend it, or it stored the submission
 *   and answers the key's replay without one (had it spent it without storing, its 422 brings a new one).
 */
export async function sendProtected<T>(o: {
  send: (headers: Record<string, string>) => Promise<T>;
  /** When the form was shown (ms, same clock as `now`). */
  formStart: number;
  minFillSeconds: number;
  /** The honeypot field's value; without it (the follow form), neither it nor the fill time is sent. */
  honeypot?: () => string;
  /** The campaign's proof of work, started early; null when it asked for none at load. */
  pow: ProofOfWork | null;
  /** A new challenge, for a proof the server asks for although `pow` is null (campaign under pressure). */
  challenge?: () => Promise<Challenge>;
  /** Called when the citizen has to wait (minimum fill time, or the proof not solved yet). */
  onWait?: () => void;
  /** Called before waiting `seconds` to send again after a 429 or 503. */
  onBusy?: (seconds: number) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}): Promise<T> {
  const now = o.now ?? (() => Date.now());
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((ok) => setTimeout(ok, ms)));
  const random = o.random ?? Math.random;
  let told = false;
  const wait = () => { if (!told) { told = true; o.onWait?.(); } };
  // The time the citizen took to fill the form: the same in every attempt (solving a proof or
  // waiting for a busy server is not filling the form).
  const fillMs = await waitForMinFill(o.formStart, o.minFillSeconds, wait, now);
  let pow = o.pow;
  let proof: string | null = null;
  let proofs = 0;
  let busy = 0;
  for (;;) {
    try {
      if (pow && proof === null) {
        if (!pow.ready) wait();
        proof = await pow.get();
        proofs++;
      }
      const headers = o.honeypot ? submissionHeaders({ honeypot: o.honeypot(), fillMs, proof }) : proof ? { 'Civicmap-Proof': proof } : {};
      return await o.send(headers);
    } catch (e) {
      if (proofRefused(e) && proofs < PROOF_ATTEMPTS) {
        // A campaign under pressure asks for a proof although it asked for none at load.
        if (!pow && o.challenge) pow = new ProofOfWork(o.challenge);
        if (pow) {
          proof = null;
          continue;
        }
      }
      const s = busyRetrySeconds(e);
      if (s !== null && busy < BUSY_RETRIES) {
        busy++;
        o.onBusy?.(s);
        await sleep(s * 1000 + Math.floor(random() * 1000));
        continue;
      }
      throw e;
    }
  }
}

/** Where the messages of a failed submission go: next to fields, the location block, or the general alert. */
export interface SubmitErrors { fields: Record<string, string>; geometry: string | null; general: string[] }

/** The field a 422 is about, for the anti-abuse checks (`website`, `form`, `proof_of_work`). */
export function problemField(p: Problem): string | null {
  return (p.errors ?? []).map((e) => e?.field).find((f) => f === 'website' || f === 'form' || f === 'proof_of_work') ?? p.field
    ?? (/proof-of-work-needed$/.test(p.type ?? '') ? 'proof_of_work' : null);
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
