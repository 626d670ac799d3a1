//! Fan-out from the connectors' channel to every configured output (NATS, Parquet), with fencing.
//!
//! Each output owns a bounded channel and drains it in its own task. The fan-out awaits channel space
//! (backpressure, never a silent drop); an output that must shed load counts it itself (NATS buffer).
//! While this instance is fenced (`may_publish == false`: it does not hold its shard lock) events are
//! dropped here and counted, so a deposed collector never publishes.

use crate::internal_events::{
    InternalEvent,
    output::{EventFenced, EventReceived},
};
use crate::model::Event;
use std::collections::BTreeMap;
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

/// Forward every event from `rx` to every port until `rx` closes (all producers gone).
/// Returning drops the ports' senders, which lets each output drain and flush.
pub async fn fan_out(
    mut rx: mpsc::Receiver<Event>,
    ports: Vec<OutputPort>,
    may_publish: watch::Receiver<bool>,
) -> FanOutStats {
    let mut stats = FanOutStats::default();
    let mut live: Vec<OutputPort> = ports;
    while let Some(event) = rx.recv().await {
        let data_type = event.data_type();
        if !*may_publish.borrow() {
            stats.fenced += 1;
            EventFenced { data_type }.emit();
            continue;
        }
        EventReceived {
            exchange: event.exchange,
            data_type,
        }
        .emit();
        *stats.events_in.entry(data_type.to_string()).or_default() += 1;
        if data_type == crate::model::DataType::Gaps {
            stats.gaps += 1;
        }
        // Clone for all but the last port; an output whose task ended is dropped from the set.
        let mut i = 0;
        while i < live.len() {
            let is_last = i + 1 == live.len();
            let ev = if is_last { None } else { Some(event.clone()) };
            let sent = match ev {
                Some(e) => live[i].tx.send(e).await,
                None => live[i].tx.send(event.clone()).await,
            };
            if sent.is_err() {
                tracing::error!(output = live[i].name, "output stopped; no longer fed");
                live.remove(i);
            } else {
                i += 1;
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

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
                quantity_unit: crate::model::QuantityUnit::Base,
                side: Side::Sell,
            }),
        }
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
        let task = tokio::spawn(fan_out(rx, ports, fence_rx));
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
        let stats = task.await.unwrap();
        assert_eq!(stats.events_in["trades"], 5);
        assert_eq!(stats.fenced, 1);
        assert!(
            a_rx.recv().await.is_none(),
            "closed after input closed, fenced event not forwarded"
        );
        assert!(b_rx.recv().await.is_none());
    }
}
