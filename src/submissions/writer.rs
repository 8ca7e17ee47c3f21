//! Group commit for submissions: concurrent requests are stored together in one statement.
//!
//! Each request hands its submission to a queue and waits for its own result. A few workers
//! take whatever is queued (up to [`MAX_BATCH`]) and store it with
//! [`store_batch`](super::store_batch): one round trip and one commit for many citizens.
//! Nothing waits for a batch to fill: a lone request is stored at once, and batches only grow
//! when requests arrive faster than the database commits. Every request still gets its answer
//! only after its own row is committed.
//!
//! A batch is one statement, so one bad row would fail it whole. When the database refuses a
//! batch (an error it raised: nothing of it was committed), each of its submissions is stored
//! again alone: the bad one gets its own error, the others are stored. Any other failure (the
//! database away, a connection lost, an answer that cannot be read) may have come after the
//! commit: the whole batch gets the error, and a retry with the same `Idempotency-Key` is
//! answered from the first result.
//! A worker that panics is replaced by its supervisor; the submissions it held are answered
//! 503 (their batch may or may not have been committed, and a retry with the same
//! `Idempotency-Key` is answered from the first result).

use std::future::Future;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{BatchError, Pending, Stored, SubmissionError};

type Result<T, E = SubmissionError> = std::result::Result<T, E>;

/// Most submissions stored by one statement.
pub const MAX_BATCH: usize = 64;

/// The queue in front of the submission workers.
#[derive(Clone)]
pub struct BatchWriter {
    sender: mpsc::Sender<Job<Pending, Stored>>,
}

impl BatchWriter {
    /// Starts `workers` workers writing to `pool`. Must be called inside a Tokio runtime.
    pub fn start(pool: PgPool, workers: usize) -> Self {
        let (sender, receiver) = mpsc::channel(MAX_BATCH * workers.max(1) * 4);
        let store = move |batch: Vec<Pending>, shard: i16| {
            let pool = pool.clone();
            async move {
                let results = super::store_batch(&pool, &batch, shard).await?;
                let created = results
                    .iter()
                    .filter(|r| matches!(r, Ok(Stored::Created(_))))
                    .count();
                metrics::counter!("civicmap_submissions_stored_total").increment(created as u64);
                Ok(results)
            }
        };
        spawn_workers(receiver, workers, store);
        Self { sender }
    }

    /// Stores `pending` with whatever else is queued, and returns its own result once
    /// committed.
    pub async fn store(&self, pending: Pending) -> Result<Stored> {
        let result = submit(&self.sender, pending).await;
        let queued = self.sender.max_capacity() - self.sender.capacity();
        metrics::gauge!("civicmap_submission_queue_depth").set(queued as f64);
        result.await?
    }
}

/// One item waiting in the queue, with where its result goes.
struct Job<T, R> {
    item: T,
    reply: oneshot::Sender<Result<R>>,
}

/// Queues `item`; the returned future gives its result.
async fn submit<T, R>(
    sender: &mpsc::Sender<Job<T, R>>,
    item: T,
) -> impl Future<Output = Result<Result<R>>> + use<T, R> {
    let (reply, result) = oneshot::channel();
    let sent = sender.send(Job { item, reply }).await;
    async move {
        sent.map_err(|_| SubmissionError::Unavailable("the submission writer has stopped".into()))?;
        // Only a worker that died with the job in hand drops it; whether its batch was
        // committed is unknown, and a retry with the same Idempotency-Key is safe.
        result.await.map_err(|_| {
            SubmissionError::Unavailable(
                "the submission writer restarted; retry with the same Idempotency-Key".into(),
            )
        })
    }
}

/// Stores a batch: one result per item, in order, or an error of the whole batch.
trait Store<T, R>: Clone + Send + Sync + 'static {
    fn store(&self, batch: Vec<T>, shard: i16) -> impl Future<Output = StoreResult<R>> + Send;
}

type StoreResult<R> = Result<Vec<Result<R>>, BatchError>;

impl<T, R, F, Fut> Store<T, R> for F
where
    F: Fn(Vec<T>, i16) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = StoreResult<R>> + Send,
{
    fn store(&self, batch: Vec<T>, shard: i16) -> impl Future<Output = StoreResult<R>> + Send {
        self(batch, shard)
    }
}

