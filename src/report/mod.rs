//! The operator's report: what a planner takes to the operator. A PDF (the choropleth map of
//! the districts, the table per district, the curve over time, the methodology and the privacy
//! note, dated and stamped with the campaign's data version and a digest of its figures) and a
//! ZIP with the same figures as the public exports (CSV, GeoJSON), the PDF and a README.
//!
//! Every figure is the public one, built by the same code as `aggregates.csv`,
//! `aggregates.geojson` and `timeseries.csv` (district totals k-protected; the weekly curve
//! the releases' estimates, see [`crate::figures`]): the report adds no figure a reader of the
//! public map could not have, and a test reads the PDF back and compares it with those routes.

pub mod http;
mod pdf;

use std::io::Write;

use serde_json::Value;
use sha2::Digest;
use time::OffsetDateTime;

use crate::campaigns::{Campaign, Lang};
use crate::exports::format::{self, Csv};
use crate::exports::{self, Aggregate, By, timeseries};
use crate::figures::estimates::Released;

/// One district's line.
#[derive(Debug, Clone)]
pub struct Row {
    pub code: String,
    pub name: String,
    /// `None` when withheld.
    pub count: Option<i64>,
    pub target: Option<i64>,
    pub progress: Option<f64>,
    /// Households on file for the district.
    pub households: Option<i64>,
    /// Contributions per 1,000 households (withheld with the count).
    pub per_thousand: Option<f64>,
    geometry: Value,
    center: Option<[f64; 2]>,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct Report {
    pub title: String,
    pub lang: Lang,
    pub generated_at: OffsetDateTime,
    pub data_version: i64,
    pub k: i64,
    pub precision_m: i32,
    /// The privacy-loss budget (ε) of the estimates, and whether releases are weekly.
    pub epsilon: f64,
    pub weekly: bool,
    pub has_targets: bool,
    pub has_households: bool,
    pub rows: Vec<Row>,
    /// The campaign's total, `None` when withheld.
    pub total: Option<i64>,
    /// Contributions per week (first day), estimates, `None` when withheld.
    pub weeks: Vec<(time::Date, Option<i64>)>,
    /// SHA-256 of `districts.csv`, as in the ZIP and as `aggregates.csv` serves it.
    pub digest: String,
    pub attribution: String,
    /// The figures as the public exports write them.
    pub files: Files,
}

/// The public exports the report is made from, byte for byte.
#[derive(Debug, Clone)]
pub struct Files {
    /// `aggregates.csv` (by district).
    pub districts_csv: Vec<u8>,
    /// `aggregates.geojson` (by district).
    pub districts_geojson: Vec<u8>,
    /// `timeseries.csv?interval=week`.
    pub weeks_csv: Vec<u8>,
}

impl Report {
    /// The report of `campaign` from its public figures: `aggregate` (by district, as the
    /// public reads it) and `series` (per week, estimated by the releases).
    pub fn new(
        campaign: &Campaign,
        lang: Lang,
        data_version: i64,
        aggregate: &Aggregate,
        series: &timeseries::Series,
        now: OffsetDateTime,
    ) -> std::io::Result<Self> {
        let words = Words::of(lang);
        let rows: Vec<Row> = aggregate
            .areas
            .iter()
            .map(|area| Row {
                code: area.key.clone(),
                name: if area.key.is_empty() {
                    words.outside.to_owned()
                } else {
                    area.name.clone()
                },
                count: area.count.count,
                target: area.target,
                progress: area.progress(),
                households: area.households,
                per_thousand: area.per_thousand(),
                geometry: area.geometry.clone(),
                center: area.center,
            })
            .collect();
        let districts_csv = format::csv(aggregate, Csv::Standard)?;
        let districts_geojson = serde_json::to_vec(&format::geojson(aggregate, &campaign.slug))
            .map_err(std::io::Error::other)?;
        let weeks_csv = timeseries::csv(series, Csv::Standard)?;
        Ok(Self {
            title: match lang {
                Lang::Fr => campaign.title.fr.clone(),
                Lang::En => campaign.title.en.clone(),
            },
            lang,
            generated_at: now,
            data_version,
            k: aggregate.k,
            precision_m: campaign.privacy.public_precision_m,
            epsilon: campaign.privacy.budget,
            weekly: campaign.privacy.release_every == crate::campaigns::ReleaseEvery::Week,
            has_targets: rows.iter().any(|r| r.target.is_some()),
            has_households: rows.iter().any(|r| r.households.is_some()),
            rows,
            total: aggregate.total.count,
            weeks: series
                .rows
                .iter()
                .map(|row| (row.period, row.count.count))
                .collect(),
            digest: format!("{:x}", sha2::Sha256::digest(&districts_csv)),
            attribution: campaign.attribution.clone(),
            files: Files {
                districts_csv,
                districts_geojson,
                weeks_csv,
            },
        })
    }

