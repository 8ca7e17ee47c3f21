//! What the API sends of a campaign, apart from the domain's [`Campaign`]: a field added to
//! `Campaign` is sent to nobody until someone adds it here, to the public document or to the
//! staff's. In a privacy product that is the safe default.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::form::Form;
use super::{Basemap, Campaign, Geocoder, Lang, Localized, Moderation, Privacy, Status};

/// A campaign as the public and the widget see it: `GET /api/v1/campaigns/{slug}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicCampaign {
    /// URL name, e.g. `fibre-pour-tous`.
    pub slug: String,
    pub title: Localized,
    pub description: Localized,
    pub default_lang: Lang,
    pub status: Status,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub opens_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closes_at: Option<OffsetDateTime>,
    /// `[min_lon, min_lat, max_lon, max_lat]` of the campaign's area, if it has one.
    pub bounds: Option<[f64; 4]>,
    pub form: Form,
    pub privacy: Privacy,
    pub moderation: Moderation,
    /// The background map: the campaign's own setting; without one, the style of the basemap
    /// this server serves itself (`/basemap/style.json`) when it has one; else `null`, and the
    /// map is a plain background and districts.
    pub basemap: Option<Basemap>,
    /// An optional address search service, for placing oneself without the map.
    pub geocoder: Option<Geocoder>,
    /// Whether this server's own address search (`GET …/addresses?q=`) knows addresses in
    /// the campaign's area: the city loaded the national address file for it.
    pub address_search: bool,
    /// Whether citizens may follow the campaign (or a district) by e-mail here: this server
    /// sends e-mail (`--smtp-url`) and the campaign is open.
    pub notices: bool,
    /// Days after the campaign closes before exact positions are snapped to the public grid and
    /// free-text answers deleted; `null`: kept until erased.
    pub retention_days: Option<i32>,
    /// When that was last done, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retention_applied_at: Option<OffsetDateTime>,
    /// Credits for the map data, to be shown with the map.
    pub attribution: String,
    /// A target per district code (e.g. 300 households); progress is reported against it.
    pub targets: std::collections::BTreeMap<String, i64>,
    /// Least seconds a person takes to fill the form; a widget submission faster than this is
    /// refused (0 to 60, 3 by default).
    pub min_fill_seconds: i16,
    /// Proof of work asked before each submission (`null`: none).
    pub proof_of_work: Option<crate::safety::pow::ProofOfWork>,
    /// Rule against repeated submissions from one connection (`null`: none).
    pub duplicates: Option<crate::safety::Duplicates>,
    /// Sites (`scheme://host[:port]`) allowed to embed the map and to write to it; empty: any
    /// site ("open").
    pub allowed_origins: Vec<String>,
}

impl From<&Campaign> for PublicCampaign {
    fn from(c: &Campaign) -> Self {
        Self {
            slug: c.slug.clone(),
            title: c.title.clone(),
            description: c.description.clone(),
            default_lang: c.default_lang,
            status: c.status,
            opens_at: c.opens_at,
            closes_at: c.closes_at,
            bounds: c.bounds,
            form: c.form.clone(),
            privacy: c.privacy.clone(),
            moderation: c.moderation,
            basemap: c.basemap.clone(),
            geocoder: c.geocoder.clone(),
            address_search: c.address_search,
            notices: false,
            retention_days: c.retention_days,
            retention_applied_at: c.retention_applied_at,
            attribution: c.attribution.clone(),
            targets: c.targets.clone(),
            min_fill_seconds: c.min_fill_seconds,
            proof_of_work: c.proof_of_work,
            duplicates: c.duplicates,
            allowed_origins: c.allowed_origins.clone(),
        }
    }
}

/// A campaign as its staff see it (`/api/v1/admin/campaigns`): what the public sees, and
/// whether it is under pressure now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffCampaign {
    #[serde(flatten)]
    pub public: PublicCampaign,
    /// Set while the campaign's allowance is spent and each submission needs a proof of work
    /// (see docs/OPERATIONS.md, "Under attack").
    pub pressure: Option<crate::safety::limits::Pressure>,
}

impl StaffCampaign {
    /// `c` as staff see it, with its pressure from `pressure` (see
    /// [`crate::safety::limits::pressure`]).
    pub fn new(
        c: &Campaign,
        pressure: &std::collections::HashMap<i64, crate::safety::limits::Pressure>,
    ) -> Self {
        Self {
            public: PublicCampaign::from(c),
            pressure: pressure.get(&c.id).cloned(),
        }
    }
}
