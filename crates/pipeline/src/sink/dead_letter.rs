//! Moving an undecodable or unstorable message aside, so it never blocks the ones behind it.

use crate::internal_events::emit;
use crate::internal_events::sink::{DeadLetterFailed, DeadLettered};
use crate::publish::streams::dead_letter_subject;
use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;

/// Publish `payload` to `deadletter.<subject>` (with the reason in headers); true once stored, and
/// only then may the original be acked. If it cannot be stored the original stays unacked and comes back.
pub(super) async fn dead_letter(
    js: &jetstream::Context,
    prefix: &str,
    subject: &str,
    payload: Bytes,
    kind: &'static str,
    error: &str,
) -> bool {
    let target = dead_letter_subject(prefix, subject);
    let mut headers = HeaderMap::new();
    headers.insert("Marketprism-Original-Subject", subject);
    headers.insert("Marketprism-Error-Kind", kind);
    // Header values are one line.
    headers.insert(
        "Marketprism-Error",
        error.replace(['\r', '\n'], " ").as_str(),
    );
    let stored = match js
        .publish_with_headers(target.clone(), headers, payload)
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match stored {
        Ok(()) => {
            emit(DeadLettered {
                subject,
                dead_letter_subject: &target,
                kind,
                error,
            });
            true
        }
        Err(e) => {
            emit(DeadLetterFailed { subject, error: &e });
            false
        }
    }
}
