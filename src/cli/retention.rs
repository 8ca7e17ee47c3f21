//! `civicmap retention run`: coarsen the exact data of campaigns past their retention.

use clap::Subcommand;

use super::database::{DbArgs, with_migrated_database};

#[derive(Debug, Subcommand)]
pub(super) enum RetentionCommand {
    /// Snap exact positions to the public grid and delete free-text answers in every campaign
    /// whose retention period has passed (serve also does it every hour).
    Run {
        /// Only this campaign (slug).
        #[arg(long)]
        campaign: Option<String>,
        /// Say what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub(super) async fn run(command: RetentionCommand) -> anyhow::Result<()> {
    match command {
        RetentionCommand::Run {
            campaign,
            dry_run,
            db,
        } => {
            with_migrated_database(&db, |pool| async move {
                let outcomes = crate::retention::run(
                    &pool,
                    crate::audit::Actor::Cli,
                    campaign.as_deref(),
                    dry_run,
                )
                .await
                ?;
                let verb = if dry_run { "would be" } else { "were" };
                if !dry_run {
                    // The addresses of followers of campaigns past their retention go too.
                    let deleted = crate::notify::purge(&pool).await?;
                    if deleted > 0 {
                        println!("{deleted} e-mail subscriptions past retention or never confirmed were deleted");
                    }
                }
                for o in &outcomes {
                    println!(
                        "`{}`: {} positions {verb} snapped to the public grid; free-text answers ({}) {verb} deleted from {} submissions",
                        o.campaign,
                        o.submissions,
                        if o.text_fields.is_empty() { "no text field".to_owned() } else { o.text_fields.join(", ") },
                        o.with_text
                    );
                }
                match (&campaign, outcomes.is_empty()) {
                    (Some(slug), true) => println!(
                        "`{slug}`: nothing to do: it {}",
                        crate::retention::not_due_reason(&pool, slug).await?
                    ),
                    (None, true) => println!("no campaign is due"),
                    _ => {}
                }
                Ok(())
            })
            .await
        }
    }
}
