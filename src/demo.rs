//! The demo campaign "Fibre pour tous": the 11 districts of Nanterre and a few hundred
//! synthetic households that asked for fibre, always the same (fixed seed).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::campaigns::{self, Campaign, CampaignInput};
use crate::districts::{self, PropertyNames};
use crate::submissions::{self, NewSubmission, Pending};

/// The districts of Nanterre, from OpenStreetMap (© OpenStreetMap contributors, ODbL).
pub const NANTERRE_DISTRICTS: &str = include_str!("../data/nanterre-quartiers.geojson");

/// The demo campaign's name.
pub const SLUG: &str = "fibre-pour-tous";

/// How many synthetic submissions the demo starts with.
pub const POINTS: usize = 400;

/// The demo campaign's settings.
pub fn campaign_input() -> CampaignInput {
    serde_json::from_value(json!({
        "slug": SLUG,
        "title": {"fr": "Fibre pour tous", "en": "Fibre for everyone"},
        "description": {
            "fr": "Vous voulez la fibre et ne pouvez pas l'avoir ? Placez votre logement sur la carte : la ville montrera la demande, quartier par quartier, à l'opérateur.",
            "en": "You want fibre internet and cannot get it? Put your home on the map: the city will show the operator the demand, district by district."
        },
        "default_lang": "fr",
        "form": {"fields": [
            {"key": "households", "type": "number", "required": true, "min": 1, "max": 500, "integer": true,
             "label": {"fr": "Nombre de foyers à cette adresse", "en": "Households at this address"},
             "help": {"fr": "Pour un immeuble, le nombre de logements qui attendent la fibre.", "en": "For a building, the number of homes waiting for fibre."}},
            {"key": "connection", "type": "choice", "required": true, "public": true,
             "label": {"fr": "Connexion actuelle", "en": "Current connection"},
             "options": [
                {"value": "adsl", "label": {"fr": "ADSL", "en": "ADSL"}},
                {"value": "cable", "label": {"fr": "Câble", "en": "Cable"}},
                {"value": "4g-5g", "label": {"fr": "4G / 5G", "en": "4G / 5G"}},
                {"value": "none", "label": {"fr": "Aucune", "en": "None"}}]},
            {"key": "building", "type": "choice", "required": true, "public": true,
             "label": {"fr": "Type de bâtiment", "en": "Building type"},
             "options": [
                {"value": "house", "label": {"fr": "Maison", "en": "House"}},
                {"value": "apartment", "label": {"fr": "Immeuble", "en": "Apartment building"}}]},
            {"key": "works_from_home", "type": "boolean", "public": true,
             "label": {"fr": "Quelqu'un télétravaille dans le foyer", "en": "Someone works from home"}},
            {"key": "comment", "type": "text", "max_length": 500,
             "label": {"fr": "Commentaire (facultatif)", "en": "Comment (optional)"}}
        ]},
        "privacy": {"public_precision_m": 50, "min_count": 5},
        "moderation": "post"
    }))
    .expect("the demo campaign is well formed")
}