    /// The PDF.
    pub fn pdf(&self) -> Vec<u8> {
        pdf::render(self, &Words::of(self.lang))
    }

    /// The ZIP: README, the PDF, and the figures as CSV and GeoJSON.
    pub fn zip(&self, slug: &str) -> std::io::Result<Vec<u8>> {
        let words = Words::of(self.lang);
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time({
                let at = self.generated_at.to_offset(time::UtcOffset::UTC);
                zip::DateTime::from_date_and_time(
                    u16::try_from(at.year()).unwrap_or(1980),
                    u8::from(at.month()),
                    at.day(),
                    at.hour(),
                    at.minute(),
                    at.second(),
                )
                .unwrap_or_default()
            });
        let (pdf, readme) = (self.pdf(), words.readme(self, slug));
        let entries: [(String, &[u8]); 5] = [
            ("README.txt".to_owned(), readme.as_bytes()),
            (format!("{slug}-report.pdf"), &pdf),
            (format!("{slug}-districts.csv"), &self.files.districts_csv),
            (
                format!("{slug}-districts.geojson"),
                &self.files.districts_geojson,
            ),
            (format!("{slug}-weeks.csv"), &self.files.weeks_csv),
        ];
        for (name, bytes) in entries {
            zip.start_file(name, options)
                .map_err(std::io::Error::other)?;
            zip.write_all(bytes)?;
        }
        Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
    }
}

/// The public figures of `campaign` the report is made of: districts as the public reads them
/// (live totals), weeks as estimated by its releases `released`.
pub async fn figures(
    db: &sqlx::PgPool,
    campaign: &Campaign,
    released: Option<&Released>,
) -> Result<(Aggregate, timeseries::Series), exports::ExportError> {
    let request = exports::AggregateQuery::default().check(campaign, false)?;
    debug_assert_eq!(request.by, By::District);
    let aggregate = crate::figures::aggregate::public(db, campaign, &request, released).await?;
    let weekly = timeseries::TimeseriesQuery {
        interval: Some("week".to_owned()),
        ..Default::default()
    }
    .check(campaign, false)?;
    let series = crate::figures::series::public(campaign, &weekly, released);
    Ok((aggregate, series))
}

/// The report's words in one language.
pub struct Words {
    lang: Lang,
    subtitle: &'static str,
    legend_progress: &'static str,
    legend_count: &'static str,
    withheld: &'static str,
    outside: &'static str,
    district: &'static str,
    code: &'static str,
    contributions: &'static str,
    target: &'static str,
    progress: &'static str,
    households: &'static str,
    per_thousand: &'static str,
    per_thousand_note: &'static str,
    total: &'static str,
    table_title: &'static str,
    curve_title: &'static str,
    curve_note: &'static str,
    method_title: &'static str,
    privacy_title: &'static str,
    digest: &'static str,
}

impl Words {
    fn of(lang: Lang) -> Self {
        match lang {
            Lang::Fr => Self {
                lang,
                subtitle: "Rapport de la demande, par quartier",
                legend_progress: "Progression vers l’objectif du quartier",
                legend_count: "Contributions",
                withheld: "masqué",
                outside: "hors de tout quartier",
                district: "Quartier",
                code: "Code",
                contributions: "Contributions",
                target: "Objectif",
                progress: "Progression",
                households: "Foyers",
                per_thousand: "Pour 1 000",
                per_thousand_note: "Pour 1 000 : contributions pour 1 000 foyers du quartier.",
                total: "Total de la campagne",
                table_title: "Contributions par quartier",
                curve_title: "Contributions par semaine (estimations)",
                curve_note: "Barres : contributions estimées de chaque publication (grises quand \
                             l’estimation, sous le seuil, est masquée) ; ligne : total cumulé \
                             des estimations. Estimations publiées avec un bruit aléatoire qui \
                             protège chaque foyer (confidentialité différentielle) ; en temps \
                             universel.",
                method_title: "Méthode",
                privacy_title: "Vie privée",
                digest: "Empreinte SHA-256 du fichier des quartiers (districts.csv) :",
            },
            Lang::En => Self {
                lang,
                subtitle: "Demand report, by district",
                legend_progress: "Progress towards the district's target",
                legend_count: "Contributions",
                withheld: "withheld",
                outside: "outside every district",
                district: "District",
                code: "Code",
                contributions: "Contributions",
                target: "Target",
                progress: "Progress",
                households: "Households",
                per_thousand: "Per 1,000",
                per_thousand_note: "Per 1,000: contributions per 1,000 households of the district.",
                total: "Campaign total",
                table_title: "Contributions by district",
                curve_title: "Contributions per week (estimates)",
                curve_note: "Bars: each release's estimated contributions (grey when the \
                             estimate, below the threshold, is withheld); line: running total \
                             of the estimates. Estimates are released with random noise that \
                             protects each household (differential privacy); in UTC.",
                method_title: "Method",
                privacy_title: "Privacy",
                digest: "SHA-256 of the districts file (districts.csv):",
            },
        }
    }

