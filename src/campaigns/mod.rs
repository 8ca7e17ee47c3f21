//! Campaigns: what a city asks, where, when, and under which privacy and moderation rules.

pub mod cache;
pub mod form;
pub mod http;
pub mod staff;
pub mod wire;

use serde::{Deserialize, Deserializer, Serialize};
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::validation::{FieldError, Invalid};
pub use form::Form;

/// What can go wrong with a campaign.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// No campaign by this name (or, for public reads, a draft).
    #[error("no campaign named `{0}`")]
    NotFound(String),
    /// The name is taken.
    #[error("a campaign named `{0}` already exists")]
    SlugTaken(String),
    /// The campaign does not take contributions now; why.
    #[error("{0}")]
    NotAccepting(String),
    /// Some settings are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

type Result<T, E = CampaignError> = std::result::Result<T, E>;

/// A text in French and English.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Localized {
    /// French.
    pub fr: String,
    /// English.
    pub en: String,
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being prepared; not public.
    Draft,
    /// Public and taking contributions (between `opens_at` and `closes_at` when set).
    Open,
    /// Public, read-only.
    Closed,
}

/// When contributions become public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Moderation {
    /// Public at once; a moderator can hide them afterwards.
    Post,
    /// Public only once a moderator approves them.
    Pre,
}

/// Interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// French.
    Fr,
    /// English.
    En,
}

/// How much of the campaign's data is published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// The finest detail anything public may show, in metres: no public hexagon is smaller
    /// than a square of this side, and retention snaps exact positions to a grid of it.
    pub public_precision_m: i32,
    /// A district total below this many distinct contributors is withheld (with another, so
    /// that it cannot be recovered by subtraction), and an estimate below it is not shown.
    pub min_count: i32,
    /// The privacy-loss budget ε of each contribution, for everything published finer than a
    /// district over the campaign's whole life (0.1 to 10; see [`crate::figures::budget`]).
    #[serde(default = "default_budget")]
    pub budget: f64,
    /// How often the figures finer than a district are released (`day` or `week`, UTC).
    #[serde(default)]
    pub release_every: ReleaseEvery,
    /// The H3 resolution of the map's hexagons (6 to 10; 8 is about 0.74 km²): coarser ones
    /// are their sums, finer ones are not published.
    #[serde(default = "default_map_resolution")]
    pub map_resolution: u8,
}

/// How often a campaign's figures finer than a district are released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseEvery {
    /// Each day at midnight UTC (released a few hours later, see
    /// [`crate::figures::release::GRACE`]).
    Day,
    /// Each Monday at midnight UTC.
    #[default]
    Week,
}

fn default_budget() -> f64 {
    crate::figures::budget::DEFAULT_BUDGET
}

fn default_map_resolution() -> u8 {
    8
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            public_precision_m: 50,
            min_count: 5,
            budget: default_budget(),
            release_every: ReleaseEvery::default(),
            map_resolution: default_map_resolution(),
        }
    }
}

impl Privacy {
    fn check(&self) -> Vec<FieldError> {
        use crate::figures::budget::{MAX_BUDGET, MIN_BUDGET};
        let mut errors = Vec::new();
        if !(1..=10_000).contains(&self.public_precision_m) {
            errors.push(FieldError::new(
                "privacy.public_precision_m",
                "must be between 1 and 10000 metres",
            ));
        }
        if !(1..=1_000).contains(&self.min_count) {
            errors.push(FieldError::new(
                "privacy.min_count",
                "must be between 1 and 1000",
            ));
        }
        if !(MIN_BUDGET..=MAX_BUDGET).contains(&self.budget) {
            errors.push(FieldError::new(
                "privacy.budget",
                format!("must be between {MIN_BUDGET} and {MAX_BUDGET} (ε, the privacy loss each contribution may cost)"),
            ));
        }
        match h3o::Resolution::try_from(self.map_resolution) {
            Ok(r) if (6..=10).contains(&self.map_resolution) => {
                let precision = f64::from(self.public_precision_m);
                if r.area_m2() < precision * precision {
                    errors.push(FieldError::new(
                        "privacy.map_resolution",
                        format!(
                            "hexagons of resolution {} (about {:.0} m²) are finer than the public precision ({precision} m)",
                            self.map_resolution,
                            r.area_m2()
                        ),
                    ));
                }
            }
            _ => errors.push(FieldError::new(
                "privacy.map_resolution",
                "must be an H3 resolution from 6 to 10",
            )),
        }
        errors
    }
}

