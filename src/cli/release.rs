//! `civicmap release`: release a campaign's figures finer than a district now, or every
//! release due (what `serve` does every minute).

use clap::Args;

use super::database::{DbArgs, with_migrated_database};

#[derive(Debug, Args)]
pub(super) struct ReleaseArgs {
    /// The campaign (slug) to release now; without it, every release due is made.
    campaign: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

pub(super) async fn run(args: ReleaseArgs) -> anyhow::Result<()> {
    with_migrated_database(&args.db.clone(), |pool| async move {
        match &args.campaign {
            Some(slug) => {
                let campaign = crate::campaigns::get(&pool, slug).await?;
                anyhow::ensure!(
                    campaign.status != crate::campaigns::Status::Draft,
                    "`{slug}` is a draft: nothing of it is public, so nothing is released"
                );
                let started = std::time::Instant::now();
                match crate::figures::release::release_now_audited(
                    &pool,
                    crate::audit::Actor::Cli,
                    campaign.id,
                )
                .await?
                {
                    Some(made) => println!(
                        "`{slug}`: release {} counted {} contributions (each spent ε = {:.3}) in {:.1} s",
                        made.id,
                        made.counted,
                        made.epsilon,
                        started.elapsed().as_secs_f64()
                    ),
                    None => println!("`{slug}`: a release covering this instant was just made"),
                }
            }
            None => {
                let made =
                    crate::figures::release::run_due(&pool, time::OffsetDateTime::now_utc()).await?;
                println!("{} releases made", made.len());
            }
        }
        Ok(())
    })
    .await
}
