// Classes, colours and legend of the district choropleth. Shared by the GeoJSON and the vector-tile paths.
import type { DistrictCollection } from './types';

/** Sequential palette (ColorBrewer YlGnBu, colour-blind safe), light to dark, by number of classes. */
const PALETTES: Record<number, string[]> = {
  1: ['#41b6c4'],
  2: ['#a1dab4', '#225ea8'],
  3: ['#c7e9b4', '#41b6c4', '#225ea8'],
  4: ['#c7e9b4', '#7fcdbb', '#1d91c0', '#253494'],
  5: ['#ffffcc', '#a1dab4', '#41b6c4', '#2c7fb8', '#253494'],
};
export const WITHHELD_COLOR = '#d4d4d4';
export const OUTLINE_COLOR = '#33475b';

export interface ClassBreak { from: number; to: number | null; color: string }

function niceStep(raw: number): number {
  if (raw <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) {
    const s = m * p;
    if (s >= raw && Number.isInteger(s)) return s;
  }
  return 10 * p;
}

/**
 * Equal-interval classes with round bounds from the smallest shown count (the k threshold: smaller
 * counts are withheld) to the largest, at most `max` classes. Every class has integer bounds.
 */
export function computeBreaks(counts: Array<number | null | undefined>, minCount = 0, max = 5): ClassBreak[] {
  const shown = counts.filter((c): c is number => typeof c === 'number' && Number.isFinite(c));
  const lo = Math.max(0, Math.min(minCount, ...shown.length ? shown : [minCount]));
  const hi = shown.length ? Math.max(...shown) : lo;
  const span = hi - lo + 1;
  const step = niceStep(span / max);
  const n = Math.max(1, Math.min(max, Math.ceil(span / step)));
  const pal = PALETTES[n];
  const out: ClassBreak[] = [];
  for (let i = 0; i < n; i++) out.push({ from: lo + i * step, to: i === n - 1 ? null : lo + (i + 1) * step - 1, color: pal[i] });
  return out;
}

export function colorFor(count: number | null, withheld: boolean, breaks: ClassBreak[]): string {
  if (withheld || count == null) return WITHHELD_COLOR;
  let c = breaks[0]?.color ?? WITHHELD_COLOR;
  for (const b of breaks) if (count >= b.from) c = b.color;
  return c;
}

/** MapLibre expression giving the fill colour of a district from its `count` property. */
export function fillColorExpression(breaks: ClassBreak[]): unknown[] {
  const expr: unknown[] = ['step', ['to-number', ['coalesce', ['get', 'count'], 0]], breaks[0].color];
  for (let i = 1; i < breaks.length; i++) expr.push(breaks[i].from, breaks[i].color);
  return expr;
}

export function breaksFor(fc: DistrictCollection): ClassBreak[] {
  return computeBreaks(fc.features.map((f) => (f.properties.withheld ? null : f.properties.count)), fc.min_count ?? 0);
}

/** Total of the collection: the server's `total` member when present, else the sum of the shown counts. */
export function totalOf(fc: DistrictCollection): { count: number | null; withheld: boolean } {
  if (fc.total && typeof fc.total === 'object') return { count: fc.total.count ?? null, withheld: !!fc.total.withheld };
  let s = 0;
  for (const f of fc.features) if (!f.properties.withheld && typeof f.properties.count === 'number') s += f.properties.count;
  return { count: s, withheld: false };
}

/** An 8×8 hatch (grey on light grey), the pattern of withheld districts on every map (the
 * widget's and the console's): it says "not shown" without a colour of the scale. */
export function hatchImage(): { width: number; height: number; data: Uint8Array } {
  const n = 8;
  const data = new Uint8Array(n * n * 4);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    const dark = (x + y) % n < 2;
    const i = (y * n + x) * 4;
    data[i] = data[i + 1] = data[i + 2] = dark ? 0x8a : 0xe6;
    data[i + 3] = 255;
  }
  return { width: n, height: n, data };
}