/// A campaign: its settings, its area's bounds and its form. What the API sends of it is in
/// [`wire`]: nothing here is sent unless `wire` says so.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: i64,
    /// URL name, e.g. `fibre-pour-tous`.
    pub slug: String,
    pub title: Localized,
    pub description: Localized,
    pub default_lang: Lang,
    pub status: Status,
    pub opens_at: Option<OffsetDateTime>,
    pub closes_at: Option<OffsetDateTime>,
    /// `[min_lon, min_lat, max_lon, max_lat]` of the campaign's area, if it has one.
    pub bounds: Option<[f64; 4]>,
    pub form: Form,
    pub privacy: Privacy,
    pub moderation: Moderation,
    /// An optional background map; without one the map is a plain background and districts.
    pub basemap: Option<Basemap>,
    /// An optional address search service, for placing oneself without the map.
    pub geocoder: Option<Geocoder>,
    // Retention (trust and safety).
    /// Days after the campaign closes before exact positions are snapped to the public grid and
    /// free-text answers deleted (see [`crate::retention`]); `None`: kept until erased.
    pub retention_days: Option<i32>,
    /// When that was last done, if it was.
    pub retention_applied_at: Option<OffsetDateTime>,
    /// Credits for the map data, to be shown with the map.
    pub attribution: String,
    /// A target per district code (e.g. 300 households); progress is reported against it.
    pub targets: std::collections::BTreeMap<String, i64>,
    // Trust and safety (src/safety).
    /// Least seconds a person takes to fill the form (0 to 60, 3 by default).
    pub min_fill_seconds: i16,
    /// Proof of work asked before each submission (`None`: none).
    pub proof_of_work: Option<crate::safety::pow::ProofOfWork>,
    /// Rule against repeated submissions from one connection (`None`: none).
    pub duplicates: Option<crate::safety::Duplicates>,
    /// Sites (`scheme://host[:port]`) allowed to embed the map and to write to it; empty: any
    /// site ("open").
    pub allowed_origins: Vec<String>,
    /// True when the area is the union of the districts (no explicit area).
    pub by_districts: bool,
    /// Version of the settings, area and districts this copy reflects.
    pub config_version: i64,
    /// Cell size of the public grid in Web Mercator units (`None` without an area).
    pub grid_size: Option<f64>,
    /// Whether addresses were loaded inside the area (the address search finds some).
    pub address_search: bool,
}

/// Attribution shown wherever district outlines from OpenStreetMap are displayed.
pub const ATTRIBUTION: &str = "© OpenStreetMap contributors";

impl Campaign {
    /// An open campaign that is not stored (id 1, no area, default settings) asking `form`: for
    /// simulations and tests of what works without a database.
    pub fn unsaved(slug: &str, form: Form) -> Self {
        Self {
            id: 1,
            slug: slug.to_owned(),
            title: Localized::default(),
            description: Localized::default(),
            default_lang: Lang::Fr,
            status: Status::Open,
            opens_at: None,
            closes_at: None,
            bounds: Some([2.0, 48.0, 3.0, 49.0]),
            form,
            privacy: Privacy::default(),
            moderation: Moderation::Post,
            basemap: None,
            geocoder: None,
            retention_days: None,
            retention_applied_at: None,
            attribution: String::new(),
            targets: std::collections::BTreeMap::new(),
            min_fill_seconds: 0,
            proof_of_work: None,
            duplicates: None,
            allowed_origins: Vec::new(),
            by_districts: true,
            config_version: 1,
            grid_size: None,
            address_search: false,
        }
    }

