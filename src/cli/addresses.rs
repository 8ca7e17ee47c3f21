//! `civicmap addresses import | synthetic`: the national address file (Base Adresse
//! Nationale) for the address search, and synthetic files in its format.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::database::{DbArgs, with_migrated_database};
use super::import::ImportProgress;

#[derive(Debug, Subcommand)]
pub(super) enum AddressesCommand {
    /// Load a Base Adresse Nationale file (`adresses-92.csv` or `adresses-92.csv.gz`, as
    /// published on adresse.data.gouv.fr): every line is checked and nothing is stored unless
    /// all are good. The file's communes are replaced as a whole: addresses of theirs no longer
    /// in the file are removed, those of other communes stay.
    Import {
        /// A BAN CSV file, plain or gzip-compressed.
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write a synthetic file in the BAN's format (made-up streets inside the demo's
    /// districts of Nanterre, named as synthetic), to try or measure the import.
    Synthetic {
        /// Where to write it (`-` for standard output).
        file: PathBuf,
        /// How many addresses.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Seed: the same seed gives the same file.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub(super) async fn run(command: AddressesCommand) -> anyhow::Result<()> {
    match command {
        AddressesCommand::Import { file, db } => {
            with_migrated_database(&db, |pool| async move {
                let input = crate::addresses::open(&file)?;
                let name = file
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let started = std::time::Instant::now();
                let mut progress = ImportProgress::new();
                let outcome =
                    crate::addresses::import(&pool, input, &name, &mut progress).await;
                progress.finish();
                match outcome {
                    Ok(report) => {
                        let seconds = started.elapsed().as_secs_f64();
                        println!(
                            "{} addresses of {} communes imported in {seconds:.1} s ({:.0} rows/s); {} addresses of these communes replaced",
                            report.rows,
                            report.communes,
                            report.rows as f64 / seconds.max(1e-9),
                            report.replaced,
                        );
                        Ok(())
                    }
                    Err(crate::addresses::AddressError::Refused { rows, count, lines }) => {
                        for line in &lines {
                            eprintln!("{line}");
                        }
                        if count > lines.len() as u64 {
                            eprintln!("… and {} more", count - lines.len() as u64);
                        }
                        anyhow::bail!(
                            "{count} of {rows} lines refused; nothing was imported. Fix them and run the import again"
                        )
                    }
                    Err(error) => Err(error.into()),
                }
            })
            .await
        }
        AddressesCommand::Synthetic { file, rows, seed } => {
            let collection: serde_json::Value =
                serde_json::from_str(crate::demo::NANTERRE_DISTRICTS)?;
            let areas: Vec<_> = crate::synthetic::polygons_of(&collection, "code")
                .into_iter()
                .map(|(_, a)| a)
                .collect();
            let commune = crate::addresses::synthetic::Commune::nanterre();
            let mut out: Box<dyn std::io::Write> = if file.as_os_str() == "-" {
                Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&file)
                        .with_context(|| format!("cannot create {}", file.display()))?,
                ))
            };
            let written = crate::addresses::synthetic::write_csv(
                &areas, &commune, rows, 100, seed, &mut out,
            )?;
            out.flush()?;
            if written < rows as u64 {
                anyhow::bail!("only {written} of {rows} addresses could be placed");
            }
            eprintln!("{written} synthetic addresses written");
            Ok(())
        }
    }
}
