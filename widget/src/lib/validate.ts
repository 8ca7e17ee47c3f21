// Client-side validation mirroring the server's rules, so that citizens see errors before sending.
import { msg, tr } from './i18n';
import type { Field, Lang, Problem } from './types';

/** Raw form values: strings for number/text/choice inputs, booleans for checkboxes. */
export type RawValue = string | boolean | null | undefined;

export type FieldError =
  | { code: 'required' }
  | { code: 'required_check' }
  | { code: 'number' }
  | { code: 'integer' }
  | { code: 'min'; limit: number }
  | { code: 'max'; limit: number }
  | { code: 'max_length'; limit: number; length: number }
  | { code: 'choice' };

/** Accepts "12", " 12 ", "-3.5", "12,5" (French decimal comma); rejects "", "1e3", "12abc", "1 000". */
export function parseDecimal(s: string): number | null {
  const t = s.trim();
  if (!/^[+-]?(\d+([.,]\d*)?|[.,]\d+)$/.test(t)) return null;
  const n = Number(t.replace(',', '.'));
  return Number.isFinite(n) ? n : null;
}

/** Length as the server counts it: Unicode scalar values (Rust's chars().count()), not UTF-16 units. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export type FieldResult = { ok: true; value: unknown; present: boolean } | { ok: false; error: FieldError };

export function validateField(field: Field, raw: RawValue): FieldResult {
  switch (field.type) {
    case 'boolean': {
      const v = raw === true || raw === 'true' || raw === 'on';
      if (field.required && !v) return { ok: false, error: { code: 'required_check' } };
      return { ok: true, value: v, present: true };
    }
    case 'number': {
      const s = typeof raw === 'string' ? raw.trim() : '';
      if (s === '') return field.required ? { ok: false, error: { code: 'required' } } : { ok: true, value: undefined, present: false };
      const n = parseDecimal(s);
      if (n == null) return { ok: false, error: { code: 'number' } };
      if (field.integer && !Number.isInteger(n)) return { ok: false, error: { code: 'integer' } };
      if (field.min != null && n < field.min) return { ok: false, error: { code: 'min', limit: field.min } };
      if (field.max != null && n > field.max) return { ok: false, error: { code: 'max', limit: field.max } };
      return { ok: true, value: n, present: true };
    }
    case 'text': {
      const s = typeof raw === 'string' ? raw.trim() : '';
      if (s === '') return field.required ? { ok: false, error: { code: 'required' } } : { ok: true, value: undefined, present: false };
      const len = charLength(s);
      if (field.max_length != null && len > field.max_length) return { ok: false, error: { code: 'max_length', limit: field.max_length, length: len } };
      return { ok: true, value: s, present: true };
    }
    case 'choice': {
      const s = typeof raw === 'string' ? raw : '';
      if (s === '') return field.required ? { ok: false, error: { code: 'required' } } : { ok: true, value: undefined, present: false };
      if (!field.options.some((o) => o.value === s)) return { ok: false, error: { code: 'choice' } };
      return { ok: true, value: s, present: true };
    }
    default:
      // Unknown field type from a newer server: send nothing, let the server decide.
      return { ok: true, value: undefined, present: false };
  }
}

/** Validates every field; returns the `properties` object to send and the errors by field key. */
export function validateAnswers(fields: Field[], raw: Record<string, RawValue>): { properties: Record<string, unknown>; errors: Record<string, FieldError> } {
  const properties: Record<string, unknown> = {};
  const errors: Record<string, FieldError> = {};
  for (const f of fields) {
    const r = validateField(f, raw[f.key]);
    if (!r.ok) errors[f.key] = r.error;
    else if (r.present) properties[f.key] = r.value;
  }
  return { properties, errors };
}

export function formatNumberPlain(n: number, lang: Lang): string {
  return lang === 'fr' ? String(n).replace('.', ',') : String(n);
}

export function errorMessage(e: FieldError, lang: Lang): string {
  switch (e.code) {
    case 'required': return msg(lang, 'errRequired');
    case 'required_check': return msg(lang, 'errRequiredCheck');
    case 'number': return msg(lang, 'errNumber');
    case 'integer': return msg(lang, 'errInteger');
    case 'min': return msg(lang, 'errMin', { n: formatNumberPlain(e.limit, lang) });
    case 'max': return msg(lang, 'errMax', { n: formatNumberPlain(e.limit, lang) });
    case 'max_length': return msg(lang, 'errMaxLength', { n: e.limit, c: e.length });
    case 'choice': return msg(lang, 'errChoice');
  }
}

export type LocationError = 'missing' | 'lon' | 'lat' | 'outside';

/** Validates a longitude/latitude pair typed by hand (strings) or coming from the map (numbers). */
export function validateLonLat(lon: string | number, lat: string | number, bounds?: [number, number, number, number] | null): { ok: true; lon: number; lat: number } | { ok: false; error: LocationError } {
  const x = typeof lon === 'number' ? lon : parseDecimal(lon);
  const y = typeof lat === 'number' ? lat : parseDecimal(lat);
  if ((lon === '' || lon == null) && (lat === '' || lat == null)) return { ok: false, error: 'missing' };
  if (x == null || !Number.isFinite(x) || x < -180 || x > 180) return { ok: false, error: 'lon' };
  if (y == null || !Number.isFinite(y) || y < -90 || y > 90) return { ok: false, error: 'lat' };
  if (bounds && (x < bounds[0] || x > bounds[2] || y < bounds[1] || y > bounds[3])) return { ok: false, error: 'outside' };
  return { ok: true, lon: x, lat: y };
}

export function locationErrorMessage(e: LocationError, lang: Lang): string {
  return msg(lang, e === 'missing' ? 'errLocation' : e === 'lon' ? 'errLon' : e === 'lat' ? 'errLat' : 'errOutside');
}

/**
 * Maps a problem+json body to where its messages belong:
 * errors[].field "properties.KEY" -> that field, "geometry" (or "geometry.…") -> the location block,
 * anything else (or no errors[] at all) -> the general message, which also carries `detail`.
 */
export function mapServerErrors(p: Problem, fieldKeys: string[]): { fields: Record<string, string>; geometry: string | null; general: string[] } {
  const fields: Record<string, string> = {};
  const general: string[] = [];
  let geometry: string | null = null;
  for (const e of p.errors ?? []) {
    if (!e || typeof e.field !== 'string') continue;
    const detail = String(e.detail ?? e.message ?? '');
    const m = /^properties\.(.+)$/.exec(e.field);
    if (m && fieldKeys.includes(m[1])) fields[m[1]] = fields[m[1]] ? `${fields[m[1]]} ${detail}` : detail;
    else if (e.field === 'geometry' || e.field.startsWith('geometry.') || e.field.startsWith('geometry[')) geometry = geometry ? `${geometry} ${detail}` : detail;
    else general.push(`${e.field}: ${detail}`);
  }
  if (general.length === 0 && Object.keys(fields).length === 0 && geometry == null) general.push(p.detail || p.title || '');
  return { fields, geometry, general: general.filter(Boolean) };
}

/** Label of a field in the given language (with the choice options' labels). */
export function fieldLabel(f: Field, lang: Lang): string {
  return tr(f.label, lang) || f.key;
}
