// Pure logic of the figures the server publishes finer than a district, with differential
// privacy (the server's src/figures/): the names of an aggregate's columns (`estimate_…` for the
// public's estimates, bare for staff's exact counts), the time series CSV (public: one estimate per
// release; staff: exact counts), the hexagon sizes of the map's H3 resolutions, which number
// fields may be public, and the arithmetic the console's privacy panel shows (e^ε, the 95 % margin
// of discrete Laplace noise summed over releases). Used by the console (src/admin/) and the widget.

export type ReleaseEvery = 'day' | 'week';

/** The budget (ε) a city may choose, as the server checks it (figures::budget). */
export const MIN_BUDGET = 0.1;
export const MAX_BUDGET = 10;
export const DEFAULT_BUDGET = 2;

/** A public number field's bounds must be within this of 0 (campaigns::form::MAX_PUBLIC_NUMBER). */
export const MAX_PUBLIC_NUMBER = 1_000_000;

/** The property or column of one answer of a breakdown: `F=v` (exact), `estimate_F=v` (the public's). `''` is "no answer". */
export function breakdownColumn(field: string, value: string, estimated: boolean): string {
  const name = `${field}=${value === '' ? '(no answer)' : value}`;
  return estimated ? `estimate_${name}` : name;
}

/** What an aggregate says of its figures: staff's carry `figures: {exact: true}`, the public's `estimates`. */
export interface Provenance {
  estimates?: { exact?: boolean; released_at?: string | null; next_release?: string | null; epsilon?: number | null; releases?: number } | null;
  figures?: { exact?: boolean; note?: string } | null;
}

/**
 * Whether an aggregate's figures finer than a district are estimates. Only an answer that says
 * it is exact (`figures.exact === true`) is read as exact: anything else is labelled an
 * estimate, so that no public figure is ever shown as an exact count.
 */
export function isEstimated(fc: Provenance | null | undefined): boolean {
  return !(fc?.figures?.exact === true && !fc.estimates);
}

/** One period of the time series: `count` null when withheld. */
export interface SeriesRow {
  /** First day of the period (UTC), `YYYY-MM-DD`. */
  period: string;
  /** When the release's period ended (the public's series only). */
  end: string | null;
  count: number | null;
}

export interface ParsedSeries {
  /** The public's series (`estimate` column): one estimate per release, noise added. */
  estimated: boolean;
  rows: SeriesRow[];
}

/** Splits one CSV record (RFC 4180: quoted fields, doubled quotes) on `sep`. */
export function csvRecord(line: string, sep = ','): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; }
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === sep) { out.push(cur); cur = ''; }
    else cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * The time series CSV, read by its header: the public's `period,period_end,estimate,withheld`
 * (an empty estimate or `withheld=true` is withheld), or staff's `period,count`. Rows per
 * district (`code,name`) are added up per period. Excel's flavour (BOM, `;`) is read too.
 * Anything without a `period` column gives no rows.
 */
export function parseSeries(csv: string): ParsedSeries {
  const lines = csv.replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim() !== '');
  if (!lines.length) return { estimated: true, rows: [] };
  const sep = lines[0].includes(',') || !lines[0].includes(';') ? ',' : ';';
  const header = csvRecord(lines[0], sep).map((x) => x.trim());
  const col = (name: string) => header.indexOf(name);
  const [iPeriod, iEnd, iEstimate, iWithheld, iCount] = ['period', 'period_end', 'estimate', 'withheld', 'count'].map(col);
  const estimated = iEstimate >= 0;
  const iValue = estimated ? iEstimate : iCount;
  if (iPeriod < 0 || iValue < 0) return { estimated, rows: [] };
  const rows: SeriesRow[] = [];
  const byPeriod = new Map<string, SeriesRow>();
  for (const line of lines.slice(1)) {
    const r = csvRecord(line, sep);
    const period = r[iPeriod]?.trim() ?? '';
    if (!period) continue;
    const text = (r[iValue] ?? '').trim();
    const withheld = (iWithheld >= 0 && r[iWithheld]?.trim() === 'true') || text === '' || !isFinite(Number(text));
    const count = withheld ? null : Number(text);
    const end = iEnd >= 0 ? (r[iEnd]?.trim() || null) : null;
    const seen = byPeriod.get(period);
    if (seen) {
      // Per district: the period's figure is their sum, withheld if any part is.
      seen.count = seen.count === null || count === null ? null : seen.count + count;
      continue;
    }
    const row = { period, end, count };
    byPeriod.set(period, row);
    rows.push(row);
  }
  return { estimated, rows };
}

