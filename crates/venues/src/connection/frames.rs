//! What a parsed frame does ([`Session::on_parsed`], text and binary alike), and binary data frames
//! (MEXC spot's protobuf pushes): parsed by the venue's binary parser and then handled as any parsed
//! frame. A binary frame that does not decode is a bad frame like any other: it
//! is counted, and attributed to its stream when its channel (protobuf field 1) can still be read,
//! else to every stream of the connection that cannot see a loss by itself (see
//! [`Session::after_bad_frame`]). On venues that send text only, every binary frame is such a frame.

use super::session::{Session, SessionEnd, Ws};
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::BadFrame;
use crate::internal_events::frames::channel_of;
use crate::parse::Parsed;
use marketprism_model::DataType;
use marketprism_model::now_ms;
use tokio::time::Instant;

/// How a binary frame is named in logs and counters: its channel when readable, else its size and
/// first bytes in hex.
fn label(bytes: &[u8]) -> String {
    match crate::mexc::parse::channel_of(bytes) {
        Some(channel) => format!("binary {} bytes: {channel}", bytes.len()),
        None => {
            let head: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("binary {} bytes: {head}", bytes.len())
        }
    }
}

impl Session<'_> {
    /// Act on one parsed frame; `text` names it in counters (the frame, or a binary frame's label).
    pub(super) async fn on_parsed(
        &mut self,
        ws: &mut Ws,
        parsed: Parsed,
        text: &str,
        now: Instant,
        recv: i64,
    ) -> Option<SessionEnd> {
        self.frames.frame(channel_of(Some(&parsed)));
        match parsed {
            Parsed::Control(c) => self.on_control(ws, c, now).await,
            Parsed::Event(e) => self.emit_all(vec![e]).await,
            Parsed::Events(v) => self.emit_all(v).await,
            Parsed::Partial(v, errors) => {
                let exchange = self.ctx.plan.venue.exchange();
                for error in &errors {
                    BadFrame {
                        exchange,
                        error,
                        frame: text,
                    }
                    .emit();
                    if let Some(end) = self.after_bad_frame(text, error).await {
                        return Some(end);
                    }
                }
                self.emit_all(v).await
            }
            Parsed::BookUpdate(symbol, update) => {
                if !self.is_book(&symbol) {
                    return self.unattributed("not_subscribed", text);
                }
                if let Some(e) = self.seen(DataType::Orderbooks, &symbol, now).await {
                    return Some(e);
                }
                let mut events = Vec::new();
                let action = self
                    .books
                    .as_mut()
                    .and_then(|b| b.on_update(&symbol, update, recv, &mut events));
                self.after_book(ws, &symbol, events, action).await
            }
            Parsed::BookSnapshot(symbol, snap) => {
                if !self.is_book(&symbol) {
                    return self.unattributed("not_subscribed", text);
                }
                if let Some(e) = self.seen(DataType::Orderbooks, &symbol, now).await {
                    return Some(e);
                }
                self.apply_snapshot(ws, &symbol, snap, false).await
            }
        }
    }

    /// A reply acked `ack`: the oldest unanswered request expecting it is answered.
    pub(super) fn answered(&mut self, ack: &str) {
        let requests = &self.ctx.plan.requests;
        if let Some(pos) = self
            .unanswered
            .iter()
            .position(|&i| requests[i].acks.iter().any(|a| a == ack))
        {
            self.unanswered.remove(pos);
        }
    }

    /// Venues that ack per method (MEXC contracts): one request left unanswered at the subscribe
    /// deadline while the others' acks made the connection live. Its streams end (a `refused` gap
    /// each), as on a venue whose requests name their streams; if data comes anyway, they are
    /// streams again.
    pub(super) async fn refuse_unanswered(&mut self) -> Option<super::session::SessionEnd> {
        let detail = format!(
            "no answer to the subscribe request within {:?}",
            self.ctx.plan.subscribe_timeout
        );
        let left: Vec<usize> = self.unanswered.drain(..).collect();
        for i in left {
            for st in super::attribute::request_streams(&self.ctx.plan, i) {
                if let Some(e) = self.refuse((st.data_type, st.symbol), &detail).await {
                    return Some(e);
                }
            }
        }
        None
    }

    /// A refusal naming no request, on a venue that answers in order: the oldest unanswered request's.
    /// Its ack is released only when no other unanswered request waits for the same one.
    pub(super) fn refused_in_order(&mut self) -> Option<super::attribute::Refusal> {
        let i = self.unanswered.pop_front()?;
        let plan = &self.ctx.plan;
        let ack = plan.requests[i].acks.first().cloned().unwrap_or_default();
        let shared = self
            .unanswered
            .iter()
            .any(|&j| plan.requests[j].acks.contains(&ack));
        Some(super::attribute::Refusal {
            ack: if shared { String::new() } else { ack },
            streams: super::attribute::request_streams(plan, i),
        })
    }

    pub(super) async fn on_binary(
        &mut self,
        ws: &mut Ws,
        bytes: &[u8],
        now: Instant,
    ) -> Option<SessionEnd> {
        let recv = now_ms();
        let name = label(bytes);
        match self.ctx.plan.parse_binary(bytes, recv) {
            Ok(parsed) => self.on_parsed(ws, parsed, &name, now, recv).await,
            Err(error) => {
                self.frames.frame(channel_of(None));
                BadFrame {
                    exchange: self.ctx.plan.venue.exchange(),
                    error: &error,
                    frame: &name,
                }
                .emit();
                // What the attribution reads: the channel, as the JSON field a text frame names it in.
                let attribution = crate::mexc::parse::channel_of(bytes)
                    .map(|c| format!(r#"{{"channel":"{c}"}}"#))
                    .unwrap_or_default();
                self.after_bad_frame(&attribution, &error).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn labels_name_the_channel_or_the_first_bytes() {
        let mut frame = vec![0x0a, 3];
        frame.extend_from_slice(b"abc");
        assert_eq!(label(&frame), "binary 5 bytes: abc");
        assert_eq!(label(&[0xff, 0x00]), "binary 2 bytes: ff00");
    }
}
