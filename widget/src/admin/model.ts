// Shapes of the campaign settings the console reads and writes (GET/PATCH
// /api/v1/admin/campaigns/{slug}), as far as the console uses them.
import type { Basemap } from './maps';

export interface Field {
  key: string;
  type: 'choice' | 'number' | 'text' | 'boolean';
  label: { fr: string; en: string };
  required?: boolean;
  options?: { value: string; label: { fr: string; en: string } }[];
  min?: number | null;
  max?: number | null;
  integer?: boolean;
  max_length?: number | null;
  public?: boolean;
  help?: { fr: string; en: string } | null;
}

/**
 * District totals exact, withheld below `min_count`; figures finer than a district released
 * `release_every` as estimates, with a budget ε (`budget`) per contribution over the campaign's
 * life; the map's hexagons of H3 resolution `map_resolution` (never finer than
 * `public_precision_m`). The server refuses any other field (422).
 */
export interface Privacy {
  public_precision_m: number;
  min_count: number;
  budget: number;
  release_every: 'day' | 'week';
  map_resolution: number;
}

/**
 * The campaign is flooded ("under pressure"): since `since` (RFC 3339), every contribution
 * needs a proof of work of `difficulty` bits (a first contribution may come in from a reserve).
 */
export interface Pressure {
  difficulty: number;
  since: string;
}

export interface Campaign {
  slug: string;
  title: { fr: string; en: string };
  description?: { fr: string; en: string };
  status: 'draft' | 'open' | 'closed';
  moderation: 'post' | 'pre';
  form: { fields: Field[] };
  privacy: Privacy;
  allowed_origins?: string[];
  /** Asked of every contribution and subscription; null: only under pressure. */
  proof_of_work?: { difficulty: number } | null;
  opens_at?: string | null;
  closes_at?: string | null;
  targets?: Record<string, number>;
  basemap?: Basemap;
  geocoder?: { url: string } | null;
  retention_days?: number | null;
  /** Set by the server (read only): null, or absent from an older server, when not under pressure. */
  pressure?: Pressure | null;
}