    /// Whether the campaign takes contributions at `now`; if not, why.
    pub fn accepts_contributions(&self, now: OffsetDateTime) -> Result<()> {
        match self.status {
            Status::Open => {}
            Status::Draft => {
                return Err(CampaignError::NotAccepting(
                    "this campaign is not open yet".into(),
                ));
            }
            Status::Closed => {
                return Err(CampaignError::NotAccepting(
                    "this campaign is closed to contributions".into(),
                ));
            }
        }
        if let Some(opens_at) = self.opens_at
            && now < opens_at
        {
            return Err(CampaignError::NotAccepting(format!(
                "this campaign opens at {opens_at}"
            )));
        }
        if let Some(closes_at) = self.closes_at
            && now >= closes_at
        {
            return Err(CampaignError::NotAccepting(format!(
                "this campaign closed at {closes_at}"
            )));
        }
        Ok(())
    }
}

/// A campaign as [`select_campaign!`] reads it; [`Campaign::from`] is the one mapping.
struct CampaignRow {
    id: i64,
    slug: String,
    title_fr: String,
    title_en: String,
    description_fr: String,
    description_en: String,
    default_lang: String,
    status: String,
    opens_at: Option<OffsetDateTime>,
    closes_at: Option<OffsetDateTime>,
    form: sqlx::types::Json<Form>,
    public_precision_m: i32,
    min_count: i32,
    privacy_budget: f64,
    release_every: String,
    map_resolution: i16,
    moderation: String,
    basemap: Option<sqlx::types::Json<Basemap>>,
    geocoder: Option<sqlx::types::Json<Geocoder>>,
    min_fill_seconds: i16,
    proof_of_work: Option<sqlx::types::Json<crate::safety::pow::ProofOfWork>>,
    duplicates: Option<sqlx::types::Json<crate::safety::Duplicates>>,
    allowed_origins: Vec<String>,
    // Retention (trust and safety).
    retention_days: Option<i32>,
    retention_applied_at: Option<OffsetDateTime>,
    bounds: Option<Vec<f64>>,
    by_districts: bool,
    config_version: i64,
    grid_size: Option<f64>,
    targets: sqlx::types::Json<std::collections::BTreeMap<String, i64>>,
    address_search: bool,
}

/// `sqlx::query_as!(CampaignRow, ...)` of `SELECT ... FROM campaigns` followed by the given
/// clause (a literal) and its arguments: the columns are written once, the query still
/// checked at compile time.
macro_rules! select_campaign {
    ($tail:literal $(, $arg:expr)*) => {
        sqlx::query_as!(
            CampaignRow,
            r#"SELECT id, slug, title_fr, title_en, description_fr, description_en,
        default_lang, status, opens_at, closes_at, form AS "form: _", public_precision_m, min_count,
        privacy_budget, release_every, map_resolution, moderation, basemap AS "basemap: _", geocoder AS "geocoder: _",
        min_fill_seconds, proof_of_work AS "proof_of_work: _", duplicates AS "duplicates: _",
        allowed_origins, retention_days, retention_applied_at,
        bounds, area IS NULL AS "by_districts!", config_version, grid_size, targets AS "targets: _",
        EXISTS (SELECT 1 FROM address_streets s JOIN addresses a ON a.street_id = s.id
                WHERE s.box && campaigns.effective_area
                  AND ST_Intersects(campaigns.effective_area, s.box)
                  AND ST_Intersects(campaigns.effective_area, a.geom)) AS "address_search!"
    FROM campaigns "# + $tail
            $(, $arg)*
        )
    };
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> T {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .expect("the database CHECK constraints only allow known values")
}

impl From<CampaignRow> for Campaign {
    fn from(row: CampaignRow) -> Self {
        let bounds = row.bounds.and_then(|b| <[f64; 4]>::try_from(b).ok());
        Campaign {
            id: row.id,
            slug: row.slug,
            title: Localized {
                fr: row.title_fr,
                en: row.title_en,
            },
            description: Localized {
                fr: row.description_fr,
                en: row.description_en,
            },
            default_lang: parse(&row.default_lang),
            status: parse(&row.status),
            opens_at: row.opens_at,
            closes_at: row.closes_at,
            bounds,
            form: row.form.0,
            privacy: Privacy {
                public_precision_m: row.public_precision_m,
                min_count: row.min_count,
                budget: row.privacy_budget,
                release_every: parse(&row.release_every),
                map_resolution: u8::try_from(row.map_resolution).unwrap_or(8),
            },
            moderation: parse(&row.moderation),
            basemap: row.basemap.map(|b| b.0),
            geocoder: row.geocoder.map(|g| g.0),
            retention_days: row.retention_days,
            retention_applied_at: row.retention_applied_at,
            attribution: ATTRIBUTION.to_owned(),
            min_fill_seconds: row.min_fill_seconds,
            proof_of_work: row.proof_of_work.map(|p| p.0),
            duplicates: row.duplicates.map(|d| d.0),
            allowed_origins: row.allowed_origins,
            by_districts: row.by_districts,
            config_version: row.config_version,
            grid_size: row.grid_size,
            targets: row.targets.0,
            address_search: row.address_search,
        }
    }
}

fn as_text<T: Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => unreachable!("unit enums serialize to strings"),
    }
}

