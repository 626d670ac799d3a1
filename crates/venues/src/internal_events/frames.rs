//! Frames received from the venues: `marketprism_exchange_frames_received_total{exchange,channel}`,
//! one per WebSocket data frame (text or binary; pings, pongs and close frames are not counted) and
//! one per REST poll response body. `channel` is the data type the frame carried (`trades`,
//! `orderbooks`, `funding_rates`, …), `control` for acks, errors, pongs and heartbeats sent as data
//! frames, and `unattributed` for frames that did not parse or carried nothing. Label cardinality is
//! bounded: venues × (data types + 2), never a symbol. The collector's frames per second are the
//! rate of this counter; `marketprism-collector bench collector` divides its CPU by it.

use super::InternalEvent;
use crate::parse::Parsed;
use marketprism_model::{DataType, Exchange};
use metrics::Counter;

/// `channel` of a frame that carried acks, errors, pongs or heartbeats.
pub const CONTROL: &str = "control";
/// `channel` of a frame that did not parse or carried no event.
pub const UNATTRIBUTED: &str = "unattributed";

/// The channel label of a parsed frame (`None`: it did not parse).
pub fn channel_of(parsed: Option<&Parsed>) -> &'static str {
    match parsed {
        Some(Parsed::Control(_)) => CONTROL,
        Some(Parsed::Event(e)) => e.data_type().as_str(),
        Some(Parsed::Events(v) | Parsed::Partial(v, _)) => {
            v.first().map_or(UNATTRIBUTED, |e| e.data_type().as_str())
        }
        Some(Parsed::BookUpdate(..) | Parsed::BookSnapshot(..)) => DataType::Orderbooks.as_str(),
        None => UNATTRIBUTED,
    }
}

/// The frame counters of one connection or poller, registered on a channel's first frame, so a
/// frame costs no label lookup (a few string compares over the handful of channels seen).
pub struct FrameMeter {
    exchange: Exchange,
    handles: Vec<(&'static str, Counter)>,
}

impl FrameMeter {
    pub fn new(exchange: Exchange) -> FrameMeter {
        FrameMeter {
            exchange,
            handles: Vec::new(),
        }
    }

    /// Count one frame of `channel` (see [`channel_of`]).
    pub fn frame(&mut self, channel: &'static str) {
        let i = match self.handles.iter().position(|(c, _)| *c == channel) {
            Some(i) => i,
            None => {
                let counter = metrics::counter!(
                    "marketprism_exchange_frames_received_total",
                    "exchange" => self.exchange.as_str(),
                    "channel" => channel
                );
                self.handles.push((channel, counter));
                self.handles.len() - 1
            }
        };
        FrameReceived {
            exchange: self.exchange,
            channel,
            counter: &self.handles[i].1,
        }
        .emit();
    }
}

/// One frame arrived from a venue (see the module's documentation): counted, traced.
struct FrameReceived<'a> {
    exchange: Exchange,
    channel: &'static str,
    counter: &'a Counter,
}

impl InternalEvent for FrameReceived<'_> {
    fn emit(self) {
        tracing::trace!(exchange = %self.exchange, channel = self.channel, "frame received");
        self.counter.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Control;

    #[test]
    fn channels_are_data_types_control_or_unattributed() {
        assert_eq!(channel_of(None), UNATTRIBUTED);
        assert_eq!(channel_of(Some(&Parsed::Control(Control::Pong))), CONTROL);
        assert_eq!(channel_of(Some(&Parsed::Events(Vec::new()))), UNATTRIBUTED);
    }

    #[test]
    fn a_meter_counts_each_channel_under_its_own_labels() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let mut meter = FrameMeter::new(Exchange::OkxSpot);
            meter.frame("trades");
            meter.frame("trades");
            meter.frame(CONTROL);
        });
        let mut lines: Vec<String> = handle
            .render()
            .lines()
            .filter(|l| l.starts_with("marketprism_exchange_frames_received_total{"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            vec![
                r#"marketprism_exchange_frames_received_total{exchange="okx_spot",channel="control"} 1"#,
                r#"marketprism_exchange_frames_received_total{exchange="okx_spot",channel="trades"} 2"#,
            ]
        );
    }
}
