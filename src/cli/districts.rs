//! `civicmap districts import`: a campaign's districts from a GeoJSON file;
//! `civicmap districts households`: their households from a CSV of `code;households` lines.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::database::{DbArgs, with_migrated_database};

#[derive(Debug, Subcommand)]
pub(super) enum DistrictsCommand {
    /// Replace a campaign's districts with those of a GeoJSON FeatureCollection.
    Import {
        /// Campaign name (slug).
        campaign: String,
        /// GeoJSON file of Polygon/MultiPolygon features.
        file: PathBuf,
        /// Property holding each district's name.
        #[arg(long, default_value = "name")]
        name_prop: String,
        /// Property holding each district's code.
        #[arg(long, default_value = "code")]
        code_prop: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Replace the households of a campaign's districts with a CSV of `code;households` lines
    /// (`,`, `;` or a tab; a header allowed; UTF-8), for contributions per 1,000 households.
    Households {
        /// Campaign name (slug).
        campaign: String,
        /// CSV file.
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub(super) async fn run(command: DistrictsCommand) -> anyhow::Result<()> {
    match command {
        DistrictsCommand::Households { campaign, file, db } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let text = String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
            with_migrated_database(&db, |pool| async move {
                let actor = crate::audit::Actor::Cli;
                match crate::districts::households::import(&pool, actor, &campaign, &text).await {
                    Ok(report) => {
                        println!(
                            "households of {} districts of `{campaign}` imported ({} in all)",
                            report.districts, report.households
                        );
                        if !report.missing.is_empty() {
                            println!("  no households for: {}", report.missing.join(", "));
                        }
                        Ok(())
                    }
                    Err(crate::districts::DistrictError::Invalid(invalid)) => {
                        for field in &invalid.0 {
                            eprintln!("  {}: {}", field.field, field.detail);
                        }
                        anyhow::bail!(
                            "{} lines are invalid; nothing was imported",
                            invalid.0.len()
                        )
                    }
                    Err(error) => Err(error.into()),
                }
            })
            .await
        }
        DistrictsCommand::Import {
            campaign,
            file,
            name_prop,
            code_prop,
            db,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            with_migrated_database(&db, |pool| async move {
                let collection: serde_json::Value = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not valid JSON", file.display()))?;
                let names = crate::districts::PropertyNames { name: name_prop, code: code_prop };
                match crate::districts::import(&pool, &campaign, &collection, &names).await {
                    Ok(report) => {
                        println!("{} districts imported into `{campaign}`, {} repaired, {} submissions re-assigned", report.imported, report.repaired.len(), report.reassigned);
                        for repaired in report.repaired {
                            println!("  feature {} repaired: {}", repaired.index, repaired.reason);
                        }
                        Ok(())
                    }
                    Err(crate::districts::DistrictError::Invalid(invalid)) if invalid.0.len() > 1 => {
                        for field in &invalid.0 {
                            eprintln!("  {}: {}", field.field, field.detail);
                        }
                        anyhow::bail!("{} fields are invalid", invalid.0.len())
                    }
                    Err(error) => Err(error.into()),
                }
            })
            .await
        }
    }
}
