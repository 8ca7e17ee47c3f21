//! `civicmap export`: a campaign's aggregates (or, with `--raw`, its published submissions)
//! as the API serves them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use sqlx::PgPool;

use super::database::{DbArgs, with_migrated_database};

#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// Campaign name (slug).
    campaign: String,
    /// `district` or `h3:6` to `h3:10`.
    #[arg(long, default_value = "district")]
    by: String,
    /// File format (default: from --output's extension, else GeoJSON).
    #[arg(long, value_parser = ["geojson", "csv"])]
    format: Option<String>,
    /// French-Excel CSV: BOM, `;` separator, decimal comma.
    #[arg(long)]
    excel: bool,
    /// A choice or yes/no field: one count per answer.
    #[arg(long)]
    breakdown: Option<String>,
    /// A number field to add up per area.
    #[arg(long)]
    sum: Option<String>,
    /// Only submissions created at or after this instant (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Only submissions created before this instant (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    /// Every published submission with its exact position and answers (written to the audit
    /// log) instead of aggregates.
    #[arg(long)]
    raw: bool,
    /// With --raw: only this district (its code).
    #[arg(long, requires = "raw")]
    district: Option<String>,
    /// File to write (standard output by default).
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
}

/// Writes the export to `--output` or standard output.
pub(super) async fn run(args: ExportArgs) -> anyhow::Result<()> {
    with_migrated_database(
        &args.db.clone(),
        |pool| async move { export(&pool, args).await },
    )
    .await
}

async fn export(pool: &PgPool, args: ExportArgs) -> anyhow::Result<()> {
    use crate::exports::format::{self, Format};
    let extension = args
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str());
    let csv = args.format.as_deref().or(extension) == Some("csv");
    let format = Format::new(csv, args.excel);
    let campaign = crate::campaigns::get(pool, &args.campaign).await?;
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if args.raw {
        use crate::exports::raw::RawQuery;
        let query = RawQuery {
            from: args.from,
            to: args.to,
            district: args.district,
            excel: None,
        };
        let filter = query.check()?;
        let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
        let exporting = crate::exports::raw::export_and_audit(
            pool.clone(),
            crate::audit::Actor::Cli,
            campaign,
            filter,
            format,
            sender,
        );
        let writing = async {
            while let Some(chunk) = receiver.recv().await {
                out.write_all(&chunk?)?;
            }
            out.flush()?;
            Ok::<_, anyhow::Error>(())
        };
        let (rows, written) = tokio::join!(exporting, writing);
        written?;
        eprintln!("{} submissions exported", rows?);
        return Ok(());
    }
    let query = crate::exports::AggregateQuery {
        by: Some(args.by),
        breakdown: args.breakdown,
        sum: args.sum,
        from: args.from,
        to: args.to,
        excel: None,
    };
    let request = query.check(&campaign, true)?;
    // The command line is staff: exact figures, not for publication.
    let aggregate = crate::figures::aggregate::exact(pool, &campaign, &request).await?;
    match format {
        Format::GeoJson => {
            serde_json::to_writer(&mut out, &format::geojson(&aggregate, &campaign.slug))?
        }
        Format::Csv(flavour) => out.write_all(&format::csv(&aggregate, flavour)?)?,
    }
    out.flush()?;
    Ok(())
}
