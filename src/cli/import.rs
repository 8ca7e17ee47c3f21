//! `civicmap import`: paper forms and legacy data (CSV or GeoJSON) into a campaign, all or
//! nothing, with a progress bar.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use sqlx::PgPool;

use super::database::{DbArgs, with_migrated_database};

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    /// Campaign name (slug).
    campaign: String,
    /// A .csv file (`,` or `;` separated, header row) or a .geojson FeatureCollection of Points.
    file: PathBuf,
    /// CSV column of the longitude (default: lon, longitude, lng or x).
    #[arg(long)]
    lon: Option<String>,
    /// CSV column of the latitude (default: lat, latitude or y).
    #[arg(long)]
    lat: Option<String>,
    /// FIELD=COLUMN: read the form's FIELD from COLUMN (or GeoJSON property); repeatable.
    /// Fields without a mapping are read from the column named like them.
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    map: Vec<String>,
    /// Column (or property) with the date the form was filled in (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    created_at: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

/// Checks and stores every row of `args.file`, or none.
pub(super) async fn run(args: ImportArgs) -> anyhow::Result<()> {
    with_migrated_database(
        &args.db.clone(),
        |pool| async move { import(&pool, args).await },
    )
    .await
}

/// Shows an import's progress: a bar on a terminal, a plain line now and then otherwise
/// (also used by `civicmap addresses import`).
pub(super) struct ImportProgress {
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
    last_line: std::time::Instant,
    total: u64,
}

impl ImportProgress {
    pub(super) fn new() -> Self {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message("checking rows");
            bar
        });
        Self {
            bar,
            terminal,
            last_line: std::time::Instant::now(),
            total: 0,
        }
    }

    /// Clears the bar, if one is shown.
    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn line(&mut self, text: String, force: bool) {
        if force || self.last_line.elapsed() >= Duration::from_secs(1) {
            eprintln!("{text}");
            self.last_line = std::time::Instant::now();
        }
    }
}

impl crate::import::Progress for ImportProgress {
    fn checked(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => self.line(format!("checked {done} rows"), false),
        }
    }

    fn storing(&mut self, rows: u64) {
        self.total = rows;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.terminal {
            let bar = indicatif::ProgressBar::new(rows);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "storing {bar:40} {pos}/{len} rows ({per_sec}, {eta} left)",
            ) {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        } else {
            self.line(format!("all {rows} rows accepted; storing"), true);
        }
    }

    fn stored(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let total = self.total;
                self.line(format!("stored {done}/{total} rows"), done == total);
            }
        }
    }
}

async fn import(pool: &PgPool, args: ImportArgs) -> anyhow::Result<()> {
    use crate::import::{Mapping, Outcome};
    let mut fields = std::collections::HashMap::new();
    for pair in &args.map {
        let (field, column) = pair
            .split_once('=')
            .filter(|(f, c)| !f.is_empty() && !c.is_empty())
            .ok_or_else(|| anyhow::anyhow!("--map {pair}: expected FIELD=COLUMN"))?;
        fields.insert(field.to_owned(), column.to_owned());
    }
    let mapping = Mapping {
        lon: args.lon,
        lat: args.lat,
        fields,
        created_at: args.created_at,
    };
    let started = std::time::Instant::now();
    let mut progress = ImportProgress::new();
    let outcome =
        crate::import::import(pool, &args.campaign, &args.file, &mapping, &mut progress).await;
    progress.finish();
    match outcome? {
        Outcome::Imported { rows } => {
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{rows} rows imported into `{}` in {seconds:.1} s ({:.0} rows/s)",
                args.campaign,
                rows as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
        Outcome::Refused { rows, rejected } => {
            for r in &rejected {
                eprintln!("line {}: {}", r.line, r.reason);
            }
            anyhow::bail!(
                "{} of {rows} rows refused; nothing was imported. Fix them and run the import again",
                rejected.len()
            )
        }
    }
}
