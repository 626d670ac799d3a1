//! Fan-out from the connectors' channel to every configured output (NATS, Parquet), with fencing.
//!
//! Each output owns a bounded channel and drains it in its own task. The fan-out awaits channel space
//! (backpressure, never a silent drop); an output that must shed load counts it itself (NATS buffer).
//! While this instance is fenced (`may_publish == false`: it does not hold its shard lock) events are
//! dropped here and counted, so a deposed collector (or a warm standby) never publishes; the outputs
//! check the lock again before writing what they buffered.
//!
//! Polled and state-like data (open interest, long/short ratios, funding, DVOL, liquidations, the
//! latest book) fenced while waiting for the lock is kept, the newest [`FencedHold::PER_STREAM`] per
//! stream, and published once the lock is held: a poller reports each row once, so a row fenced at
//! start (the first poll usually beats the Lease) would otherwise never be published. Duplicates of
//! what an earlier holder published collapse by message id. Trades are not kept (their loss is
//! covered by the handover gap).
//!
//! Handover: after this instance takes the lock over from an earlier holder, the first event of each
//! instrument and data type is preceded by a `handover` gap from the previous holder's last Lease
//! renewal (the last event the shard is known to have published is no earlier) to that event.

use crate::internal_events::{
    InternalEvent,
    output::{EventFenced, EventsIn, HandoverGap},
};
use crate::lease::{Fence, Takeover};
use crate::ledger::StreamTracker;
use marketprism_model::{DataType, Event, Exchange, Gap, GapCause, MarketType, Payload, Symbol};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use tokio::sync::{mpsc, watch};

/// One output's end of the fan-out.
pub struct OutputPort {
    pub name: &'static str,
    pub tx: mpsc::Sender<Event>,
}

/// What the fan-out saw, per data type.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FanOutStats {
    pub events_in: BTreeMap<String, u64>,
    pub gaps: u64,
    pub fenced: u64,
}

/// One stream of the fan-out: data type (of the data, for a gap: the type it is about), instrument.
type StreamId = (DataType, Exchange, MarketType, Symbol);

fn stream_id(data_type: DataType, event: &Event) -> StreamId {
    (
        data_type,
        event.exchange,
        event.market_type,
        event.symbol.clone(),
    )
}

/// Events fenced while the lock was not held that are still worth publishing once it is. Pure.
#[derive(Debug, Default)]
pub(crate) struct FencedHold {
    streams: HashMap<StreamId, VecDeque<Event>>,
}

impl FencedHold {
    /// Newest events kept per stream (a poll's history is 30 rows; a book needs only its latest).
    pub const PER_STREAM: usize = 64;

    /// Keep a fenced event if its type is worth publishing late; true when kept.
    pub fn keep(&mut self, event: Event) -> bool {
        let keep = match event.data_type() {
            DataType::Trades | DataType::Gaps => return false,
            DataType::Orderbooks => 1,
            _ => Self::PER_STREAM,
        };
        let held = (self.streams)
            .entry(stream_id(event.data_type(), &event))
            .or_default();
        if held.len() == keep {
            held.pop_front();
        }
        held.push_back(event);
        true
    }

    /// Everything kept, oldest first within each stream.
    pub fn take(&mut self) -> Vec<Event> {
        self.streams.drain().flat_map(|(_, v)| v).collect()
    }
}

/// The `handover` gaps of one takeover, one per instrument and data type as their events come. Pure.
#[derive(Debug, Default)]
pub(crate) struct HandoverGaps {
    takeover: Option<Takeover>,
    done: HashSet<StreamId>,
}

impl HandoverGaps {
    /// This instance took the lock over (`None`: acquired a Lease nobody renewed before).
    pub fn start(&mut self, takeover: Option<Takeover>) {
        self.takeover = takeover;
        self.done.clear();
    }