/// The campaign with this slug, drafts included.
pub async fn find(db: impl PgExecutor<'_>, slug: &str) -> Result<Option<Campaign>> {
    if !is_valid_slug(slug) {
        return Ok(None);
    }
    let row = select_campaign!("WHERE slug = $1", slug)
        .fetch_optional(db)
        .await?;
    Ok(row.map(Campaign::from))
}

/// The campaign with this id, drafts included.
pub async fn get_by_id(db: impl PgExecutor<'_>, id: i64) -> Result<Campaign> {
    let row = select_campaign!("WHERE id = $1", id)
        .fetch_optional(db)
        .await?;
    row.map(Campaign::from)
        .ok_or_else(|| CampaignError::NotFound(format!("#{id}")))
}

/// The campaign with this slug, or a 404 naming it.
pub async fn get(db: impl PgExecutor<'_>, slug: &str) -> Result<Campaign> {
    find(db, slug).await?.ok_or_else(|| not_found(slug))
}

/// The 404 for an unknown campaign.
pub fn not_found(slug: &str) -> CampaignError {
    CampaignError::NotFound(slug.to_owned())
}

/// The public campaign with this slug: drafts are not public and answer 404.
pub async fn get_public(db: impl PgExecutor<'_>, slug: &str) -> Result<Campaign> {
    match find(db, slug).await? {
        Some(campaign) if campaign.status != Status::Draft => Ok(campaign),
        _ => Err(not_found(slug)),
    }
}

/// Every campaign, newest first.
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Campaign>> {
    let rows = select_campaign!("ORDER BY created_at DESC, id DESC")
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(Campaign::from).collect())
}

/// Deserializes a field that may be absent (outer `None`), `null` (`Some(None)`) or a value.
pub(crate) fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The settings of a campaign, as the admin API and the demo loader give them. On creation
/// absent fields take their defaults; on update absent fields are left as they are, and `null`
/// clears a nullable field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// Required on creation; cannot be changed afterwards.
    pub slug: Option<String>,
    pub title: Option<Localized>,
    pub description: Option<Localized>,
    pub default_lang: Option<Lang>,
    pub status: Option<Status>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub opens_at: Option<Option<Rfc3339>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closes_at: Option<Option<Rfc3339>>,
    /// A GeoJSON Polygon or MultiPolygon; `null` means "the union of the districts".
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub area: Option<Option<serde_json::Value>>,
    pub form: Option<Form>,
    pub privacy: Option<Privacy>,
    pub moderation: Option<Moderation>,
    /// A background map; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    pub basemap: Option<Option<Basemap>>,
    /// An address search service; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    pub geocoder: Option<Option<Geocoder>>,
    /// Targets by district code, replacing the current ones (`{}` removes them all).
    pub targets: Option<std::collections::BTreeMap<String, i64>>,
    // Trust and safety (src/safety).
    /// Least seconds to fill the form (0 to 60).
    pub min_fill_seconds: Option<i16>,
    /// `{"difficulty": N}` (1 to 26 leading zero bits); `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    pub proof_of_work: Option<Option<crate::safety::pow::ProofOfWork>>,
    /// `{"distance_m": D, "window_minutes": W}`: duplicates are flagged for the moderators; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    pub duplicates: Option<Option<crate::safety::Duplicates>>,
    /// Origins allowed to embed and write; `[]`: any site.
    pub allowed_origins: Option<Vec<String>>,
    // Retention (trust and safety).
    /// Days (0 to 36500) after the campaign closes before exact data is coarsened; `null`:
    /// kept until erased.
    #[serde(default, deserialize_with = "double_option")]
    pub retention_days: Option<Option<i32>>,
}

