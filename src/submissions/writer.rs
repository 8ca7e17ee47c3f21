//! Group commit for submissions: concurrent requests are stored together in one statement.
//!
//! Each request hands its submission to a queue and waits for its own result. A few workers
//! take whatever is queued (up to [`MAX_BATCH`]) and store it with
//! [`store_batch`](super::store_batch): one round trip and one commit for many citizens.
//! Nothing waits for a batch to fill: a lone request is stored at once, and batches only grow
//! when requests arrive faster than the database commits. Every request still gets its answer
//! only after its own row is committed.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Pending, Stored};
use crate::http::error::{ApiError, ApiResult};

/// Most submissions stored by one statement.
pub const MAX_BATCH: usize = 64;

struct Job {
    pending: Pending,
    reply: oneshot::Sender<ApiResult<Stored>>,
}

/// The queue in front of the submission workers.
#[derive(Clone)]
pub struct BatchWriter {
    sender: mpsc::Sender<Job>,
}

impl BatchWriter {
    /// Starts `workers` workers writing to `pool`. Must be called inside a Tokio runtime.
    pub fn start(pool: PgPool, workers: usize) -> Self {
        let (sender, receiver) = mpsc::channel(MAX_BATCH * workers.max(1) * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        // Each worker of this instance writes its own counter shard, so that two batches in
        // flight never queue on the same counter row; other instances start elsewhere.
        let first_shard = crate::aggregates::random_shard();
        for worker in 0..workers.max(1) {
            let shard = (first_shard + worker as i16) % crate::aggregates::SHARDS;
            tokio::spawn(work(pool.clone(), receiver.clone(), shard));
        }
        Self { sender }
    }

    /// Stores `pending` with whatever else is queued, and returns its own result once
    /// committed.
    pub async fn store(&self, pending: Pending) -> ApiResult<Stored> {
        let (reply, result) = oneshot::channel();
        self.sender
            .send(Job { pending, reply })
            .await
            .map_err(|_| ApiError::Unavailable("the submission writer has stopped".into()))?;
        let queued = self.sender.max_capacity() - self.sender.capacity();
        metrics::gauge!("civicmap_submission_queue_depth").set(queued as f64);
        result.await.map_err(|_| {
            ApiError::Internal(anyhow::anyhow!("a submission worker dropped its job"))
        })?
    }
}

async fn work(pool: PgPool, receiver: Arc<Mutex<mpsc::Receiver<Job>>>, shard: i16) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut jobs, MAX_BATCH).await == 0 {
                return; // Every sender is gone: the server is shutting down.
            }
        }
        tracing::trace!(size = jobs.len(), "storing a batch of submissions");
        let batch: Vec<Pending> = jobs.iter().map(|job| job.pending.clone()).collect();
        metrics::histogram!("civicmap_submission_batch_size").record(batch.len() as f64);
        match super::store_batch(&pool, &batch, shard).await {
            Ok(results) => {
                let created = results
                    .iter()
                    .filter(|r| matches!(r, Ok(Stored::Created(_))))
                    .count();
                metrics::counter!("civicmap_submissions_stored_total").increment(created as u64);
                for (job, result) in jobs.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(error) => {
                let unavailable = matches!(error, ApiError::Unavailable(_));
                if !unavailable {
                    tracing::error!(error = ?error, size = jobs.len(), "a batch of submissions failed");
                }
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(if unavailable {
                        ApiError::Unavailable(error.to_string())
                    } else {
                        ApiError::Internal(anyhow::anyhow!(
                            "the batch this submission was in failed"
                        ))
                    }));
                }
            }
        }
    }
}