    /// The gap to publish before `event`, if it is the first of its instrument and type since the takeover.
    pub fn gap_before(&mut self, event: &Event) -> Option<Event> {
        let takeover = self.takeover.as_ref()?;
        let data_type = match &event.payload {
            // A gap is about its own data type: that one's hole is then already marked.
            Payload::Gap(g) => g.data_type,
            _ => event.data_type(),
        };
        if !self.done.insert(stream_id(data_type, event))
            || matches!(event.payload, Payload::Gap(_))
        {
            return None;
        }
        let start_ms = takeover.previous_renew_ms;
        Some(Event {
            exchange: event.exchange,
            market_type: event.market_type,
            symbol: event.symbol.clone(),
            ts_ms: event.ts_ms.max(start_ms),
            recv_ts_ms: event.recv_ts_ms,
            payload: Payload::Gap(Gap {
                data_type,
                start_ms,
                end_ms: event.ts_ms.max(start_ms),
                cause: GapCause::Handover,
                detail: format!(
                    "shard lock taken over from {}; its last renewal is the start",
                    takeover
                        .previous_holder
                        .as_deref()
                        .unwrap_or("a released holder")
                ),
            }),
        })
    }
}

/// Forward every event from `rx` to every port until `rx` closes (all producers gone).
/// Returning drops the ports' senders, which lets each output drain and flush.
/// Every event is counted per stream in `streams` first (the run's account and readiness), which is
/// handed back with the stats.
pub async fn fan_out(
    rx: mpsc::Receiver<Event>,
    ports: Vec<OutputPort>,
    may_publish: watch::Receiver<bool>,
    streams: StreamTracker,
) -> (FanOutStats, StreamTracker) {
    let (_none, takeovers) = watch::channel(None);
    fan_out_fenced(
        rx,
        ports,
        Fence::from_verdict(may_publish),
        takeovers,
        streams,
    )
    .await
}

/// [`fan_out`] that also records each takeover in `takeovers` as `handover` gaps.
pub async fn fan_out_fenced(
    mut rx: mpsc::Receiver<Event>,
    ports: Vec<OutputPort>,
    fence: Fence,
    takeovers: watch::Receiver<Option<Takeover>>,
    mut streams: StreamTracker,
) -> (FanOutStats, StreamTracker) {
    let mut stats = FanOutStats::default();
    let mut live: Vec<OutputPort> = ports;
    let mut handover = HandoverGaps::default();
    let mut active = false;
    let mut held = FencedHold::default();
    let mut counters = EventsIn::default();
    while let Some(event) = rx.recv().await {
        streams.record(&event);
        let may = fence.may_publish();
        if may && !active {
            handover.start(takeovers.borrow().clone());
            for late in held.take() {
                publish(&mut live, &mut stats, &mut handover, &mut counters, late).await;
            }
        }
        active = may;
        if !may {
            stats.fenced += 1;
            EventFenced {
                data_type: event.data_type(),
            }
            .emit();
            held.keep(event);
            continue;
        }
        publish(&mut live, &mut stats, &mut handover, &mut counters, event).await;
    }
    (stats, streams)
}

/// Forward one event the lock allows, after its handover gap if it is the first of its stream.
async fn publish(
    live: &mut Vec<OutputPort>,
    stats: &mut FanOutStats,
    handover: &mut HandoverGaps,
    counters: &mut EventsIn,
    event: Event,
) {
    let data_type = event.data_type();
    if let Some(gap) = handover.gap_before(&event) {
        HandoverGap {
            exchange: gap.exchange,
        }
        .emit();
        stats.gaps += 1;
        forward(live, gap).await;
    }
    counters.received(event.exchange, data_type).emit();
    match stats.events_in.get_mut(data_type.as_str()) {
        Some(n) => *n += 1,
        None => {
            stats.events_in.insert(data_type.to_string(), 1);
        }
    }
    if data_type == DataType::Gaps {
        stats.gaps += 1;
    }
    forward(live, event).await;
}

