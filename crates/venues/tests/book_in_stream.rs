//! Venues whose book snapshot comes in the stream, over real sockets with recorded frames:
//! OKX legacy `books` (every crc32 verified, no resync) and Deribit (a change_id gap → gap event and
//! an unsubscribe/subscribe pair that asks for a fresh snapshot).

mod common;

use common::fixture_lines;
use futures::{SinkExt, StreamExt};
use marketprism_model::{DataType, Event, GapCause, Payload};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

type Server = WebSocketStream<tokio::net::TcpStream>;

async fn one_connection<F, Fut>(handler: F) -> String
where
    F: FnOnce(Server) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        handler(tokio_tungstenite::accept_async(tcp).await.unwrap()).await;
    });
    format!("ws://{addr}")
}

async fn text(ws: &mut Server) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

fn run(yaml: &str) -> (mpsc::Receiver<Event>, CancellationToken) {
    common::run_first_connection(yaml)
}

async fn next(rx: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("event in time")
        .unwrap()
}

#[tokio::test]
async fn okx_legacy_ws_books_verify_every_checksum_without_resync() {
    let frames = fixture_lines("okx/books/bmoscon-cryptofeed__BTC-USDT_books.jsonl");
    let last: serde_json::Value = serde_json::from_str(frames.last().unwrap()).unwrap();
    let last_ts: i64 = last["data"][0]["ts"].as_str().unwrap().parse().unwrap();
    let url = one_connection(move |mut ws| async move {
        let sub = text(&mut ws).await;
        assert!(sub.contains(r#"{"channel":"books","instId":"BTC-USDT"}"#), "{sub}");
        ws.send(Message::text(r#"{"id":"0","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"c"}"#)).await.unwrap();
        for f in frames {
            ws.send(Message::text(f)).await.unwrap();
        }
        futures::future::pending::<()>().await;
    })
    .await;
    let yaml = format!(
        "exchanges:\n  - exchange: okx_spot\n    symbols: [BTC-USDT]\n    data_types: [orderbooks]\n    orderbook: {{okx_snapshot: ws, verify_checksum: true, snapshot_interval_ms: 10}}\n    endpoints: {{ws_url: \"{url}\"}}\n"
    );
    let (mut rx, shutdown) = run(&yaml);
    let mut books = 0;
    loop {
        let e = next(&mut rx).await;
        let Payload::Orderbook(b) = &e.payload else {
            panic!("no gaps or other events expected: {e:?}")
        };
        assert!(b.bids[0].0 < b.asks[0].0);
        books += 1;
        if e.ts_ms >= last_ts {
            break;
        }
    }
    assert!(books > 50, "{books} snapshots published");
    shutdown.cancel();
}

#[tokio::test]
async fn deribit_change_id_gap_is_recorded_and_resubscribed() {
    let frames = fixture_lines(
        "deribit/book/crypto-msg-parser__BTC-PERPETUAL_100ms_snapshot_then_change.jsonl",
    );
    let (resub_tx, mut resub_rx) = mpsc::channel::<String>(4);
    let url = one_connection(move |mut ws| async move {
        let _heartbeat = text(&mut ws).await;
        ws.send(Message::text(r#"{"jsonrpc":"2.0","id":1,"result":"ok"}"#))
            .await
            .unwrap();
        let sub = text(&mut ws).await;
        assert!(sub.contains("book.BTC-PERPETUAL.100ms"), "{sub}");
        ws.send(Message::text(
            r#"{"jsonrpc":"2.0","id":2,"result":["book.BTC-PERPETUAL.100ms"]}"#,
        ))
        .await
        .unwrap();
        for f in frames {
            ws.send(Message::text(f)).await.unwrap();
        }
        resub_tx.send(text(&mut ws).await).await.unwrap();
        resub_tx.send(text(&mut ws).await).await.unwrap();
        futures::future::pending::<()>().await;
    })
    .await;
    let yaml = format!(
        "exchanges:\n  - exchange: deribit_derivatives\n    symbols: [BTC-USD]\n    data_types: [orderbooks]\n    endpoints: {{ws_url: \"{url}\"}}\n"
    );
    let (mut rx, shutdown) = run(&yaml);
    let first = next(&mut rx).await;
    assert!(
        matches!(&first.payload, Payload::Orderbook(b) if b.last_update_id == 31479596557),
        "{first:?}"
    );
    let gap = next(&mut rx).await;
    let Payload::Gap(g) = &gap.payload else {
        panic!("{gap:?}")
    };
    assert_eq!(
        (g.data_type, g.cause, gap.symbol.as_str()),
        (DataType::Orderbooks, GapCause::SequenceGap, "BTC-USD")
    );
    assert_eq!(
        (g.start_ms, g.end_ms),
        (1622627433440, 1622627435737),
        "from the last good book to the gap"
    );
    let unsub = resub_rx.recv().await.unwrap();
    let sub = resub_rx.recv().await.unwrap();
    assert!(
        unsub.contains("public/unsubscribe")
            && sub.contains("public/subscribe")
            && sub.contains("book.BTC-PERPETUAL.100ms"),
        "{unsub} / {sub}"
    );
    shutdown.cancel();
}
