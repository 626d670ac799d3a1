//! REST book snapshots for a session: fetched through the venue's limiter, retried with backoff until
//! they succeed, the venue says it does not list the instrument, or the session ends (its JoinSet
//! aborts them). Every failure is also reported to the session (for the book's not-synced reason).

use super::attribute::rest_refusal;
use super::backoff::{backoff, jitter};
use super::session::SessionCtx;
use crate::book::BookSnapshot;
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::{BadFrame, RestFailed};
use marketprism_model::Symbol;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

#[derive(Debug)]
pub(crate) enum Fetched {
    Snapshot(BookSnapshot),
    /// The venue does not list the instrument: do not ask again.
    Refused(String),
    /// One attempt failed (`rejected`: the answer arrived but was unusable); the fetch goes on.
    Failed {
        rejected: bool,
        detail: String,
    },
}

pub(crate) fn spawn_fetch(
    ctx: &Arc<SessionCtx>,
    fetches: &mut JoinSet<()>,
    tx: mpsc::Sender<(Symbol, Fetched)>,
    symbol: Symbol,
) -> bool {
    let ctx = Arc::clone(ctx);
    let limit = ctx
        .plan
        .book
        .as_ref()
        .map_or(1000, |b| b.config.rest_snapshot_limit);
    let Some((url, weight)) = ctx
        .plan
        .snapshot_request(&ctx.plan.rest_url, &symbol, limit)
    else {
        return false;
    };
    fetches.spawn(async move {
        let venue = ctx.plan.venue;
        let exchange = venue.exchange();
        // Spread the resyncs of many symbols that gap together.
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 250)).await;
        let mut attempt = 0;
        loop {
            ctx.limiter.acquire(weight).await;
            let (status, failure) = match ctx.http.get(&url).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if !resp.status().is_success() {
                        ctx.limiter.honour_rejection(status, resp.headers());
                    }
                    let body = resp.text().await.unwrap_or_default();
                    if let Some(why) = rest_refusal(venue, status, &body) {
                        let _ = tx.send((symbol, Fetched::Refused(why))).await;
                        return;
                    }
                    if (200..300).contains(&status) {
                        match ctx.plan.parse_snapshot(&symbol, &body) {
                            Ok(snap) => {
                                let _ = tx.send((symbol, Fetched::Snapshot(snap))).await;
                                return;
                            }
                            Err(error) => {
                                BadFrame {
                                    exchange,
                                    error: &error,
                                    frame: &body,
                                }
                                .emit();
                                (Some(status), (true, format!("snapshot rejected: {error}")))
                            }
                        }
                    } else {
                        (Some(status), (false, format!("HTTP {status}: {body}")))
                    }
                }
                Err(e) => (None, (false, e.to_string())),
            };
            let wait = backoff(attempt, jitter());
            attempt = attempt.saturating_add(1);
            RestFailed {
                exchange,
                endpoint: &url,
                status,
                detail: &failure.1,
                retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            }
            .emit();
            let (rejected, detail) = failure;
            let _ = tx.try_send((symbol.clone(), Fetched::Failed { rejected, detail }));
            tokio::time::sleep(wait).await;
        }
    });
    true
}