/// Send `event` to every live port; an output whose task ended is dropped from the set.
async fn forward(live: &mut Vec<OutputPort>, event: Event) {
    let mut event = Some(event);
    let mut i = 0;
    while i < live.len() {
        // Cloned for all but the last port.
        let copy = if i + 1 == live.len() {
            event.take()
        } else {
            event.clone()
        };
        let Some(copy) = copy else { return };
        if live[i].tx.send(copy).await.is_err() {
            tracing::error!(output = live[i].name, "output stopped; no longer fed");
            live.remove(i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::*;

    fn trade(i: u64) -> Event {
        Event {
            exchange: Exchange::OkxSpot,
            market_type: MarketType::Spot,
            symbol: Symbol::new("BTC-USDT").unwrap(),
            ts_ms: 1,
            recv_ts_ms: 2,
            payload: Payload::Trade(Trade {
                trade_id: i.to_string(),
                price: Decimal::ONE,
                quantity: Decimal::ONE,
                raw_quantity: Decimal::ONE,
                quantity_unit: marketprism_model::QuantityUnit::Base,
                side: Side::Sell,
            }),
        }
    }

    fn takeover(renew_ms: i64) -> Takeover {
        Takeover {
            previous_holder: Some("pod-a".into()),
            previous_renew_ms: renew_ms,
        }
    }

    #[test]
    fn a_takeover_is_one_handover_gap_per_instrument_and_type_from_the_last_renewal() {
        let mut h = HandoverGaps::default();
        assert_eq!(h.gap_before(&trade(1)), None, "no takeover, no gap");
        h.start(Some(takeover(-500)));
        let first = h
            .gap_before(&trade(1))
            .expect("first trade after the takeover");
        let Payload::Gap(g) = &first.payload else {
            panic!("not a gap: {first:?}")
        };
        assert_eq!(
            (g.data_type, g.start_ms, g.end_ms, g.cause),
            (DataType::Trades, -500, 1, GapCause::Handover)
        );
        assert_eq!(first.subject(), "gap.okx_spot.spot.BTC-USDT");
        assert!(g.detail.contains("pod-a"), "{}", g.detail);
        assert_eq!(
            h.gap_before(&trade(2)),
            None,
            "once per instrument and type"
        );
        let mut eth = trade(3);
        eth.symbol = Symbol::new("ETH-USDT").unwrap();
        assert!(
            h.gap_before(&eth).is_some(),
            "another instrument has its own"
        );
        h.start(None);
        assert_eq!(
            h.gap_before(&trade(4)),
            None,
            "a Lease nobody renewed: a new shard"
        );
        h.start(Some(takeover(10)));
        assert!(h.gap_before(&trade(5)).is_some(), "every takeover again");
    }

    #[tokio::test]
    async fn after_a_takeover_the_first_event_of_an_instrument_follows_its_handover_gap() {
        let (tx, rx) = mpsc::channel(8);
        let (out_tx, mut out_rx) = mpsc::channel(100);
        let (fence_tx, fence_rx) = watch::channel(false);
        let (takeover_tx, takeover_rx) = watch::channel(None);
        let ports = vec![OutputPort {
            name: "a",
            tx: out_tx,
        }];
        let health = marketprism_telemetry::Health::new();
        let streams = StreamTracker::new(crate::ledger::StreamLedger::default(), &health);
        let task = tokio::spawn(fan_out_fenced(
            rx,
            ports,
            Fence::from_verdict(fence_rx),
            takeover_rx,
            streams,
        ));
        tx.send(trade(1)).await.unwrap();
        // The lease task reports the takeover before it lets the instance publish.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        takeover_tx.send_replace(Some(takeover(-7)));
        fence_tx.send_replace(true);
        tx.send(trade(2)).await.unwrap();
        tx.send(trade(3)).await.unwrap();
        drop(tx);
        let (stats, _) = task.await.unwrap();
        let gap = out_rx.recv().await.unwrap();
        assert!(
            matches!(&gap.payload, Payload::Gap(g) if g.cause == GapCause::Handover && g.start_ms == -7),
            "{gap:?}"
        );
        assert_eq!(out_rx.recv().await.unwrap(), trade(2));
        assert_eq!(out_rx.recv().await.unwrap(), trade(3));
        assert!(out_rx.recv().await.is_none());
        assert_eq!(
            (stats.fenced, stats.gaps),
            (1, 1),
            "the standby's event was fenced"
        );
    }

    #[test]
    fn the_hold_keeps_state_like_data_newest_per_stream_and_never_trades() {
        let events = synthetic::synthetic_events(3, 2_000);
        let mut hold = FencedHold::default();
        let lsr: Vec<Event> = (events.iter())
            .filter(|e| e.data_type() == DataType::LsrAllAccounts)
            .cloned()
            .collect();
        let symbol = lsr[0].symbol.clone();
        let one_stream: Vec<Event> = (lsr.iter())
            .filter(|e| e.symbol == symbol && e.exchange == lsr[0].exchange)
            .cloned()
            .collect();
        for e in &one_stream {
            assert!(hold.keep(e.clone()));
        }
        assert!(
            !hold.keep(trade(1)),
            "trades are covered by the handover gap"
        );
        let book = (events.iter())
            .find(|e| e.data_type() == DataType::Orderbooks)
            .unwrap();
        hold.keep(book.clone());
        hold.keep(book.clone());
        let kept = hold.take();
        let want = one_stream.len().min(FencedHold::PER_STREAM);
        assert_eq!(
            kept.len(),
            want + 1,
            "the newest of the LSR stream and one book"
        );
        let lsr_kept: Vec<&Event> = (kept.iter())
            .filter(|e| e.data_type() == DataType::LsrAllAccounts)
            .collect();
        assert_eq!(
            lsr_kept.last(),
            one_stream.last().as_ref(),
            "newest kept, in order"
        );
        assert!(hold.take().is_empty());
    }

    #[tokio::test]
    async fn state_like_data_fenced_before_the_lock_is_published_once_it_is_held() {
        let (tx, rx) = mpsc::channel(8);
        let (out_tx, mut out_rx) = mpsc::channel(100);
        let (fence_tx, fence_rx) = watch::channel(false);
        let ports = vec![OutputPort {
            name: "a",
            tx: out_tx,
        }];
        let health = marketprism_telemetry::Health::new();
        let streams = StreamTracker::new(crate::ledger::StreamLedger::default(), &health);
        let task = tokio::spawn(fan_out(rx, ports, fence_rx, streams));
        let lsr = (synthetic::synthetic_events(5, 2_000).into_iter())
            .find(|e| e.data_type() == DataType::LsrAllAccounts)
            .unwrap();
        // The first poll beats the Lease: fenced, and the poller never reports that row again.
        tx.send(lsr.clone()).await.unwrap();
        tx.send(trade(1)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        fence_tx.send_replace(true);
        tx.send(trade(2)).await.unwrap();
        drop(tx);
        let (stats, _) = task.await.unwrap();
        assert_eq!(out_rx.recv().await.unwrap(), lsr, "published once held");
        assert_eq!(out_rx.recv().await.unwrap(), trade(2));
        assert!(
            out_rx.recv().await.is_none(),
            "the fenced trade stays dropped"
        );
        assert_eq!(stats.fenced, 2);
        assert_eq!(stats.events_in["lsr_all_accounts"], 1);
    }

    #[tokio::test]
    async fn every_output_gets_every_event_and_fencing_drops() {
        let (tx, rx) = mpsc::channel(8);
        let (a_tx, mut a_rx) = mpsc::channel(100);
        let (b_tx, mut b_rx) = mpsc::channel(100);
        let (fence_tx, fence_rx) = watch::channel(true);
        let ports = vec![
            OutputPort {
                name: "a",
                tx: a_tx,
            },
            OutputPort {
                name: "b",
                tx: b_tx,
            },
        ];
        let health = marketprism_telemetry::Health::new();
        let streams = StreamTracker::new(crate::ledger::StreamLedger::default(), &health);
        let task = tokio::spawn(fan_out(rx, ports, fence_rx, streams));
        for i in 0..5 {
            tx.send(trade(i)).await.unwrap();
        }
        // Wait until the five are through before fencing, so the order is deterministic.
        for i in 0..5 {
            assert_eq!(a_rx.recv().await.unwrap(), trade(i));
            assert_eq!(b_rx.recv().await.unwrap(), trade(i));
        }
        fence_tx.send(false).unwrap();
        tx.send(trade(99)).await.unwrap();
        drop(tx);
        let (stats, streams) = task.await.unwrap();
        assert_eq!(stats.events_in["trades"], 5);
        let report = streams.ledger.report();
        assert_eq!(report.len(), 1);
        assert_eq!(
            report[0].account.events, 6,
            "counted per stream before fencing"
        );
        assert_eq!(stats.fenced, 1);
        assert!(
            a_rx.recv().await.is_none(),
            "closed after input closed, fenced event not forwarded"
        );
        assert!(b_rx.recv().await.is_none());
    }
}