    fn legend(&self, targets: bool) -> &'static str {
        if targets {
            self.legend_progress
        } else {
            self.legend_count
        }
    }

    fn date(at: OffsetDateTime) -> String {
        let at = at.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        )
    }

    /// When, from which data.
    fn stamp(&self, report: &Report) -> String {
        let at = Self::date(report.generated_at);
        match report.lang {
            Lang::Fr => format!(
                "Établi le {at}, sur la version {} des données de la campagne.",
                report.data_version
            ),
            Lang::En => format!(
                "Made on {at}, from version {} of the campaign's data.",
                report.data_version
            ),
        }
    }

    fn boundaries(&self, attribution: &str) -> String {
        match (self.lang, attribution.is_empty()) {
            (Lang::Fr, true) => "Limites des quartiers : importées par la ville.".to_owned(),
            (Lang::En, true) => "District boundaries: as imported by the city.".to_owned(),
            (Lang::Fr, false) => format!("Limites des quartiers et fond : {attribution}."),
            (Lang::En, false) => format!("District boundaries and map data: {attribution}."),
        }
    }

    fn method(&self, report: &Report) -> Vec<String> {
        let mut paragraphs = self.method_base(report.k, report.weekly);
        if report.has_households {
            paragraphs.push(match self.lang {
                Lang::Fr => "Le taux pour 1 000 foyers divise le nombre de contributions publié \
                             par le nombre de foyers du quartier fourni par la ville (par exemple \
                             les chiffres de l’Insee) ; il est masqué avec le nombre."
                    .to_owned(),
                Lang::En => "The rate per 1,000 households divides the published number of \
                             contributions by the district's households as supplied by the city \
                             (for example INSEE's figures); it is withheld with the count."
                    .to_owned(),
            });
        }
        paragraphs
    }

    fn method_base(&self, k: i64, weekly: bool) -> Vec<String> {
        let every = match (self.lang, weekly) {
            (Lang::Fr, true) => "chaque semaine",
            (Lang::Fr, false) => "chaque jour",
            (Lang::En, true) => "every week",
            (Lang::En, false) => "every day",
        };
        match self.lang {
            Lang::Fr => vec![
                "Chaque contribution est un point déposé par un habitant sur la carte de la \
                 campagne, avec ses réponses au formulaire. Elle est comptée dans le premier \
                 quartier qui contient son point ; les contributions masquées ou rejetées par \
                 la modération ne sont pas comptées."
                    .to_owned(),
                format!(
                    "Les totaux par quartier sont exacts : ceux que le public voit au moment du \
                     rapport. Les chiffres plus fins (par semaine, par réponse, par hexagone) \
                     sont des estimations publiées {every} : chaque contribution y est comptée \
                     une fois, avec un bruit aléatoire. La progression est le nombre de \
                     contributions divisé par l’objectif du quartier fixé par la ville."
                ),
                format!(
                    "Ces chiffres sont les mêmes que ceux des exports publics de la campagne \
                     (aggregates.csv, aggregates.geojson, timeseries.csv), joints dans l’archive \
                     ZIP ; l’empreinte SHA-256 ci-dessus permet de vérifier que le fichier des \
                     quartiers est celui du rapport. Seuil de publication : {k}."
                ),
            ],
            Lang::En => vec![
                "Each contribution is a point a resident placed on the campaign's map, with \
                 their answers to the form. It is counted in the first district that contains \
                 its point; contributions hidden or rejected by moderation are not counted."
                    .to_owned(),
                format!(
                    "District totals are exact: those the public sees when the report is made. \
                     Finer figures (per week, per answer, per hexagon) are estimates released \
                     {every}: each contribution is counted in them once, with random noise. \
                     Progress is the number of contributions divided by the district's target \
                     set by the city."
                ),
                format!(
                    "These figures are those of the campaign's public exports \
                     (aggregates.csv, aggregates.geojson, timeseries.csv), included in the ZIP \
                     archive; the SHA-256 digest above lets anyone check that the districts \
                     file is the report's. Publication threshold: {k}."
                ),
            ],
        }
    }

    fn privacy(&self, report: &Report) -> Vec<String> {
        let (k, epsilon) = (report.k, report.epsilon);
        match report.lang {
            Lang::Fr => vec![
                format!(
                    "Ce rapport ne contient aucune position ni réponse individuelle. Un total \
                     de quartier de moins de {k} contributeurs est masqué, ainsi qu’un autre \
                     qui permettrait de le retrouver par différence. Les chiffres plus fins que \
                     le quartier sont publiés avec la confidentialité différentielle (budget \
                     ε = {epsilon} par contribution sur toute la vie de la campagne) : quoi \
                     qu’on sache par ailleurs, ils ne rendent aucune affirmation sur la place ou \
                     les réponses d’un foyer plus de e^ε fois plus probable."
                ),
                "Les positions exactes restent dans la base de la ville, pour les seules \
                 personnes habilitées, et sont dégradées à la fin de la durée de conservation \
                 de la campagne. Détails : docs/PRIVACY.md de civicmap."
                    .to_owned(),
            ],
            Lang::En => vec![
                format!(
                    "This report holds no individual position or answer. A district total of \
                     fewer than {k} contributors is withheld, and so is another that would give \
                     it away by difference. Figures finer than a district are released with \
                     differential privacy (budget ε = {epsilon} per contribution over the \
                     campaign's whole life): whatever else one knows, they make no statement \
                     about a household's place or answers more than e^ε times more likely."
                ),
                "Exact positions stay in the city's database, for authorised staff only, and \
                 are coarsened when the campaign's retention period ends. Details: civicmap's \
                 docs/PRIVACY.md."
                    .to_owned(),
            ],
        }
    }

    fn readme(&self, report: &Report, slug: &str) -> String {
        let at = Self::date(report.generated_at);
        let (version, digest) = (report.data_version, &report.digest);
        match report.lang {
            Lang::Fr => format!(
                "{title}\r\n{subtitle}\r\n\r\n\
                 Établi le {at}, version {version} des données.\r\n\r\n\
                 {slug}-report.pdf        le rapport (carte, tableau, courbe, méthode, vie privée)\r\n\
                 {slug}-districts.csv     contributions par quartier (= aggregates.csv), SHA-256 {digest}\r\n\
                 {slug}-districts.geojson les mêmes, avec les limites des quartiers (= aggregates.geojson)\r\n\
                 {slug}-weeks.csv         contributions par semaine, estimations (= timeseries.csv?interval=week)\r\n\r\n\
                 Un chiffre vide (colonne withheld = true) est masqué pour protéger les habitants.\r\n\
                 Les estimations (colonnes estimate) portent un bruit aléatoire qui protège chaque foyer.\r\n\
                 CSV en UTF-8, séparateur virgule, point décimal (RFC 4180).\r\n",
                title = report.title,
                subtitle = self.subtitle,
            ),
            Lang::En => format!(
                "{title}\r\n{subtitle}\r\n\r\n\
                 Made on {at}, from version {version} of the data.\r\n\r\n\
                 {slug}-report.pdf        the report (map, table, curve, method, privacy)\r\n\
                 {slug}-districts.csv     contributions by district (= aggregates.csv), SHA-256 {digest}\r\n\
                 {slug}-districts.geojson the same, with the district boundaries (= aggregates.geojson)\r\n\
                 {slug}-weeks.csv         contributions per week, estimates (= timeseries.csv?interval=week)\r\n\r\n\
                 An empty figure (column withheld = true) is withheld to protect residents.\r\n\
                 Estimates (columns estimate) carry random noise that protects each household.\r\n\
                 CSV in UTF-8, comma-separated, decimal point (RFC 4180).\r\n",
                title = report.title,
                subtitle = self.subtitle,
            ),
        }
    }
}
