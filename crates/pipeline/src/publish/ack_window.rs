//! The publisher's window of publishes waiting for their JetStream ack, and the reading of an ack.
//!
//! Every publish carries the reply subject `{inbox}.{token}`; one subscription on `{inbox}.*` receives
//! all acks, and the token finds the publish again. That replaces a request (oneshot, timer, boxed
//! future) per message. Tokens grow with send time, so the oldest unacked publish is always at the
//! front and time-outs are found without a scan. Pure: time is passed in.

use serde::Deserialize;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Publishes sent and not acked yet, by token.
#[derive(Debug)]
pub(crate) struct AckWindow<T> {
    /// Token of `slots[0]`.
    first_token: u64,
    /// `None`: acked (or timed out) but not at the front yet.
    slots: VecDeque<Option<(Instant, T)>>,
    waiting: usize,
}

impl<T> Default for AckWindow<T> {
    fn default() -> Self {
        AckWindow {
            first_token: 0,
            slots: VecDeque::new(),
            waiting: 0,
        }
    }
}

impl<T> AckWindow<T> {
    /// The token the next [`AckWindow::insert`] returns (for the reply subject of a publish not sent yet).
    pub fn next_token(&self) -> u64 {
        self.first_token + self.slots.len() as u64
    }

    /// Record a publish sent at `now`; returns its token.
    pub fn insert(&mut self, item: T, now: Instant) -> u64 {
        let token = self.next_token();
        self.slots.push_back(Some((now, item)));
        self.waiting += 1;
        token
    }

    /// The ack for `token` arrived. `None` if unknown: already timed out (and retried), or not ours.
    pub fn remove(&mut self, token: u64) -> Option<T> {
        let index = usize::try_from(token.checked_sub(self.first_token)?).ok()?;
        let (_, item) = self.slots.get_mut(index)?.take()?;
        self.waiting -= 1;
        self.pop_settled();
        Some(item)
    }

    /// Publishes sent `timeout` or longer before `now`, oldest first; they leave the window.
    pub fn take_expired(&mut self, now: Instant, timeout: Duration) -> Vec<T> {
        let mut expired = Vec::new();
        while let Some(front) = self.slots.front_mut() {
            match front {
                Some((sent, _)) if now.duration_since(*sent) < timeout => break,
                Some(_) => {
                    if let Some((_, item)) = front.take() {
                        expired.push(item);
                        self.waiting -= 1;
                    }
                }
                None => {}
            }
            self.slots.pop_front();
            self.first_token += 1;
        }
        expired
    }

    /// Everything still waiting, oldest first (at shutdown).
    pub fn drain(&mut self) -> Vec<T> {
        self.waiting = 0;
        self.first_token += self.slots.len() as u64;
        self.slots.drain(..).flatten().map(|(_, t)| t).collect()
    }

    /// Publishes waiting for their ack.
    pub fn len(&self) -> usize {
        self.waiting
    }

    /// Tokens from the oldest waiting publish to the newest: more than [`AckWindow::len`] when
    /// acks came out of order behind an older publish still waiting.
    pub fn span(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    fn pop_settled(&mut self) {
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.first_token += 1;
        }
    }
}

/// The token of an ack's subject `{inbox}.{token}`.
pub(crate) fn token_of(inbox: &str, subject: &str) -> Option<u64> {
    subject.strip_prefix(inbox)?.strip_prefix('.')?.parse().ok()
}

/// What JetStream answered to one publish.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Stored; `duplicate` when the stream already had this `Nats-Msg-Id` (dropped as a copy).
    Stored { duplicate: bool },
    /// No stream listens on the subject (the 503 "no responders" status).
    NoStream,
    /// JetStream refused it (the error as it said it), or the reply was unreadable.
    Refused(String),
}

