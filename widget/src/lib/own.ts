// The submitter's own entry, read back on the edit page: answers as form values, the exact point, and
// what the server says about it (status, district, dates), whether beside the answers in a `civicmap`
// member or mixed into `properties`.
import type { Field, Lang, OwnSubmission } from './types';
import { formatNumberPlain, type RawValue } from './validate';

export interface OwnEntry {
  lon: number | null;
  lat: number | null;
  values: Record<string, RawValue>;
  status: string | null;
  district: string | null;
  created: string | null;
  updated: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v ? v : null);

export function parseOwn(f: OwnSubmission, fields: Field[], lang: Lang): OwnEntry {
  const props = f.properties && typeof f.properties === 'object' ? f.properties : {};
  const values: Record<string, RawValue> = {};
  for (const field of fields) {
    const v = props[field.key];
    if (v == null) continue;
    if (field.type === 'boolean') values[field.key] = v === true;
    else if (field.type === 'number' && typeof v === 'number') values[field.key] = formatNumberPlain(v, lang);
    else values[field.key] = String(v);
  }
  const keys = new Set(fields.map((x) => x.key));
  const meta: Record<string, unknown> = f.civicmap && typeof f.civicmap === 'object' ? f.civicmap
    : Object.fromEntries(Object.entries(props).filter(([k]) => !keys.has(k)));
  const d = meta.district as unknown;
  const district = d && typeof d === 'object' ? str((d as { name?: unknown }).name) ?? str((d as { code?: unknown }).code) : str(d) ?? str(meta.district_name);
  const c = f.geometry?.type === 'Point' ? f.geometry.coordinates : null;
  const ok = Array.isArray(c) && c.length >= 2 && Number.isFinite(c[0]) && Number.isFinite(c[1]);
  return {
    lon: ok ? c![0] : null,
    lat: ok ? c![1] : null,
    values,
    status: str(meta.status),
    district,
    created: str(meta.created_at) ?? str(meta.submitted_at) ?? str(meta.created),
    updated: str(meta.updated_at) ?? str(meta.updated),
  };
}