/// Synthetic answers for the demo form, drawn with `rng`.
pub fn answers(rng: &mut impl Rng) -> serde_json::Map<String, Value> {
    let connection = ["adsl", "adsl", "adsl", "cable", "4g-5g", "none"][rng.random_range(0..6)];
    let building = if rng.random_bool(0.6) {
        "apartment"
    } else {
        "house"
    };
    let households = if building == "house" {
        1
    } else {
        rng.random_range(2..=40)
    };
    let value = json!({
        "households": households,
        "connection": connection,
        "building": building,
        "works_from_home": rng.random_bool(0.4),
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// Adds `n` synthetic households to the demo campaign, inside its districts, always the same
/// for the same `seed`; stored like any submission, in batches of 5,000.
pub async fn add_points(pool: &PgPool, n: usize, seed: u64) -> anyhow::Result<()> {
    let campaign = std::sync::Arc::new(campaigns::get(pool, SLUG).await?);
    let collection: Value = serde_json::from_str(NANTERRE_DISTRICTS)?;
    let areas: Vec<_> = crate::synthetic::polygons_of(&collection, "code")
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let points = crate::synthetic::points_in(&areas, n, seed);
    for chunk in points.chunks(5_000) {
        let batch: Vec<Pending> = chunk
            .iter()
            .map(|&point| Pending {
                campaign: campaign.clone(),
                submission: NewSubmission {
                    point,
                    answers: answers(&mut rng),
                },
                key: None,
                client_hash: None,
                contributor: None,
            })
            .collect();
        let mut ids = Vec::with_capacity(batch.len());
        for result in submissions::store_batch(pool, &batch, crate::figures::random_shard())
            .await
            .map_err(|e| e.error)?
        {
            match result? {
                submissions::Stored::Created(receipt) => ids.push(receipt.id),
                _ => anyhow::bail!("the demo campaign changed while points were added"),
            }
        }
        // A history: the synthetic households arrived over the last 30 days, so that the
        // demo's releases of finer figures (`figures::release`) have weeks to count them in.
        let ages: Vec<f64> = ids
            .iter()
            .map(|_| rng.random_range(0.0..30.0 * 86_400.0))
            .collect();
        sqlx::query!(
            "UPDATE submissions s SET created_at = a.t, published_at = a.t, updated_at = a.t
             FROM (SELECT id, now() - make_interval(secs => age) AS t
                   FROM unnest($1::uuid[], $2::float8[]) AS x(id, age)) a
             WHERE s.id = a.id",
            &ids,
            &ages,
        )
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Makes the demo campaign as old as its synthetic history (31 days) and makes the releases
/// of those weeks, as `serve` would have made them: the map's hexagons, the splits by answer
/// and the time series then have estimates from the start.
pub async fn release_history(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE campaigns SET created_at = now() - interval '31 days' WHERE slug = $1",
        SLUG
    )
    .execute(pool)
    .await?;
    let made = crate::figures::release::run_due(pool, time::OffsetDateTime::now_utc()).await?;
    tracing::info!(releases = made.len(), "demo history released");
    Ok(())
}

/// Households per district of the demo (code;households): SYNTHETIC figures, not INSEE's,
/// of a plausible size (Nanterre has about 45,000 households over its 11 districts), so that
/// the demo shows contributions per 1,000 households.
pub const DEMO_HOUSEHOLDS: &str = "code;households
la-boule-champs-pierreux;4800
universite;4100
republique;3900
centre;5600
chemin-de-l-ile;3700
parc-nord;4300
parc-sud;3600
petit-nanterre;3200
plateau-mont-valerien;4600
vieux-pont-sainte-genevieve;4400
les-groues;2800
";

/// Loads [`DEMO_HOUSEHOLDS`] into the demo campaign.
pub async fn add_households(pool: &PgPool) -> anyhow::Result<()> {
    crate::districts::households::import(
        pool,
        crate::audit::Actor::System("demo"),
        SLUG,
        DEMO_HOUSEHOLDS,
    )
    .await?;
    Ok(())
}

/// The demo's story: three milestones, dated from today (an invented story, like the
/// households), so that the widget's timeline has something to show.
pub async fn add_story(pool: &PgPool) -> anyhow::Result<()> {
    let campaign = campaigns::get(pool, SLUG).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let entries = [
        (
            -30,
            "milestone",
            ("Lancement de la campagne", "Campaign launched"),
            (
                "La ville ouvre la carte : chaque foyer qui attend la fibre peut s'y placer.",
                "The city opens the map: every household waiting for fibre can put itself on it.",
            ),
        ),
        (
            -7,
            "update",
            (
                "Premier bilan avec l'opérateur",
                "First review with the operator",
            ),
            (
                "Les premiers chiffres par quartier ont été présentés à l'opérateur, qui étudie les Groues et le Petit-Nanterre en priorité.",
                "The first figures by district were shown to the operator, who is looking at Les Groues and Petit-Nanterre first.",
            ),
        ),
        (
            45,
            "milestone",
            (
                "Rapport remis à l'opérateur",
                "Report handed to the operator",
            ),
            (
                "À la clôture, la ville remettra à l'opérateur le rapport de la demande, quartier par quartier.",
                "When the campaign closes, the city will hand the operator the report of the demand, district by district.",
            ),
        ),
    ];
    for (days, kind, (title_fr, title_en), (text_fr, text_en)) in entries {
        let input: crate::story::EntryInput = serde_json::from_value(json!({
            "kind": kind,
            "date": (today + time::Duration::days(days)).to_string(),
            "title": {"fr": title_fr, "en": title_en},
            "text": {"fr": text_fr, "en": text_en},
        }))?;
        crate::story::create(pool, crate::audit::Actor::System("demo"), &campaign, input).await?;
    }
    Ok(())
}

/// Loads the demo's synthetic addresses (see [`crate::addresses::synthetic::demo_csv`]) for
/// the address search. A real address file imported later replaces them (same commune).
pub async fn add_addresses(pool: &PgPool) -> anyhow::Result<()> {
    let csv = crate::addresses::synthetic::demo_csv();
    let report = crate::addresses::import(
        pool,
        Box::new(std::io::Cursor::new(csv)),
        "demo (synthetic)",
        &mut crate::import::Quiet,
    )
    .await?;
    tracing::info!(addresses = report.rows, "demo addresses (synthetic) loaded");
    Ok(())
}

/// Creates the demo campaign with its districts, points and addresses, unless it exists
/// already (then adds the addresses if its area has none).
/// Returns the campaign and whether it was created now.
pub async fn load(pool: &PgPool) -> anyhow::Result<(Campaign, bool)> {
    if let Some(existing) = campaigns::find(pool, SLUG).await? {
        if !existing.address_search {
            add_addresses(pool).await?;
            return Ok((campaigns::get(pool, SLUG).await?, false));
        }
        return Ok((existing, false));
    }
    campaigns::create(pool, campaign_input()).await?;
    let collection: Value = serde_json::from_str(NANTERRE_DISTRICTS)?;
    districts::import(pool, SLUG, &collection, &PropertyNames::default()).await?;
    let open = CampaignInput {
        status: Some(campaigns::Status::Open),
        ..Default::default()
    };
    campaigns::update(pool, SLUG, open).await?;
    add_points(pool, POINTS, 2026).await?;
    release_history(pool).await?;
    add_households(pool).await?;
    add_story(pool).await?;
    add_addresses(pool).await?;
    tracing::info!(campaign = SLUG, points = POINTS, "demo campaign loaded");
    Ok((campaigns::get(pool, SLUG).await?, true))
}

/// Writes the demo basemap (the districts, synthetic streets and buildings: see
/// [`crate::basemap::demo`]) to `path` and returns it.
pub async fn basemap(pool: &PgPool, path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let started = std::time::Instant::now();
    let collection: Value = serde_json::from_str(NANTERRE_DISTRICTS)?;
    let summary = crate::basemap::demo::write(pool, &collection, "Nanterre", path).await?;
    tracing::info!(
        file = %path.display(),
        tiles = summary.tiles,
        bytes = summary.bytes,
        ms = started.elapsed().as_millis() as u64,
        "demo basemap written (synthetic streets)"
    );
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_households_name_every_district_once() {
        let collection: Value = serde_json::from_str(NANTERRE_DISTRICTS).unwrap();
        let codes: Vec<String> = collection["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["properties"]["code"].as_str().unwrap().to_owned())
            .collect();
        let households = crate::districts::households::parse(DEMO_HOUSEHOLDS, &codes).unwrap();
        assert_eq!(households.len(), codes.len());
        assert_eq!(households.values().sum::<i64>(), 45_000);
    }
}
