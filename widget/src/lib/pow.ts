// Proof of work asked by campaigns with `proof_of_work: {difficulty: N}`: find the smallest decimal
// nonce such that SHA-256(UTF-8 of `${challenge}:${nonce}`) starts with at least N zero bits.
//
// Plain-JS SHA-256 (WebCrypto's crypto.subtle exists only in secure contexts and costs a promise per
// hash). It runs in a Web Worker made from a Blob when the page allows it (the iframe page's CSP has
// `worker-src 'self' blob:`), else on the main thread in slices of a few milliseconds that yield to the
// event loop, so that the page never freezes.

/**
 * Self-contained: no reference to anything outside it, because its source text (Function#toString)
 * is also the body of the worker. Returns the search function.
 */
export function powKernel(): (challenge: string, difficulty: number, start: number, count: number) => number {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const W = new Uint32Array(64);
  const H = new Uint32Array(8);
  let prefix = new Uint8Array(0);
  let prefixOf = '\u0000';
  let buf = new Uint8Array(64);

  /** SHA-256 of the padded message msg into H. */
  function digest(msg: Uint8Array): void {
    H[0] = 0x6a09e667; H[1] = 0xbb67ae85; H[2] = 0x3c6ef372; H[3] = 0xa54ff53a;
    H[4] = 0x510e527f; H[5] = 0x9b05688c; H[6] = 0x1f83d9ab; H[7] = 0x5be0cd19;
    for (let off = 0; off < msg.length; off += 64) {
      for (let i = 0; i < 16; i++) {
        const j = off + i * 4;
        W[i] = (msg[j] << 24) | (msg[j + 1] << 16) | (msg[j + 2] << 8) | msg[j + 3];
      }
      for (let i = 16; i < 64; i++) {
        const a = W[i - 15], b = W[i - 2];
        const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
        const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }
  }

  /** Pads `${challenge}:${nonce}` into buf (reused) and hashes it. */
  function hashNonce(nonce: number): void {
    const digits = String(nonce);
    const len = prefix.length + digits.length;
    const total = Math.ceil((len + 9) / 64) * 64;
    if (buf.length !== total) buf = new Uint8Array(total);
    else buf.fill(0, prefix.length);
    buf.set(prefix);
    for (let i = 0; i < digits.length; i++) buf[prefix.length + i] = digits.charCodeAt(i);
    buf[len] = 0x80;
    const bits = len * 8;
    buf[total - 4] = (bits >>> 24) & 0xff;
    buf[total - 3] = (bits >>> 16) & 0xff;
    buf[total - 2] = (bits >>> 8) & 0xff;
    buf[total - 1] = bits & 0xff;
    buf[total - 5] = Math.floor(bits / 0x100000000) & 0xff;
    digest(buf);
  }

  function zeroBits(): number {
    let n = 0;
    for (let i = 0; i < 8; i++) {
      const w = H[i];
      if (w === 0) { n += 32; continue; }
      return n + Math.clz32(w);
    }
    return n;
  }

  /** The first nonce in [start, start + count) that meets the difficulty, or -1. */
  return (challenge: string, difficulty: number, start: number, count: number): number => {
    if (challenge !== prefixOf) {
      prefix = new TextEncoder().encode(challenge + ':');
      prefixOf = challenge;
      buf = new Uint8Array(0);
    }
    for (let n = start; n < start + count; n++) {
      hashNonce(n);
      if (zeroBits() >= difficulty) return n;
    }
    return -1;
  };
}

let kernel: ReturnType<typeof powKernel> | null = null;
const search = (c: string, d: number, s: number, n: number) => (kernel ??= powKernel())(c, d, s, n);

/** Whether `${challenge}:${nonce}` meets the difficulty (used by the tests). */
export function checkNonce(challenge: string, difficulty: number, nonce: number): boolean {
  return search(challenge, difficulty, nonce, 1) === nonce;
}

export interface SolveOptions {
  signal?: AbortSignal;
  /** Milliseconds of hashing between two yields to the event loop (main-thread path). */
  sliceMs?: number;
  /** Try a Web Worker first (default true when Worker and Blob exist). */
  worker?: boolean;
  now?: () => number;
}

function aborted(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

/** Main-thread search in time slices, yielding with setTimeout(0) between them. */
export async function solveSliced(challenge: string, difficulty: number, o: SolveOptions = {}): Promise<number> {
  const now = o.now ?? (() => Date.now());
  const slice = o.sliceMs ?? 12;
  let next = 0;
  let batch = 256;
  for (;;) {
    if (o.signal?.aborted) throw aborted();
    const t0 = now();
    while (now() - t0 < slice) {
      const r = search(challenge, difficulty, next, batch);
      if (r >= 0) return r;
      next += batch;
    }
    // Keep each batch small enough that a slice is never much longer than asked.
    const spent = Math.max(1, now() - t0);
    batch = Math.max(64, Math.min(1 << 16, Math.floor((batch * slice) / spent)));
    await new Promise((ok) => setTimeout(ok, 0));
  }
}

const WORKER_MAIN = 'onmessage=function(e){var d=e.data;postMessage(search(d.c,d.d,0,4294967295))}';

/** Source text of the worker (exported for the tests). */
export function workerSource(): string {
  return `var search=(${powKernel.toString()})();${WORKER_MAIN}`;
}

function solveInWorker(challenge: string, difficulty: number, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    let url = '';
    let w: Worker;
    try {
      url = URL.createObjectURL(new Blob([workerSource()], { type: 'text/javascript' }));
      w = new Worker(url);
    } catch (e) {
      if (url) URL.revokeObjectURL(url);
      reject(e);
      return;
    }
    const done = () => { w.terminate(); URL.revokeObjectURL(url); signal?.removeEventListener('abort', onAbort); };
    const onAbort = () => { done(); reject(aborted()); };
    signal?.addEventListener('abort', onAbort);
    w.onmessage = (e) => { done(); typeof e.data === 'number' && e.data >= 0 ? resolve(e.data) : reject(new Error('no nonce')); };
    // A CSP without blob: workers, or no worker support: the caller falls back to the main thread.
    w.onerror = (e) => { e.preventDefault?.(); done(); reject(new Error('worker failed')); };
    w.postMessage({ c: challenge, d: difficulty });
  });
}

/** The smallest nonce (as its decimal string) meeting the difficulty, found without freezing the page. */
export async function solvePow(challenge: string, difficulty: number, o: SolveOptions = {}): Promise<string> {
  const canWorker = (o.worker ?? true) && typeof Worker === 'function' && typeof Blob === 'function' && typeof URL.createObjectURL === 'function';
  if (canWorker) {
    try {
      return String(await solveInWorker(challenge, difficulty, o.signal));
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') throw e;
    }
  }
  return String(await solveSliced(challenge, difficulty, o));
}
