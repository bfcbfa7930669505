//! The export workers and the batch-timeout ticker.

use super::*;

/// One export worker: waits for the service to be ready, then for a batch.
pub(super) async fn work<S>(shared: Arc<Shared>, proto: S, stop: Arc<AtomicBool>)
where
    S: Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Classify + fmt::Display + Send,
{
    let mut svc = proto.clone();
    while !stop.load(Ordering::Relaxed) {
        // Readiness first, so back-pressure keeps batches in the queue, where
        // the overflow policy can act on them.
        if let Err(e) = svc.ready().await {
            tracing::warn!(error = %e, "export service failed while becoming ready; retrying with a fresh clone");
            tokio::time::sleep(Duration::from_millis(100)).await;
            svc = proto.clone();
            continue;
        }
        let Some((id, batch)) = next_batch(&shared, &stop).await else {
            return;
        };
        let outcome = svc.call(batch).await.map_err(|e| Failure {
            class: e.classify(),
            invalid: e.is_invalid_request(),
            message: e.to_string(),
        });
        shared.settle(id, outcome);
    }
}

pub(super) async fn next_batch(shared: &Shared, stop: &AtomicBool) -> Option<(u64, Batch)> {
    loop {
        let work = shared.work.notified();
        tokio::pin!(work);
        work.as_mut().enable();
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(next) = shared.take() {
            return Some(next);
        }
        work.await;
    }
}

/// The batch timer; ends when the pipeline is gone.
pub(super) async fn tick(shared: std::sync::Weak<Shared>) {
    let period = match shared.upgrade() {
        Some(s) => s.tick_period(),
        None => return,
    };
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.on_tick(now);
    }
}