/** The map's H3 resolutions: average hexagon area (km²) and edge (m), as H3 documents them. */
export const H3_RESOLUTIONS: readonly { resolution: number; areaKm2: number; edgeM: number }[] = [
  { resolution: 6, areaKm2: 36.129, edgeM: 3725 },
  { resolution: 7, areaKm2: 5.1613, edgeM: 1406 },
  { resolution: 8, areaKm2: 0.73733, edgeM: 531 },
  { resolution: 9, areaKm2: 0.10533, edgeM: 201 },
  { resolution: 10, areaKm2: 0.015048, edgeM: 76 },
];

/** The default map resolution (about 0.74 km² hexagons). */
export const DEFAULT_MAP_RESOLUTION = 8;

/** Whether hexagons of resolution `r` are no finer than the public precision (the server's check: area ≥ precision²). */
export function resolutionAllowed(r: number, precisionM: number): boolean {
  const res = H3_RESOLUTIONS.find((x) => x.resolution === r);
  return !!res && (!(precisionM > 0) || res.areaKm2 * 1e6 >= precisionM * precisionM);
}

/** "0,74 km²" / "15 000 m²": a hexagon's area in the unit that reads best. */
export function formatArea(km2: number, lang: 'fr' | 'en'): string {
  const loc = lang === 'fr' ? 'fr-FR' : 'en-GB';
  if (km2 < 0.1) return `${new Intl.NumberFormat(loc, { maximumSignificantDigits: 2 }).format(km2 * 1e6)} m²`;
  return `${new Intl.NumberFormat(loc, { maximumSignificantDigits: 2 }).format(km2)} km²`;
}

/** "530 m" / "3,7 km". */
export function formatLength(m: number, lang: 'fr' | 'en'): string {
  const loc = lang === 'fr' ? 'fr-FR' : 'en-GB';
  if (m >= 1000) return `${new Intl.NumberFormat(loc, { maximumFractionDigits: 1 }).format(m / 1000)} km`;
  return `${new Intl.NumberFormat(loc, { maximumSignificantDigits: 2 }).format(m)} m`;
}

/** A number field the server lets be public: whole numbers between a min and a max, both within a million of 0. */
export function numberMayBePublic(f: { integer?: boolean; min?: number | null; max?: number | null }): boolean {
  const ok = (x: number | null | undefined): x is number => typeof x === 'number' && isFinite(x) && Math.abs(x) <= MAX_PUBLIC_NUMBER;
  return !!f.integer && ok(f.min) && ok(f.max) && f.min <= f.max;
}

/** How far one answer can move a public sum (a missing answer counts 0): the noise is proportional to it. */
export function sumSensitivity(lo: number, hi: number): number {
  return Math.max(hi, 0) - Math.min(lo, 0);
}

/** How many times more likely the figures can make any statement about one contribution: e^ε. */
export function likelihoodFactor(epsilon: number): number {
  return Math.exp(epsilon);
}

/** Variance of discrete Laplace noise of scale `b` (figures::noise::Scale::variance). */
export function noiseVariance(b: number): number {
  const q = Math.exp(-1 / b);
  return (2 * q) / ((1 - q) * (1 - q));
}

/** 95 % of a figure made of `releases` draws of scale `b` are within ± this of the truth. */
export function margin95(b: number, releases: number): number {
  return 1.96 * Math.sqrt(noiseVariance(b) * Math.max(0, releases));
}

/** A share as a percentage, at most one decimal: "73 %" / "73%", "50,4 %". */
export function formatPercent(x: number, lang: 'fr' | 'en'): string {
  return new Intl.NumberFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { style: 'percent', maximumFractionDigits: 1 }).format(x);
}