/// Starts `workers` supervised workers taking jobs from `receiver`.
fn spawn_workers<T, R, S>(receiver: mpsc::Receiver<Job<T, R>>, workers: usize, store: S)
where
    T: Clone + Send + 'static,
    R: Send + 'static,
    S: Store<T, R>,
{
    let receiver = Arc::new(Mutex::new(receiver));
    // Each worker of this instance writes its own counter shard, so that two batches in
    // flight never queue on the same counter row; other instances start elsewhere.
    let first_shard = crate::figures::random_shard();
    for worker in 0..workers.max(1) {
        let shard = (first_shard + worker as i16) % crate::figures::SHARDS;
        tokio::spawn(supervise(receiver.clone(), store.clone(), shard));
    }
}

/// Runs a worker, and a new one whenever it panics, until the queue is closed.
async fn supervise<T, R, S>(receiver: Arc<Mutex<mpsc::Receiver<Job<T, R>>>>, store: S, shard: i16)
where
    T: Clone + Send + 'static,
    R: Send + 'static,
    S: Store<T, R>,
{
    loop {
        match tokio::spawn(work(receiver.clone(), store.clone(), shard)).await {
            Ok(()) => return, // The queue is closed: the server is shutting down.
            Err(error) if error.is_panic() => {
                tracing::error!(shard, "a submission worker panicked; starting another");
                metrics::counter!("civicmap_submission_worker_restarts_total").increment(1);
            }
            Err(_) => return, // Cancelled: the runtime is shutting down.
        }
    }
}

async fn work<T, R, S>(receiver: Arc<Mutex<mpsc::Receiver<Job<T, R>>>>, store: S, shard: i16)
where
    T: Clone + Send + 'static,
    R: Send + 'static,
    S: Store<T, R>,
{
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut jobs, MAX_BATCH).await == 0 {
                return; // Every sender is gone: the server is shutting down.
            }
        }
        tracing::trace!(size = jobs.len(), "storing a batch of submissions");
        metrics::histogram!("civicmap_submission_batch_size").record(jobs.len() as f64);
        let batch = jobs.iter().map(|job| job.item.clone()).collect();
        match attempt(&store, batch, shard).await {
            Ok(results) => {
                for (job, result) in jobs.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(failed) if jobs.len() > 1 && failed.refused => {
                // Nothing was committed: store each alone, so that a bad row fails only itself.
                tracing::warn!(error = ?failed.error, size = jobs.len(), "the database refused a batch of submissions; storing each alone");
                for job in jobs.drain(..) {
                    match attempt(&store, vec![job.item.clone()], shard).await {
                        Ok(mut results) => {
                            let _ = job.reply.send(results.remove(0));
                        }
                        Err(failed) => {
                            let _ = job.reply.send(Err(failed.error));
                        }
                    }
                }
            }
            Err(failed) => answer_all(std::mem::take(&mut jobs), failed.error),
        }
    }
}

/// Answers every job of a batch that was not stored.
fn answer_all<T, R>(mut jobs: Vec<Job<T, R>>, error: SubmissionError) {
    match error {
        error if jobs.len() == 1 => {
            let _ = jobs.remove(0).reply.send(Err(error));
        }
        SubmissionError::Unavailable(message) => {
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(SubmissionError::Unavailable(message.clone())));
            }
        }
        error => {
            // Its fate is unknown (committed or not): no submission is stored again.
            tracing::error!(error = ?error, size = jobs.len(), "a batch of submissions failed");
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(SubmissionError::Internal(anyhow::anyhow!(
                        "the batch this submission was in failed"
                    ))));
            }
        }
    }
}

