//! JetStream message → `Event`, with the checks that make a message trustworthy. Pure.

use crate::publish::streams::{data_type_of_subject, prefixed, unprefixed};
use marketprism_model::{DataType, Event, subject_of_msg_id};

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

/// Decode a message; the subject must be exactly the one the publisher derives from the event.
pub fn decode(prefix: &str, subject: &str, payload: &[u8]) -> Result<Decoded, DecodeError> {
    let data_type = data_type_of_subject(prefix, subject)
        .ok_or_else(|| DecodeError::UnknownSubject(subject.to_owned()))?;
    let event: Event =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
    let msg_id = event.msg_id();
    let event_subject = subject_of_msg_id(&msg_id);
    if unprefixed(prefix, subject) != Some(event_subject) {
        return Err(DecodeError::SubjectMismatch {
            subject: subject.to_owned(),
            expected: data_type.to_string(),
            payload: prefixed(prefix, event_subject),
        });
    }
    Ok(Decoded {
        data_type,
        event,
        msg_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::synthetic::synthetic_events;

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
