//! JetStream message → `Event`s, with the checks that make a message trustworthy. Pure.
//!
//! A message holds one event or a batch of one subject's events ([`marketprism_model::wire`]).

use crate::publish::streams::{data_type_of_subject, prefixed, unprefixed};
use marketprism_model::{DataType, Event, subject_of_msg_id, wire};

/// A message read back: its event and the event's `msg_id` (the natural key the batch deduplicates on).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub data_type: DataType,
    pub event: Event,
    pub msg_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("subject {0:?} names no data type")]
    UnknownSubject(String),
    #[error("payload is not a normalized event: {0}")]
    Json(String),
    #[error("payload is a {payload} event for subject {subject}, which expects {expected}")]
    SubjectMismatch {
        subject: String,
        expected: String,
        payload: String,
    },
}

impl DecodeError {
    /// Short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::UnknownSubject(_) => "unknown_subject",
            DecodeError::Json(_) => "json",
            DecodeError::SubjectMismatch { .. } => "subject_mismatch",
        }
    }
}

/// One element of a batch that cannot be used: its own JSON (to dead-letter alone) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadElement {
    pub json: bytes::Bytes,
    pub error: DecodeError,
}

/// Decode a message of one event or a batch: every element's event, or why that element is bad.
/// The whole message is refused (`Err`) when its subject is unknown or it is neither an event nor
/// an array; within a batch, a bad element costs that element only.
pub fn decode_message(
    prefix: &str,
    subject: &str,
    payload: &[u8],
) -> Result<Vec<Result<Decoded, BadElement>>, DecodeError> {
    if !wire::is_batch(payload) {
        return decode(prefix, subject, payload).map(|d| vec![Ok(d)]);
    }
    let data_type = data_type_of_subject(prefix, subject)
        .ok_or_else(|| DecodeError::UnknownSubject(subject.to_owned()))?;
    // Fast path: the whole array at once; only a batch with a bad element is decoded one by one.
    if let Ok(events) = serde_json::from_slice::<Vec<Event>>(payload) {
        return Ok(events
            .into_iter()
            .map(
                |event| match msg_id_on(prefix, subject, data_type, &event) {
                    Ok(msg_id) => Ok(Decoded {
                        data_type,
                        event,
                        msg_id,
                    }),
                    Err(error) => Err(BadElement {
                        json: serde_json::to_vec(&event).unwrap_or_default().into(),
                        error,
                    }),
                },
            )
            .collect());
    }
    let elements = wire::batch_elements(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
    Ok(elements
        .into_iter()
        .map(|raw| {
            let bad = |error| BadElement {
                json: bytes::Bytes::copy_from_slice(raw.get().as_bytes()),
                error,
            };
            let event: Event = serde_json::from_str(raw.get())
                .map_err(|e| bad(DecodeError::Json(e.to_string())))?;
            let msg_id = msg_id_on(prefix, subject, data_type, &event).map_err(bad)?;
            Ok(Decoded {
                data_type,
                event,
                msg_id,
            })
        })
        .collect())
}

/// Decode a message of one event; the subject must be exactly the one the publisher derives from the event.
pub fn decode(prefix: &str, subject: &str, payload: &[u8]) -> Result<Decoded, DecodeError> {
    let data_type = data_type_of_subject(prefix, subject)
        .ok_or_else(|| DecodeError::UnknownSubject(subject.to_owned()))?;
    let event: Event =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
    let msg_id = msg_id_on(prefix, subject, data_type, &event)?;
    Ok(Decoded {
        data_type,
        event,
        msg_id,
    })
}

/// The event belongs on `subject`: the one the publisher derives from it.
/// Its msg id when so.
fn msg_id_on(
    prefix: &str,
    subject: &str,
    data_type: DataType,
    event: &Event,
) -> Result<String, DecodeError> {
    let msg_id = event.msg_id();
    let event_subject = subject_of_msg_id(&msg_id);
    if unprefixed(prefix, subject) != Some(event_subject) {
        return Err(DecodeError::SubjectMismatch {
            subject: subject.to_owned(),
            expected: data_type.to_string(),
            payload: prefixed(prefix, event_subject),
        });
    }
    Ok(msg_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::synthetic::synthetic_events;

    #[test]
    fn a_batch_decodes_to_its_events_and_a_bad_element_costs_only_itself() {
        let events: Vec<Event> = synthetic_events(4, 4_000)
            .into_iter()
            .filter(|e| e.data_type() == DataType::Trades)
            .collect();
        let subject = events[0].subject();
        let same: Vec<&Event> = events.iter().filter(|e| e.subject() == subject).collect();
        assert!(same.len() >= 3);
        let other = events.iter().find(|e| e.subject() != subject).unwrap();
        let json = |e: &Event| serde_json::to_vec(e).unwrap();
        let subject = prefixed("p", &subject);

        let good = wire::batch_payload(
            same.iter()
                .map(|e| json(e))
                .collect::<Vec<_>>()
                .iter()
                .map(Vec::as_slice),
        );
        let items = decode_message("p", &subject, &good).unwrap();
        let back: Vec<Event> = items.into_iter().map(|i| i.unwrap().event).collect();
        assert_eq!(back, same.iter().map(|e| (*e).clone()).collect::<Vec<_>>());

        // One element of another subject, one that is no event: each bad alone, in place.
        let parts = [
            json(same[0]),
            json(other),
            b"{\"x\":1}".to_vec(),
            json(same[1]),
        ];
        let mixed = wire::batch_payload(parts.iter().map(Vec::as_slice));
        let items = decode_message("p", &subject, &mixed).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap().event, *same[0]);
        let bad = items[1].as_ref().unwrap_err();
        assert_eq!(bad.error.kind(), "subject_mismatch");
        assert_eq!(serde_json::from_slice::<Event>(&bad.json).unwrap(), *other);
        let bad = items[2].as_ref().unwrap_err();
        assert_eq!(
            (bad.error.kind(), &bad.json[..]),
            ("json", &b"{\"x\":1}"[..])
        );
        assert_eq!(items[3].as_ref().unwrap().event, *same[1]);

        // A batch whose every element parses but one is misplaced: found on the fast path too.
        let parts = [json(same[0]), json(other)];
        let items = decode_message(
            "p",
            &subject,
            &wire::batch_payload(parts.iter().map(Vec::as_slice)),
        )
        .unwrap();
        assert!(
            items[0].is_ok() && items[1].as_ref().unwrap_err().error.kind() == "subject_mismatch"
        );

        assert_eq!(
            decode_message("p", &subject, b"[1,").unwrap_err().kind(),
            "json"
        );
        assert_eq!(
            decode_message("p", "p.nonsense", &good).unwrap_err().kind(),
            "unknown_subject"
        );
        let single = decode_message("p", &subject, &json(same[2])).unwrap();
        assert_eq!(single.len(), 1);
    }

    #[test]
    fn every_type_round_trips_and_bad_messages_say_why() {
        for event in synthetic_events(3, 9) {
            let subject = prefixed("p", &event.subject());
            let json = serde_json::to_vec(&event).unwrap();
            let back = decode("p", &subject, &json).unwrap();
            assert_eq!(
                back,
                Decoded {
                    data_type: event.data_type(),
                    msg_id: event.msg_id(),
                    event: event.clone(),
                }
            );
            let unprefixed = decode("", &event.subject(), &json).unwrap();
            assert_eq!(unprefixed.event, event);
            assert_eq!(
                decode("q", &subject, &json).unwrap_err().kind(),
                "unknown_subject",
                "another deployment's prefix"
            );

            let err = decode("p", &subject, b"{not json").unwrap_err();
            assert_eq!(err.kind(), "json");
            let err = decode("p", "p.nonsense.x.y.z", &json).unwrap_err();
            assert_eq!(err.kind(), "unknown_subject");
            let other = if event.data_type() == DataType::Trades {
                "p.funding_rate.okx_spot.spot.BTC-USDT"
            } else {
                "p.trade.okx_spot.spot.BTC-USDT"
            };
            assert_eq!(
                decode("p", other, &json).unwrap_err().kind(),
                "subject_mismatch"
            );
        }
    }
}
