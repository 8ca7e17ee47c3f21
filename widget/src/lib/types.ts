// Shapes of the civicmap HTTP API (see the server's /api/v1 docs).
export type Lang = 'fr' | 'en';
export type I18nText = { fr?: string; en?: string } | string;

interface FieldBase {
  key: string;
  label: I18nText;
  help?: I18nText | null;
  required?: boolean;
}
export interface NumberField extends FieldBase { type: 'number'; min?: number | null; max?: number | null; integer?: boolean }
export interface ChoiceOption { value: string; label: I18nText }
export interface ChoiceField extends FieldBase { type: 'choice'; options: ChoiceOption[] }
export interface TextField extends FieldBase { type: 'text'; max_length?: number | null }
export interface BooleanField extends FieldBase { type: 'boolean' }
export type Field = NumberField | ChoiceField | TextField | BooleanField;

export type Basemap =
  | { type: 'raster'; tiles: string[]; attribution?: string; tileSize?: number; maxzoom?: number }
  | { type: 'style'; url: string };

export interface Campaign {
  slug: string;
  title: I18nText;
  description?: I18nText | null;
  status: 'draft' | 'open' | 'closed';
  opens_at?: string | null;
  closes_at?: string | null;
  default_lang?: Lang;
  bounds?: [number, number, number, number] | null;
  form: { fields: Field[] };
  /**
   * District totals are exact, withheld below `min_count`; finer figures (the map's dots) are
   * estimates released `release_every` with a privacy budget of `budget` (ε) per contribution.
   */
  privacy?: { public_precision_m?: number; min_count?: number; budget?: number; release_every?: 'day' | 'week'; map_resolution?: number };
  moderation?: 'post' | 'pre';
  attribution?: string;
  basemap?: Basemap | null;
  /** Optional address search: a URL template with {q} (and optionally {lang}, {bbox}). */
  geocoder?: { url: string } | null;
  /** Whether civicmap's own address search (`GET …/addresses?q=`) knows addresses in the campaign's area. */
  address_search?: boolean;
  /** Whether citizens may follow the campaign or a district by e-mail (the server sends e-mail). */
  notices?: boolean;
  /** Seconds a form must have been open before it is sent (server default 3). */
  min_fill_seconds?: number;
  /** When set, every submission carries a proof of work of this difficulty. */
  proof_of_work?: { difficulty: number } | null;
  allowed_origins?: string[];
}

export interface DistrictProps {
  code: string; name: string; count: number | null; withheld: boolean; share?: number;
  /** Households on file for the district (public figures), or null. */
  households?: number | null;
  /** Contributions per 1,000 households; null when the count is withheld or there are no households. */
  per_1000_households?: number | null;
}
export type Position = number[];
export type PolygonCoords = Position[][];
export interface DistrictFeature {
  type: 'Feature';
  id?: string | number;
  properties: DistrictProps;
  geometry: { type: 'Polygon'; coordinates: PolygonCoords } | { type: 'MultiPolygon'; coordinates: PolygonCoords[] };
}
export interface DistrictCollection {
  type: 'FeatureCollection';
  features: DistrictFeature[];
  total?: { count: number | null; withheld: boolean };
  min_count?: number;
}

export interface SubmissionResult {
  id: string;
  status: 'published' | 'pending';
  district: { code: string; name: string } | null;
  edit_token: string;
  edit_url: string;
}

/** A submission as its submitter reads it back (GET …/submissions/{id} with X-Edit-Token). */
export interface OwnSubmission {
  type: 'Feature';
  id?: string;
  geometry: { type: 'Point'; coordinates: number[] } | null;
  properties: Record<string, unknown> | null;
  /** Metadata (status, district, dates), when the server puts it beside the answers. */
  civicmap?: Record<string, unknown> | null;
  [k: string]: unknown;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  /** The first offending field. */
  field?: string;
  errors?: { field: string; detail?: string; message?: string }[];
}

/** One milestone or update of a campaign's story. */
export interface StoryEntry {
  id: string;
  kind: 'milestone' | 'update';
  /** `YYYY-MM-DD`. */
  date: string;
  title: I18nText;
  text: I18nText;
  link?: string | null;
}

/** GET /api/v1/campaigns/{slug}/story. */
export interface Story {
  campaign: string;
  entries: StoryEntry[];
}