/// Stores `batch`: one result per item, in order.
async fn attempt<T, R, S: Store<T, R>>(store: &S, batch: Vec<T>, shard: i16) -> StoreResult<R> {
    let size = batch.len();
    let results = store.store(batch, shard).await?;
    if results.len() != size {
        return Err(BatchError {
            error: SubmissionError::Internal(anyhow::anyhow!(
                "{} results for {size} submissions",
                results.len()
            )),
            refused: false,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    /// Queues `items` before any worker runs, so that the first batch holds them all, then
    /// starts one worker storing with `store`, and returns each item's result.
    async fn store_all<S: Store<u32, u32>>(items: Vec<u32>, store: S) -> Vec<Result<u32>> {
        let (sender, receiver) = mpsc::channel(MAX_BATCH);
        let mut waiting = Vec::new();
        for item in items {
            waiting.push(submit(&sender, item).await);
        }
        spawn_workers(receiver, 1, store);
        let mut results = Vec::new();
        for result in waiting {
            results.push(result.await.and_then(|result| result));
        }
        results
    }

    /// A store that records the size of every batch it is given, fails a whole batch holding
    /// 13 as a database would fail a statement with one bad row, and panics on a batch holding
    /// 7.
    fn fussy_store(sizes: Arc<StdMutex<Vec<usize>>>) -> impl Store<u32, u32> {
        move |batch: Vec<u32>, _shard: i16| {
            sizes.lock().unwrap().push(batch.len());
            async move {
                assert!(!batch.contains(&7), "a bug met 7");
                if batch.contains(&13) {
                    return Err(BatchError {
                        error: SubmissionError::Invalid(crate::validation::Invalid::field(
                            "n",
                            "13 cannot be stored",
                        )),
                        refused: true,
                    });
                }
                if batch.contains(&99) {
                    // Failed after the commit, perhaps (an answer that cannot be read).
                    return Err(BatchError {
                        error: SubmissionError::Internal(anyhow::anyhow!("cannot read the answer")),
                        refused: false,
                    });
                }
                Ok(batch.into_iter().map(|n| Ok(n * 2)).collect())
            }
        }
    }

    #[tokio::test]
    async fn one_bad_item_fails_only_itself_not_its_batch() {
        let sizes = Arc::new(StdMutex::new(Vec::new()));
        let items: Vec<u32> = (10..30).collect();
        let results = store_all(items.clone(), fussy_store(sizes.clone())).await;
        for (item, result) in items.iter().zip(&results) {
            match result {
                Ok(doubled) => assert_eq!((*item, *doubled), (*item, item * 2)),
                Err(SubmissionError::Invalid(invalid)) => {
                    assert_eq!(*item, 13);
                    assert_eq!(invalid.to_string(), "n: 13 cannot be stored");
                }
                Err(other) => panic!("{item}: {other:?}"),
            }
        }
        assert!(results[3].is_err(), "13 is refused");
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 19);
        // One batch of 20 failed, then each was stored alone.
        assert_eq!(
            sizes.lock().unwrap().as_slice(),
            [20].iter().chain(&[1; 20]).copied().collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_worker_that_panics_is_replaced_and_its_batch_told_to_retry() {
        let sizes = Arc::new(StdMutex::new(Vec::new()));
        let (sender, receiver) = mpsc::channel(MAX_BATCH);
        let mut waiting = Vec::new();
        for item in [5, 6, 7] {
            waiting.push(submit(&sender, item).await);
        }
        // One worker only: anything stored after the panic was stored by its replacement.
        spawn_workers(receiver, 1, fussy_store(sizes.clone()));
        for result in waiting {
            let error = result.await.expect_err("the batch with 7 panicked");
            assert!(
                matches!(&error, SubmissionError::Unavailable(m) if m.contains("Idempotency-Key")),
                "{error:?}"
            );
        }
        for item in [8, 9] {
            let result = submit(&sender, item).await;
            let result = tokio::time::timeout(std::time::Duration::from_secs(10), result)
                .await
                .expect("no worker is left to store it");
            assert_eq!(result.unwrap().unwrap(), item * 2);
        }
        assert_eq!(sizes.lock().unwrap()[0], 3);
    }

    #[tokio::test]
    async fn a_batch_that_may_have_been_committed_is_never_stored_again() {
        let sizes = Arc::new(StdMutex::new(Vec::new()));
        let results = store_all(vec![98, 99, 100], fussy_store(sizes.clone())).await;
        for result in results {
            assert!(
                matches!(result, Err(SubmissionError::Internal(_))),
                "{result:?}"
            );
        }
        assert_eq!(
            sizes.lock().unwrap().as_slice(),
            [3],
            "stored once, not again one by one"
        );
    }

    #[tokio::test]
    async fn a_batch_is_unavailable_together_when_the_database_is_away() {
        let away = |batch: Vec<u32>, _shard: i16| async move {
            let _ = batch;
            Err::<Vec<Result<u32>>, _>(BatchError {
                error: SubmissionError::Unavailable("connection refused".into()),
                refused: false,
            })
        };
        let results = store_all(vec![1, 2, 3], away).await;
        for result in results {
            assert!(
                matches!(result, Err(SubmissionError::Unavailable(m)) if m == "connection refused")
            );
        }
    }
}