/// A background map from a provider the city chooses (its hosts are allowed by the iframe
/// page's Content-Security-Policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Basemap {
    /// Raster tiles: URL templates with `{z}`, `{x}` and `{y}`.
    Raster {
        /// One to four tile URL templates.
        tiles: Vec<String>,
        /// Credits shown on the map.
        #[serde(default)]
        attribution: String,
        /// Tile size in pixels (256 by default).
        #[serde(rename = "tileSize", default, skip_serializing_if = "Option::is_none")]
        tile_size: Option<u16>,
        /// Highest zoom the provider serves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        maxzoom: Option<u8>,
    },
    /// A MapLibre style document.
    Style {
        /// The style's URL.
        url: String,
    },
}

/// An address search service that answers GeoJSON (addok, photon, pelias) or Nominatim JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Geocoder {
    /// URL template with `{q}` (the query), and optionally `{lang}` and `{bbox}`.
    pub url: String,
}

/// The origin (`scheme://host[:port]`) of an https URL, or of an http URL on this machine.
fn service_origin(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && local) {
        return Err("must be an https URL".to_owned());
    }
    Ok(parsed.origin().ascii_serialization())
}

impl Basemap {
    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match self {
            Basemap::Raster {
                tiles, tile_size, ..
            } => {
                if tiles.is_empty() || tiles.len() > 4 {
                    errors.push(FieldError::new(
                        "basemap.tiles",
                        "needs one to four tile URL templates",
                    ));
                }
                for (i, tile) in tiles.iter().enumerate() {
                    if let Err(e) = service_origin(tile) {
                        errors.push(FieldError::new(format!("basemap.tiles[{i}]"), e));
                    } else if !["{z}", "{x}", "{y}"].iter().all(|p| tile.contains(p)) {
                        errors.push(FieldError::new(
                            format!("basemap.tiles[{i}]"),
                            "must contain {z}, {x} and {y}",
                        ));
                    }
                }
                if tile_size.is_some_and(|s| s != 256 && s != 512) {
                    errors.push(FieldError::new("basemap.tileSize", "must be 256 or 512"));
                }
            }
            Basemap::Style { url } => {
                if let Err(e) = service_origin(url) {
                    errors.push(FieldError::new("basemap.url", e));
                }
            }
        }
        errors
    }

    /// The origins the map loads from.
    pub fn origins(&self) -> Vec<String> {
        match self {
            Basemap::Raster { tiles, .. } => tiles
                .iter()
                .filter_map(|t| service_origin(t).ok())
                .collect(),
            Basemap::Style { url } => service_origin(url).into_iter().collect(),
        }
    }
}

impl Geocoder {
    fn check(&self) -> Vec<FieldError> {
        match service_origin(&self.url) {
            Err(e) => vec![FieldError::new("geocoder.url", e)],
            Ok(_) if !self.url.contains("{q}") => vec![FieldError::new(
                "geocoder.url",
                "must contain {q}, where the query goes",
            )],
            Ok(_) => Vec::new(),
        }
    }

    /// The origin searches go to.
    pub fn origin(&self) -> Option<String> {
        service_origin(&self.url).ok()
    }
}

/// A point in time written as RFC 3339, e.g. `2026-12-01T00:00:00Z`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Rfc3339(#[serde(with = "time::serde::rfc3339")] pub OffsetDateTime);

