//! Synthetic addresses in the BAN's CSV format, for the demo and for measuring the import:
//! made-up streets ("Rue Synthétique des Acacias", every name says it is synthetic) drawn as
//! straight lines across districts, numbered along them (odd on one side, even on the other,
//! a `bis` now and then), always the same for the same seed. Nothing here comes from the
//! national address file: it can be shipped and redistributed freely.

use std::io::Write;

use geo::{BoundingRect, Contains, MultiPolygon, Point};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The header of a BAN file (`adresses-XX.csv`).
pub const HEADER: &str = "id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;code_insee_ancienne_commune;nom_ancienne_commune;x;y;lon;lat;type_position;alias;nom_ld;libelle_acheminement;nom_afnor;source_position;source_nom_voie;certification_commune;cad_parcelles";

const KINDS: [&str; 10] = [
    "Rue",
    "Avenue",
    "Allée",
    "Boulevard",
    "Impasse",
    "Place",
    "Chemin",
    "Route",
    "Square",
    "Passage",
];

const NAMES: [&str; 24] = [
    "des Acacias",
    "des Érables",
    "du Général Fictif",
    "Saint-Exemple",
    "Sainte-Démo",
    "de la Paix",
    "des Tilleuls",
    "du Moulin Imaginaire",
    "de l'Église Factice",
    "Jean-Modèle",
    "des Châtaigniers",
    "du Maréchal Inventé",
    "de la Fontaine",
    "des Peupliers",
    "Victor-Essai",
    "de la République Simulée",
    "des Cerisiers",
    "du Docteur Prototype",
    "de la Gare Fictive",
    "des Prés",
    "Émile-Maquette",
    "des Lilas",
    "du Faubourg d'Essai",
    "de Lœuilly-Test",
];

/// Where the synthetic addresses are said to be.
#[derive(Debug, Clone)]
pub struct Commune {
    pub code_insee: String,
    pub code_postal: String,
    pub name: String,
}

impl Commune {
    /// Nanterre, where the demo's districts are.
    pub fn nanterre() -> Self {
        Self {
            code_insee: "92050".into(),
            code_postal: "92000".into(),
            name: "Nanterre".into(),
        }
    }
}

/// The name of the `i`th synthetic street: every kind with every name, then again with a
/// number ("Rue Synthétique des Acacias 2").
pub fn street_name(i: usize) -> String {
    let combos = KINDS.len() * NAMES.len();
    // Kinds vary fastest, so that a few streets already show several kinds.
    let base = format!(
        "{} Synthétique {}",
        KINDS[i % KINDS.len()],
        NAMES[(i / KINDS.len()) % NAMES.len()]
    );
    if i < combos {
        base
    } else {
        format!("{base} {}", i / combos + 1)
    }
}

/// Metres between two numbers on the same side of a street.
const SPACING_M: f64 = 14.0;
/// Metres from the street's axis to its numbers.
const OFFSET_M: f64 = 7.0;

