//! The JetStream payload of a subject `{data_type}.{exchange}.{market_type}.{symbol}`.
//!
//! A message holds either **one event**, a JSON object (the [`Event`] serialization), or a **batch**:
//! a JSON array of two or more events of that one subject, oldest first, with the header
//! [`EVENTS_HEADER`] giving their count. The publisher batches a subject's events that arrive within
//! a short linger (`outputs.nats.batch_linger_ms`), so under load one message carries many events and
//! the server handles a fraction of the messages (publish, publish ack, delivery, consumer ack).
//!
//! A batch's `Nats-Msg-Id` ([`batch_msg_id`]) is a function of the msg ids it holds, so a retried
//! batch is recognized by JetStream's duplicate window like a retried event, and two batches with
//! the same id hold the same events. A consumer reads either shape with [`decode`].

use crate::{Event, subject_of_msg_id};
use serde_json::value::RawValue;
use std::fmt::Write;
use twox_hash::XxHash3_128;

/// Header of a batch message: the number of events in its array (informational; the payload is authoritative).
pub const EVENTS_HEADER: &str = "Marketprism-Events";

/// Is this payload a batch (a JSON array) rather than one event?
pub fn is_batch(payload: &[u8]) -> bool {
    payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// The events of a message, in publish order: one for an object, every element for a batch.
///
/// # Errors
/// Not JSON, or an object or element that is not an [`Event`].
pub fn decode(payload: &[u8]) -> Result<Vec<Event>, serde_json::Error> {
    if is_batch(payload) {
        serde_json::from_slice(payload)
    } else {
        serde_json::from_slice(payload).map(|e| vec![e])
    }
}

/// The elements of a batch as raw JSON, undecoded: to decode each on its own, so one bad element
/// costs that element only.
///
/// # Errors
/// The payload is not a JSON array.
pub fn batch_elements(payload: &[u8]) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_slice(payload)
}

/// The payload of a batch: the serialized events (each a JSON object) as one JSON array.
pub fn batch_payload<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4_096);
    out.push(b'[');
    for (i, json) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json);
    }
    out.push(b']');
    out
}

/// `Nats-Msg-Id` of a batch: `{subject}:batch:{count}:{xxh3-128 of the msg ids, in order}`.
/// Deterministic, so a retry of the same batch carries the same id; the subject is that of the
/// first msg id (every event of a batch has it).
pub fn batch_msg_id<'a>(msg_ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = XxHash3_128::new();
    let mut count = 0usize;
    let mut subject = "";
    for id in msg_ids {
        if count == 0 {
            subject = subject_of_msg_id(id);
        }
        hasher.write(id.as_bytes());
        // A separator no msg id holds: ["a","bc"] and ["ab","c"] hash differently.
        hasher.write(b"\n");
        count += 1;
    }
    let mut out = String::with_capacity(subject.len() + 48);
    let _ = write!(out, "{subject}:batch:{count}:{:032x}", hasher.finish_128());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::synthetic_events;

    #[test]
    fn one_event_and_a_batch_decode_to_the_events_in_order() {
        let events = synthetic_events(5, 6);
        let jsons: Vec<Vec<u8>> = events
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap())
            .collect();
        assert!(!is_batch(&jsons[0]));
        assert_eq!(decode(&jsons[0]).unwrap(), vec![events[0].clone()]);
        let batch = batch_payload(jsons.iter().map(Vec::as_slice));
        assert!(is_batch(&batch));
        assert_eq!(decode(&batch).unwrap(), events);
        assert_eq!(batch_elements(&batch).unwrap().len(), 6);
        assert!(decode(b"[{\"not\":1}]").is_err());
        assert!(decode(b"{oops").is_err());
        assert!(batch_elements(&jsons[0]).is_err(), "an object is no batch");
    }

    #[test]
    fn batch_ids_follow_the_content_and_name_the_subject() {
        let a = batch_msg_id(["trades.x.spot.BTC-USDT:1", "trades.x.spot.BTC-USDT:2"]);
        assert!(a.starts_with("trades.x.spot.BTC-USDT:batch:2:"), "{a}");
        assert_eq!(subject_of_msg_id(&a), "trades.x.spot.BTC-USDT");
        assert_eq!(
            a,
            batch_msg_id(["trades.x.spot.BTC-USDT:1", "trades.x.spot.BTC-USDT:2"])
        );
        for other in [
            batch_msg_id(["trades.x.spot.BTC-USDT:1", "trades.x.spot.BTC-USDT:3"]),
            batch_msg_id(["trades.x.spot.BTC-USDT:2", "trades.x.spot.BTC-USDT:1"]),
            batch_msg_id(["trades.x.spot.BTC-USDT:1"]),
            batch_msg_id(["trades.x.spot.BTC-USDT:", "1trades.x.spot.BTC-USDT:2"]),
        ] {
            assert_ne!(a, other);
        }
    }
}