/// Whether `slug` can name a campaign: 1 to 64 of `a-z`, `0-9` and `-`, not at either end.
pub fn is_valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// Creates a campaign from `input` (slug and title required).
pub async fn create(pool: &PgPool, input: CampaignInput) -> Result<Campaign> {
    let slug = input.slug.clone().unwrap_or_default();
    let mut errors = Vec::new();
    if !is_valid_slug(&slug) {
        errors.push(FieldError::new(
            "slug",
            "is required: 1 to 64 characters among a-z, 0-9 and -, not starting or ending with -",
        ));
    }
    if input.title.is_none() {
        errors.push(FieldError::new(
            "title",
            "is required, as {\"fr\": ..., \"en\": ...}",
        ));
    }
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    let mut tx = pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar!(
        "INSERT INTO campaigns (slug, title_fr, title_en) VALUES ($1, '', '')
         ON CONFLICT (slug) DO NOTHING RETURNING id",
        slug,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let id = id.ok_or_else(|| CampaignError::SlugTaken(slug.clone()))?;
    let campaign = apply(
        &mut tx,
        id,
        CampaignInput {
            slug: None,
            ..input
        },
    )
    .await?;
    tx.commit().await?;
    Ok(campaign)
}

/// Changes the campaign named `slug` as `input` says.
pub async fn update(pool: &PgPool, slug: &str, input: CampaignInput) -> Result<Campaign> {
    if input.slug.as_deref().is_some_and(|s| s != slug) {
        return Err(Invalid::field("slug", "cannot be changed").into());
    }
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar!("SELECT id FROM campaigns WHERE slug = $1 FOR UPDATE", slug)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| not_found(slug))?;
    let campaign = apply(&mut tx, id, input).await?;
    tx.commit().await?;
    Ok(campaign)
}

/// Writes `input` over the locked campaign `id`, checks the result, and returns it.
/// What the public reads of a campaign and how its map looks.
struct Presentation {
    title: Localized,
    description: Localized,
    default_lang: Lang,
    basemap: Option<Basemap>,
    geocoder: Option<Geocoder>,
}

impl Presentation {
    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.title.fr.trim().is_empty() || self.title.en.trim().is_empty() {
            errors.push(FieldError::new(
                "title",
                "needs a French and an English text",
            ));
        }
        errors.extend(self.basemap.iter().flat_map(Basemap::check));
        errors.extend(self.geocoder.iter().flat_map(Geocoder::check));
        errors
    }
}

/// When a campaign takes contributions.
struct Schedule {
    status: Status,
    opens_at: Option<OffsetDateTime>,
    closes_at: Option<OffsetDateTime>,
}

impl Schedule {
    fn check(&self) -> Vec<FieldError> {
        match (self.opens_at, self.closes_at) {
            (Some(opens), Some(closes)) if opens >= closes => {
                vec![FieldError::new("closes_at", "must be after opens_at")]
            }
            _ => Vec::new(),
        }
    }
}

/// Trust and safety: who may contribute, how, and how long exact data is kept.
struct Safety {
    moderation: Moderation,
    min_fill_seconds: i16,
    proof_of_work: Option<crate::safety::pow::ProofOfWork>,
    duplicates: Option<crate::safety::Duplicates>,
    /// As given; normalised by [`Safety::check`].
    allowed_origins: Vec<String>,
    retention_days: Option<i32>,
}

impl Safety {
    /// Checks, and normalises the allowed origins.
    fn check(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !(0..=crate::safety::MAX_MIN_FILL_SECONDS).contains(&self.min_fill_seconds) {
            errors.push(FieldError::new(
                "min_fill_seconds",
                "must be between 0 and 60 seconds",
            ));
        }
        errors.extend(self.proof_of_work.iter().flat_map(|p| p.check()));
        errors.extend(self.duplicates.iter().flat_map(|d| d.check()));
        match crate::safety::origins::normalize(&self.allowed_origins) {
            Ok(origins) => self.allowed_origins = origins,
            Err(origin_errors) => errors.extend(origin_errors),
        }
        if self
            .retention_days
            .is_some_and(|d| !(0..=36_500).contains(&d))
        {
            errors.push(FieldError::new(
                "retention_days",
                "must be between 0 and 36500 days, or null to keep data until erased",
            ));
        }
        errors
    }
}

/// A campaign's settings once a change is laid over the current ones, by group, each with its
/// own check.
struct Settings {
    presentation: Presentation,
    schedule: Schedule,
    form: Form,
    privacy: Privacy,
    safety: Safety,
}