/// Writes `rows` synthetic addresses (and the header) inside `areas` to `out`, as a BAN CSV
/// file: streets of at most `per_street` numbers, placed with `seed`.
pub fn write_csv(
    areas: &[MultiPolygon<f64>],
    commune: &Commune,
    rows: usize,
    per_street: usize,
    seed: u64,
    out: &mut dyn Write,
) -> std::io::Result<u64> {
    writeln!(out, "{HEADER}")?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut written = 0usize;
    let mut street = 0usize;
    let mut misses = 0;
    while written < rows && !areas.is_empty() && misses < 1000 {
        let area = &areas[street % areas.len()];
        let Some(rect) = area.bounding_rect() else {
            misses += 1;
            continue;
        };
        // A point inside the area, and a direction.
        let centre = (0..100).find_map(|_| {
            let x = rng.random_range(rect.min().x..=rect.max().x);
            let y = rng.random_range(rect.min().y..=rect.max().y);
            area.contains(&Point::new(x, y)).then_some((x, y))
        });
        let angle: f64 = rng.random_range(0.0..std::f64::consts::PI);
        let Some((cx, cy)) = centre else {
            misses += 1;
            continue;
        };
        // Metres to degrees, near this latitude.
        let m_lat = 1.0 / 111_320.0;
        let m_lon = m_lat / cy.to_radians().cos();
        let (dx, dy) = (angle.cos(), angle.sin());
        // Start where the line leaves the bounding box, walk across it.
        let half = ((rect.width() / m_lon).powi(2) + (rect.height() / m_lat).powi(2)).sqrt();
        let name = street_name(street);
        let fantoir = format!("s{street:04}");
        let (mut odd, mut even) = (1, 2);
        let mut numbers = 0;
        let mut t = -half;
        while t <= half && numbers < per_street && written < rows {
            for side in [1.0, -1.0] {
                let x = cx + (dx * t - dy * OFFSET_M * side) * m_lon;
                let y = cy + (dy * t + dx * OFFSET_M * side) * m_lat;
                if !area.contains(&Point::new(x, y)) || written >= rows {
                    continue;
                }
                let numero = if side > 0.0 { &mut odd } else { &mut even };
                let reps: &[&str] = if *numero % 7 == 3 {
                    &["", "bis"]
                } else {
                    &[""]
                };
                for (k, rep) in reps.iter().enumerate() {
                    if written >= rows {
                        break;
                    }
                    let id = if rep.is_empty() {
                        format!("{}_{fantoir}_{:05}", commune.code_insee, numero)
                    } else {
                        format!("{}_{fantoir}_{:05}_{rep}", commune.code_insee, numero)
                    };
                    // A bis stands a few metres further along.
                    let (x, y) = (
                        x + dx * 3.0 * k as f64 * m_lon,
                        y + dy * 3.0 * k as f64 * m_lat,
                    );
                    if !area.contains(&Point::new(x, y)) {
                        continue;
                    }
                    writeln!(
                        out,
                        "{id};{}_{fantoir};{numero};{rep};{name};{};{};{};;;;;{x:.6};{y:.6};entrée;;;{};;synthetic;synthetic;;",
                        commune.code_insee,
                        commune.code_postal,
                        commune.code_insee,
                        commune.name,
                        commune.name.to_uppercase(),
                    )?;
                    written += 1;
                }
                *numero += 2;
                numbers += 1;
            }
            t += SPACING_M;
        }
        if numbers == 0 {
            misses += 1;
        }
        street += 1;
    }
    Ok(written as u64)
}

/// The demo's addresses: about 2,500 along 60 synthetic streets across Nanterre's districts.
pub fn demo_csv() -> Vec<u8> {
    let collection: serde_json::Value = serde_json::from_str(crate::demo::NANTERRE_DISTRICTS)
        .expect("the demo districts are valid JSON");
    let areas: Vec<MultiPolygon<f64>> = crate::synthetic::polygons_of(&collection, "code")
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let mut out = Vec::new();
    write_csv(&areas, &Commune::nanterre(), 2_500, 60, 2026, &mut out)
        .expect("writing to memory cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_set_is_reproducible_valid_and_inside_the_districts() {
        let csv = demo_csv();
        assert_eq!(csv, demo_csv());
        let mut rows = Vec::new();
        let scan =
            super::super::ban::read(csv.as_slice(), &mut |_| {}, &mut |c| rows.extend(c)).unwrap();
        assert_eq!(scan.bad, []);
        assert_eq!(rows.len(), 2_500);
        assert!(rows.iter().all(|a| a.nom_voie.contains("Synthétique")));
        assert!(rows.iter().any(|a| a.rep == "bis"));
        let mut ids: Vec<&str> = rows.iter().map(|a| a.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rows.len(), "ids are unique");
        let collection: serde_json::Value =
            serde_json::from_str(crate::demo::NANTERRE_DISTRICTS).unwrap();
        let areas: Vec<MultiPolygon<f64>> = crate::synthetic::polygons_of(&collection, "code")
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        for a in &rows {
            let p = Point::new(a.point.lon(), a.point.lat());
            assert!(areas.iter().any(|area| area.contains(&p)), "{a:?}");
        }
    }

    #[test]
    fn street_names_say_they_are_synthetic_and_do_not_repeat() {
        let names: std::collections::HashSet<String> = (0..1000).map(street_name).collect();
        assert_eq!(names.len(), 1000);
        assert!(names.iter().all(|n| n.contains("Synthétique")));
    }
}
