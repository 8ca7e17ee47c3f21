//! The number of households of each district (INSEE figures by IRIS or district, the city's
//! own), imported from a CSV of `code;households` lines, so that demand can be read relative to
//! the base: contributions per 1,000 households.
//!
//! A rate is derived from a published count and nothing else ([`per_thousand`] takes a
//! [`PublishedCount`]): a withheld count gives a withheld rate, and a published rate with the
//! public households tells nothing its published count does not.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::DistrictError;
use crate::audit::{self, Actor};
use crate::figures::PublishedCount;
use crate::validation::{FieldError, Invalid};

/// Most households one district may have (the largest French commune has about a million).
pub const MAX_HOUSEHOLDS: i64 = 10_000_000;

/// Contributions per 1,000 households, to one decimal, of a published count; `None` when the
/// count is withheld, or the district has no households on file (or none at all).
pub fn per_thousand(count: PublishedCount, households: Option<i64>) -> Option<f64> {
    let count = count.count.filter(|_| !count.withheld)?;
    let households = households.filter(|h| *h > 0)?;
    Some((count as f64 * 10_000.0 / households as f64).round() / 10.0)
}

/// A campaign's households, by district code.
pub async fn of(
    db: impl sqlx::PgExecutor<'_>,
    campaign_id: i64,
) -> sqlx::Result<BTreeMap<String, i64>> {
    let rows = sqlx::query!(
        "SELECT code, households FROM district_households WHERE campaign_id = $1",
        campaign_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.code, r.households)).collect())
}

/// What an import did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HouseholdsReport {
    /// Districts with a number of households now.
    pub districts: usize,
    /// Households over all of them.
    pub households: i64,
    /// The campaign's districts the file did not name (they have no rate).
    pub missing: Vec<String>,
}

/// Reads `code;households` lines (`,`, `;` or a tab between them; a first line whose second
/// cell is not a number is a header; blank lines are skipped), checking each against the
/// campaign's district `codes`. Every bad line is named: `line 3`.
pub fn parse(text: &str, codes: &[String]) -> Result<BTreeMap<String, i64>, Invalid> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errors = Vec::new();
    let mut out = BTreeMap::new();
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let at = format!("line {}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line
            .split([';', ',', '\t'])
            .map(|c| c.trim().trim_matches('"').trim())
            .collect();
        // A header: the first line, when its first cell is no district and its second no number.
        let header = std::mem::take(&mut first)
            && !codes
                .iter()
                .any(|c| Some(c.as_str()) == cells.first().copied())
            && cells
                .get(1)
                .is_some_and(|c| !c.is_empty() && c.parse::<f64>().is_err());
        if header {
            continue;
        }
        let (code, number) = match cells.as_slice() {
            [code, number] => (*code, *number),
            [code, number, rest @ ..] if rest.iter().all(|c| c.is_empty()) => (*code, *number),
            _ => {
                errors.push(FieldError::new(
                    at,
                    format!(
                        "must hold two cells, a district code and a number of households, got {}",
                        cells.len()
                    ),
                ));
                continue;
            }
        };
        if code.is_empty() {
            errors.push(FieldError::new(at, "the district code is empty"));
            continue;
        }
        let shown: String = code.chars().take(64).collect();
        if !codes.iter().any(|c| c == code) {
            errors.push(FieldError::new(
                at,
                format!("no district with code `{shown}` in this campaign"),
            ));
            continue;
        }
        // Spaces and narrow no-break spaces group thousands in French figures.
        let digits: String = number
            .chars()
            .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
            .collect();
        let households = match digits.parse::<i64>() {
            Ok(n) if (0..=MAX_HOUSEHOLDS).contains(&n) => n,
            Ok(_) => {
                errors.push(FieldError::new(
                    at,
                    format!("the number of households must be between 0 and {MAX_HOUSEHOLDS}"),
                ));
                continue;
            }
            Err(_) => {
                let shown: String = number.chars().take(32).collect();
                errors.push(FieldError::new(
                    at,
                    format!("`{shown}` is not a whole number of households"),
                ));
                continue;
            }
        };
        if out.insert(code.to_owned(), households).is_some() {
            errors.push(FieldError::new(
                at,
                format!("district `{shown}` is listed twice"),
            ));
        }
    }
    if errors.is_empty() && out.is_empty() {
        errors.push(FieldError::new("line 1", "the file lists no district"));
    }
    Invalid::check(errors)?;
    Ok(out)
}