impl Settings {
    /// `current` with what `input` changes (the area and the targets apart: they are checked
    /// against the database).
    fn merge(current: Campaign, input: CampaignInput) -> Self {
        Self {
            presentation: Presentation {
                title: input.title.unwrap_or(current.title),
                description: input.description.unwrap_or(current.description),
                default_lang: input.default_lang.unwrap_or(current.default_lang),
                basemap: input.basemap.unwrap_or(current.basemap),
                geocoder: input.geocoder.unwrap_or(current.geocoder),
            },
            schedule: Schedule {
                status: input.status.unwrap_or(current.status),
                opens_at: input.opens_at.map_or(current.opens_at, |o| o.map(|t| t.0)),
                closes_at: input
                    .closes_at
                    .map_or(current.closes_at, |o| o.map(|t| t.0)),
            },
            form: input.form.unwrap_or(current.form),
            privacy: input.privacy.unwrap_or(current.privacy),
            safety: Safety {
                moderation: input.moderation.unwrap_or(current.moderation),
                min_fill_seconds: input.min_fill_seconds.unwrap_or(current.min_fill_seconds),
                proof_of_work: input.proof_of_work.unwrap_or(current.proof_of_work),
                duplicates: input.duplicates.unwrap_or(current.duplicates),
                allowed_origins: input.allowed_origins.unwrap_or(current.allowed_origins),
                retention_days: input.retention_days.unwrap_or(current.retention_days),
            },
        }
    }

    /// Every group's check; every problem is reported, each with its field.
    fn check(&mut self) -> Vec<FieldError> {
        let mut errors = self.presentation.check();
        errors.extend(self.form.check().err().unwrap_or_default());
        errors.extend(self.privacy.check());
        errors.extend(self.schedule.check());
        errors.extend(self.safety.check());
        errors
    }
}

