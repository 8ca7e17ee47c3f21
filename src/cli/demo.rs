//! `civicmap demo`: the demo campaign, and synthetic households for load tests.

use clap::Args;

use super::database::{DbArgs, with_migrated_database};

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Also add this many synthetic households inside the districts (for load tests).
    #[arg(long, default_value_t = 0)]
    more_points: usize,
    /// Seed of the synthetic points: the same seed gives the same points.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    db: DbArgs,
}

/// Loads the demo campaign, and `--more-points` synthetic households.
pub(super) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let DemoArgs {
        more_points,
        seed,
        db,
    } = args;
    with_migrated_database(&db, |pool| async move {
        let (campaign, created) = crate::demo::load(&pool).await?;
        println!(
            "demo campaign `{}` {}",
            campaign.slug,
            if created { "loaded" } else { "already there" }
        );
        if more_points > 0 {
            let started = std::time::Instant::now();
            crate::demo::add_points(&pool, more_points, seed).await?;
            println!(
                "{more_points} synthetic points added in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    })
    .await
}