/// Replaces the households of campaign `slug`'s districts with those of `csv` (all or nothing;
/// audited), and moves its settings version (the districts layer and the exports show rates).
pub async fn import(
    db: &PgPool,
    actor: Actor<'_>,
    slug: &str,
    csv: &str,
) -> Result<HouseholdsReport, DistrictError> {
    let mut tx = db.begin().await?;
    let campaign_id: i64 =
        sqlx::query_scalar!("SELECT id FROM campaigns WHERE slug = $1 FOR UPDATE", slug)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| crate::campaigns::CampaignError::NotFound(slug.to_owned()))?;
    let codes: Vec<String> = sqlx::query_scalar!(
        "SELECT code FROM districts WHERE campaign_id = $1 ORDER BY position",
        campaign_id
    )
    .fetch_all(&mut *tx)
    .await?;
    if codes.is_empty() {
        return Err(Invalid::field(
            "districts",
            "this campaign has no districts yet: import them first",
        )
        .into());
    }
    let households = parse(csv, &codes)?;
    sqlx::query!(
        "DELETE FROM district_households WHERE campaign_id = $1",
        campaign_id
    )
    .execute(&mut *tx)
    .await?;
    let (names, numbers): (Vec<String>, Vec<i64>) =
        households.iter().map(|(c, n)| (c.clone(), *n)).unzip();
    sqlx::query!(
        "INSERT INTO district_households (campaign_id, code, households)
         SELECT $1, code, n FROM unnest($2::text[], $3::int8[]) AS x(code, n)",
        campaign_id,
        &names,
        &numbers,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE campaigns SET config_version = config_version + 1, updated_at = now() WHERE id = $1",
        campaign_id
    )
    .execute(&mut *tx)
    .await?;
    let report = HouseholdsReport {
        districts: households.len(),
        households: numbers.iter().sum(),
        missing: codes
            .into_iter()
            .filter(|c| !households.contains_key(c))
            .collect(),
    };
    audit::record(
        &mut *tx,
        audit::Entry {
            actor,
            action: "districts.households",
            campaign_id: Some(campaign_id),
            subject: None,
            reason: None,
            details: serde_json::json!({
                "districts": report.districts, "households": report.households,
                "missing": report.missing,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> Vec<String> {
        ["centre", "nord", "sud"].map(String::from).to_vec()
    }

    #[test]
    fn a_csv_is_read_with_or_without_header() {
        let read = parse(
            "\u{feff}code;households\ncentre;4 200\n\nnord;\"1200\"\n",
            &codes(),
        )
        .unwrap();
        assert_eq!(
            read,
            BTreeMap::from([("centre".into(), 4200), ("nord".into(), 1200)])
        );
        let read = parse("sud,10\ncentre\t0\n", &codes()).unwrap();
        assert_eq!(
            read,
            BTreeMap::from([("sud".into(), 10), ("centre".into(), 0)])
        );
    }

    #[test]
    fn every_bad_line_is_named() {
        let errors = parse(
            "code;households\ncentre;12.5\nouest;10\nnord\nsud;-3\nsud;4\nsud;5\n;7\n",
            &codes(),
        )
        .unwrap_err()
        .0;
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(got.len(), 6, "{got:?}");
        assert_eq!(got[0].0, "line 2");
        assert!(got[0].1.contains("not a whole number"));
        assert_eq!(
            got[1],
            ("line 3", "no district with code `ouest` in this campaign")
        );
        assert_eq!(got[2].0, "line 4");
        assert!(got[3].1.contains("between 0 and"));
        assert_eq!(got[4], ("line 7", "district `sud` is listed twice"));
        assert_eq!(got[5], ("line 8", "the district code is empty"));
        assert!(parse("", &codes()).is_err());
        assert!(parse("code;households\n", &codes()).is_err());
    }

    #[test]
    fn a_withheld_count_has_no_rate() {
        let shown = PublishedCount {
            count: Some(12),
            withheld: false,
        };
        assert_eq!(per_thousand(shown, Some(4_000)), Some(3.0));
        assert_eq!(per_thousand(shown, Some(7)), Some(1714.3));
        assert_eq!(per_thousand(shown, Some(0)), None);
        assert_eq!(per_thousand(shown, None), None);
        let withheld = PublishedCount {
            count: None,
            withheld: true,
        };
        assert_eq!(per_thousand(withheld, Some(4_000)), None);
        // Even a count that were carried along with its flag set gives no rate.
        let flagged = PublishedCount {
            count: Some(3),
            withheld: true,
        };
        assert_eq!(per_thousand(flagged, Some(4_000)), None);
    }
}