async fn apply(tx: &mut sqlx::PgConnection, id: i64, mut input: CampaignInput) -> Result<Campaign> {
    let current: Campaign = select_campaign!("WHERE id = $1", id)
        .fetch_one(&mut *tx)
        .await?
        .into();
    let (area, targets) = (input.area.take(), input.targets.take());
    let mut settings = Settings::merge(current, input);
    let mut errors = settings.check();
    let area = match area {
        Some(Some(value)) => match crate::districts::geometry::polygonal_geojson(&value) {
            Ok(geojson) => Some(Some(geojson)),
            Err(reason) => {
                errors.push(FieldError::new("area", reason));
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    let Settings {
        presentation,
        schedule,
        form,
        privacy,
        safety,
    } = settings;
    sqlx::query!(
        "UPDATE campaigns SET title_fr = $2, title_en = $3, description_fr = $4,
            description_en = $5, default_lang = $6, status = $7, opens_at = $8, closes_at = $9,
            form = $10, public_precision_m = $11, min_count = $12, moderation = $13, basemap = $14, geocoder = $15,
            min_fill_seconds = $16, proof_of_work = $17, duplicates = $18, allowed_origins = $19,
            retention_days = $20, privacy_budget = $21, release_every = $22, map_resolution = $23,
            updated_at = now(), config_version = config_version + 1
         WHERE id = $1",
        id,
        presentation.title.fr,
        presentation.title.en,
        presentation.description.fr,
        presentation.description.en,
        as_text(presentation.default_lang),
        as_text(schedule.status),
        schedule.opens_at,
        schedule.closes_at,
        sqlx::types::Json(&form) as _,
        privacy.public_precision_m,
        privacy.min_count,
        as_text(safety.moderation),
        presentation.basemap.map(sqlx::types::Json) as _,
        presentation.geocoder.map(sqlx::types::Json) as _,
        safety.min_fill_seconds,
        safety.proof_of_work.map(sqlx::types::Json) as _,
        safety.duplicates.map(sqlx::types::Json) as _,
        &safety.allowed_origins,
        safety.retention_days,
        privacy.budget,
        as_text(privacy.release_every),
        i16::from(privacy.map_resolution),
    )
    .execute(&mut *tx)
    .await?;
    if let Some(targets) = &targets {
        check_targets(&mut *tx, id, targets).await?;
        sqlx::query!(
            "UPDATE campaigns SET targets = $2 WHERE id = $1",
            id,
            sqlx::types::Json(targets) as _,
        )
        .execute(&mut *tx)
        .await?;
    }
    if let Some(area) = area {
        // Runtime SQL: composes the shared fragment `repaired_polygonal!`, and sqlx's macros
        // take only literals.
        let set: Option<Option<bool>> = sqlx::query_scalar(concat!(
            "UPDATE campaigns SET area = ",
            crate::repaired_polygonal!("$2"),
            " WHERE id = $1 RETURNING NOT ST_IsEmpty(area)"
        ))
        .bind(id)
        .bind(area)
        .fetch_optional(&mut *tx)
        .await?;
        if set == Some(Some(false)) {
            return Err(Invalid::field("area", "is empty once repaired").into());
        }
    }
    refresh_effective_area(tx, id).await?;
    let campaign: Campaign = select_campaign!("WHERE id = $1", id)
        .fetch_one(&mut *tx)
        .await?
        .into();
    if campaign.status == Status::Open && campaign.bounds.is_none() {
        return Err(Invalid::field(
            "status",
            "a campaign needs districts or an area before it can open",
        )
        .into());
    }
    Ok(campaign)
}

/// Most a district's target may be.
pub const MAX_TARGET: i64 = 100_000_000;

/// Checks targets: positive, and for districts the campaign has (when it has any yet).
async fn check_targets(
    tx: &mut sqlx::PgConnection,
    id: i64,
    targets: &std::collections::BTreeMap<String, i64>,
) -> Result<()> {
    let codes: Vec<String> =
        sqlx::query_scalar!("SELECT code FROM districts WHERE campaign_id = $1", id)
            .fetch_all(&mut *tx)
            .await?;
    let mut errors = Vec::new();
    for (code, &target) in targets {
        if !(1..=MAX_TARGET).contains(&target) {
            errors.push(FieldError::new(
                format!("targets.{code}"),
                format!("must be between 1 and {MAX_TARGET}"),
            ));
        }
        if !codes.is_empty() && !codes.contains(code) {
            errors.push(FieldError::new(
                format!("targets.{code}"),
                format!(
                    "no district with code `{code}` in this campaign (codes: {})",
                    codes.join(", ")
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Invalid(errors).into())
    }
}

/// Recomputes the area submissions are checked against (the given area, else the union of
/// the districts) and its bounds, and bumps the campaign's version.
pub async fn refresh_effective_area(db: &mut sqlx::PgConnection, id: i64) -> Result<()> {
    sqlx::query!(
        "UPDATE campaigns SET config_version = config_version + 1, updated_at = now(),
            effective_area = COALESCE(area, (SELECT ST_Multi(ST_CollectionExtract(ST_Union(geom), 3))
                                             FROM districts WHERE campaign_id = $1))
         WHERE id = $1",
        id,
    )
    .execute(&mut *db)
    .await?;
    // Bounding boxes are single precision in PostGIS: round to 1e-7 degree (1 cm).
    sqlx::query!(
        "UPDATE campaigns SET bounds = CASE WHEN effective_area IS NULL THEN NULL ELSE ARRAY[
            round(ST_XMin(effective_area)::numeric, 7), round(ST_YMin(effective_area)::numeric, 7),
            round(ST_XMax(effective_area)::numeric, 7), round(ST_YMax(effective_area)::numeric, 7)]::float8[] END
         WHERE id = $1",
        id,
    )
    .execute(&mut *db)
    .await?;
    // The public grid: cells of `public_precision_m` on the ground at the area's mid-latitude
    // (Web Mercator stretches distances by 1 / cos(latitude)), where retention moves the
    // positions it coarsens.
    sqlx::query!(
        "UPDATE campaigns SET grid_size = CASE WHEN bounds IS NULL THEN NULL
             ELSE public_precision_m / cos(radians((bounds[2] + bounds[4]) / 2)) END
         WHERE id = $1",
        id,
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() {
        assert!(is_valid_slug("fibre-pour-tous"));
        assert!(is_valid_slug("a"));
        for bad in ["", "-a", "a-", "Fibre", "a b", "é", &"a".repeat(65)] {
            assert!(!is_valid_slug(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_update_tells_absent_from_null() {
        let input: CampaignInput = serde_json::from_str(r#"{"opens_at": null}"#).unwrap();
        assert_eq!(input.opens_at, Some(None));
        assert_eq!(input.closes_at, None);
        let input: CampaignInput =
            serde_json::from_str(r#"{"closes_at": "2026-12-01T00:00:00Z"}"#).unwrap();
        assert!(matches!(input.closes_at, Some(Some(_))));
    }
}