#[derive(Deserialize)]
struct PubAckReply {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// Read an ack: `no_responders` is the 503 status the server sends when nothing took the publish.
pub(crate) fn parse_ack(no_responders: bool, payload: &[u8]) -> AckOutcome {
    if no_responders {
        return AckOutcome::NoStream;
    }
    match serde_json::from_slice::<PubAckReply>(payload) {
        Ok(PubAckReply { error: Some(e), .. }) => AckOutcome::Refused(format!(
            "JetStream error {} ({}): {}",
            e.code, e.err_code, e.description
        )),
        Ok(PubAckReply {
            seq: Some(_),
            duplicate,
            ..
        }) => AckOutcome::Stored { duplicate },
        Ok(_) => AckOutcome::Refused(format!(
            "ack without a sequence: {}",
            String::from_utf8_lossy(payload)
        )),
        Err(e) => AckOutcome::Refused(format!("unreadable ack ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_in_any_order_free_the_window_and_unknown_tokens_are_ignored() {
        let t0 = Instant::now();
        let mut w = AckWindow::default();
        assert_eq!(w.next_token(), 0);
        let tokens: Vec<u64> = (0..4).map(|i| w.insert(i, t0)).collect();
        assert_eq!(tokens, vec![0, 1, 2, 3]);
        assert_eq!(w.next_token(), 4);
        assert_eq!(w.remove(2), Some(2));
        assert_eq!(
            (w.len(), w.span()),
            (3, 4),
            "an ack behind the oldest keeps its slot"
        );
        assert_eq!(w.remove(2), None, "an ack counts once");
        assert_eq!(w.remove(0), Some(0));
        assert_eq!(w.remove(99), None);
        assert_eq!(w.len(), 2);
        assert_eq!(w.insert(4, t0), 4, "tokens never repeat");
        assert_eq!(w.remove(1), Some(1));
        assert_eq!(w.remove(3), Some(3));
        assert_eq!(w.remove(4), Some(4));
        assert!(w.is_empty());
        assert!(w.slots.is_empty(), "settled slots are released");
    }

    #[test]
    fn the_oldest_time_out_first_and_their_late_acks_are_ignored() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut w = AckWindow::default();
        let a = w.insert('a', t0);
        let b = w.insert('b', t0 + Duration::from_secs(1));
        let c = w.insert('c', t0 + Duration::from_secs(2));
        assert_eq!(w.remove(b), Some('b'));
        assert!(
            w.take_expired(t0 + Duration::from_millis(4_999), timeout)
                .is_empty()
        );
        assert_eq!(
            w.take_expired(t0 + Duration::from_secs(6), timeout),
            vec!['a']
        );
        assert_eq!(w.remove(a), None, "late ack of a publish already retried");
        assert_eq!(w.len(), 1);
        assert_eq!(
            w.take_expired(t0 + Duration::from_secs(60), timeout),
            vec!['c']
        );
        assert_eq!(w.remove(c), None);
        assert!(w.is_empty());
        assert_eq!(w.insert('d', t0), 3);
        assert_eq!(w.drain(), vec!['d']);
        assert!(w.is_empty());
    }

    #[test]
    fn tokens_come_back_from_reply_subjects_only_under_the_inbox() {
        assert_eq!(token_of("_INBOX.abc", "_INBOX.abc.42"), Some(42));
        assert_eq!(token_of("_INBOX.abc", "_INBOX.abcd.42"), None);
        assert_eq!(token_of("_INBOX.abc", "_INBOX.abc.x"), None);
        assert_eq!(token_of("_INBOX.abc", "_INBOX.abc"), None);
    }

    #[test]
    fn acks_are_read_as_jetstream_writes_them() {
        assert_eq!(
            parse_ack(false, br#"{"stream":"MARKET_DATA","seq":7}"#),
            AckOutcome::Stored { duplicate: false }
        );
        assert_eq!(
            parse_ack(
                false,
                br#"{"stream":"MARKET_DATA","seq":7,"duplicate":true}"#
            ),
            AckOutcome::Stored { duplicate: true }
        );
        assert_eq!(
            parse_ack(false, br#"{"stream":"X","domain":"hub","seq":1}"#),
            AckOutcome::Stored { duplicate: false },
            "unknown fields are fine"
        );
        assert_eq!(parse_ack(true, b""), AckOutcome::NoStream);
        match parse_ack(
            false,
            br#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"X","seq":0}"#,
        ) {
            AckOutcome::Refused(e) => assert!(e.contains("maximum messages exceeded"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_ack(false, b"{"), AckOutcome::Refused(_)));
        assert!(matches!(parse_ack(false, b"{}"), AckOutcome::Refused(_)));
    }
}
