//! An in-process cache of public campaigns, so that a submission or a tile does not reload
//! its campaign from the database each time.
//!
//! Reads may see settings up to [`TTL`] old on another instance; writes never act on a stale
//! copy, because every submission's statement checks the copy's `config_version`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use super::Campaign;
use super::CampaignError;

/// How long a cached campaign is trusted for reads.
pub const TTL: Duration = Duration::from_secs(2);

/// Public campaigns by slug.
#[derive(Clone)]
pub struct CampaignCache {
    inner: moka::future::Cache<String, Arc<Campaign>>,
}

impl Default for CampaignCache {
    fn default() -> Self {
        Self {
            inner: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(TTL)
                .build(),
        }
    }
}

impl CampaignCache {
    /// The public (non-draft) campaign named `slug`, or a 404.
    pub async fn get_public(
        &self,
        db: &PgPool,
        slug: &str,
    ) -> Result<Arc<Campaign>, CampaignError> {
        if let Some(campaign) = self.inner.get(slug).await {
            return Ok(campaign);
        }
        let campaign = Arc::new(super::get_public(db, slug).await?);
        self.inner.insert(slug.to_owned(), campaign.clone()).await;
        Ok(campaign)
    }

    /// Forgets `slug`, after a change made here or found stale.
    pub async fn invalidate(&self, slug: &str) {
        self.inner.invalidate(slug).await;
    }
}
