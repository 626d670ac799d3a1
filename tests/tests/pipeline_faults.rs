//! Bad input and an unreachable NATS: an undecodable message is dead-lettered without blocking the
//! rest; a publisher that starts while NATS is down buffers to its bound, counts what it drops, and
//! records the loss as overflow gaps once NATS is reachable.
#![forbid(unsafe_code)]

use async_nats::jetstream::consumer;
use futures::StreamExt;
use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Event, GapCause, Payload};
use marketprism_pipeline::publish::run_nats_output;
use marketprism_pipeline::sink::run_sink;
use marketprism_telemetry::Health;
use marketprism_tests::pipeline::{Run, eventually, expected_counts};
use marketprism_tests::servers::{clickhouse_url, nats_url};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_dead_lettered_and_do_not_block_the_rest() {
    let test = "undecodable_messages_are_dead_lettered_and_do_not_block_the_rest";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let run = Run::new("pl_dead", &nats, &ch, 200).await;
    let health = Health::new();
    let stop = CancellationToken::new();
    let sink = tokio::spawn(run_sink(run.sink.clone(), health.clone(), stop.clone()));
    eventually(
        "sink ready (streams exist)",
        Duration::from_secs(30),
        || health.is_ready(),
    )
    .await;

    let events = synthetic_events(31, 900);
    let trade_subject = format!("{}.trade.okx_spot.spot.BTC-USDT", run.name);
    // Not JSON, and a valid funding-rate event on a trade subject: both first in the stream.
    run.js
        .publish(trade_subject.clone(), "{not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let funding = events
        .iter()
        .find(|e| e.data_type() == DataType::FundingRates)
        .unwrap();
    let wrong = serde_json::to_vec(funding).unwrap();
    run.js
        .publish(trade_subject.clone(), wrong.clone().into())
        .await
        .unwrap()
        .await
        .unwrap();

    // A publish batch on the trade subject: two good trades around an element that is no event
    // and the misplaced funding rate; each bad element is dead-lettered alone, the trades land.
    let good: Vec<Event> = (1..=2)
        .map(|i| {
            let mut trade = events
                .iter()
                .find(|e| e.data_type() == DataType::Trades)
                .unwrap()
                .clone();
            trade.exchange = marketprism_model::Exchange::OkxSpot;
            trade.market_type = marketprism_model::MarketType::Spot;
            trade.symbol = marketprism_model::Symbol::new("BTC-USDT").unwrap();
            let Payload::Trade(t) = &mut trade.payload else {
                unreachable!()
            };
            t.trade_id = format!("batch-{i}");
            trade
        })
        .collect();
    let parts = [
        serde_json::to_vec(&good[0]).unwrap(),
        b"{\"x\":1}".to_vec(),
        wrong.clone(),
        serde_json::to_vec(&good[1]).unwrap(),
    ];
    let batch = marketprism_model::wire::batch_payload(parts.iter().map(Vec::as_slice));
    run.js
        .publish(trade_subject.clone(), batch.into())
        .await
        .unwrap()
        .await
        .unwrap();

    let stats = run.publish(events.clone()).await;
    assert_eq!(stats.acked, 900);
    let mut landed = events.clone();
    landed.extend(good);
    run.wait_for_counts(&expected_counts(&landed), Duration::from_secs(60))
        .await;

    let mut dead = run
        .js
        .get_stream(&run.sink.dead_letter_stream.name)
        .await
        .unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 4);
    let dl_subject = format!("{}.deadletter.trade.okx_spot.spot.BTC-USDT", run.name);
    let last = dead
        .get_last_raw_message_by_subject(&dl_subject)
        .await
        .unwrap();
    let headers = last.headers;
    assert_eq!(
        headers.get("Marketprism-Error-Kind").unwrap().as_str(),
        "subject_mismatch"
    );
    assert_eq!(
        headers
            .get("Marketprism-Original-Subject")
            .unwrap()
            .as_str(),
        trade_subject
    );
    assert_eq!(
        last.payload.as_ref(),
        serde_json::to_vec(funding).unwrap().as_slice()
    );

    // Everything, the bad ones included, is acked: nothing waits for redelivery.
    run.wait_consumer_drained(&run.nats.market_data_stream.name, Duration::from_secs(10))
        .await;

    stop.cancel();
    sink.await.unwrap().unwrap();
    run.cleanup().await;
}

/// Forward every connection accepted on `listener` to `target` (stands in for a NATS server coming up).
async fn proxy(listener: TcpListener, target: String) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_started_without_nats_buffers_to_its_bound_and_records_drops_as_gaps() {
    let test = "publisher_started_without_nats_buffers_to_its_bound_and_records_drops_as_gaps";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let run = Run::new("pl_down", &nats, &ch, 200).await;
    // A port where nothing listens yet.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = run.nats.clone();
    config.url = format!("nats://127.0.0.1:{port}");
    config.buffer_capacity = 100;

    let health = Health::new();
    let (tx, rx) = mpsc::channel(1_000);
    let publisher = tokio::spawn(run_nats_output(
        config,
        rx,
        health.clone(),
        CancellationToken::new(),
    ));
    let events = synthetic_events(41, 300);
    for e in &events {
        tx.send(e.clone()).await.unwrap();
    }
    eventually(
        "publisher took all 300 events",
        Duration::from_secs(10),
        || tx.capacity() == 1_000,
    )
    .await;
    eventually(
        "not ready while NATS is unreachable",
        Duration::from_secs(10),
        || {
            health
                .snapshot()
                .get("nats")
                .is_some_and(|s| !s.ready && s.reason.contains("unreachable"))
        },
    )
    .await;

    // NATS "comes up" on that port.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let target = nats.trim_start_matches("nats://").to_owned();
    let forward = tokio::spawn(proxy(listener, target));
    eventually(
        "ready once NATS is reachable",
        Duration::from_secs(15),
        || health.is_ready(),
    )
    .await;
    drop(tx);
    let stats = tokio::time::timeout(Duration::from_secs(30), publisher)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    forward.abort();

    assert_eq!((stats.received, stats.dropped), (300, 200), "{stats:?}");
    assert_eq!(stats.acked, 100 + stats.overflow_gaps, "{stats:?}");

    // The overflow gaps in the stream account for every dropped event, per instrument and type.
    let stream = run
        .js
        .get_stream(&run.nats.market_data_stream.name)
        .await
        .unwrap();
    let reader = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: format!("{}.gap.>", run.name),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = reader
        .fetch()
        .max_messages(1_000)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut dropped_in_gaps = 0;
    let mut overflow_gaps = 0;
    let events: Vec<Event> = {
        let mut all = Vec::new();
        while let Some(m) = messages.next().await {
            // One event or a publish batch of several.
            all.extend(marketprism_model::wire::decode(&m.unwrap().payload).unwrap());
        }
        all
    };
    for event in events {
        if let Payload::Gap(g) = &event.payload
            && g.cause == GapCause::Overflow
            && g.detail.starts_with("publisher dropped")
        {
            overflow_gaps += 1;
            dropped_in_gaps += g.detail.split(' ').nth(2).unwrap().parse::<u64>().unwrap();
        }
    }
    assert_eq!(overflow_gaps, stats.overflow_gaps);
    assert_eq!(dropped_in_gaps, 200);
    run.cleanup().await;
}
