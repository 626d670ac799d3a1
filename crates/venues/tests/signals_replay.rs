//! Signals on real frames: a recorded Binance USD-M book (REST snapshot + 185 depth diffs) and its
//! aggTrades (CTKUSDT, 2021-07-22) go through the venue parser, the connection's book sync
//! ([`Books`], reporting top-level changes) and the signals hub, exactly as a connection feeds them;
//! one diff is dropped near the end so the book resyncs. Two replays must give bit-identical rows.

mod common;

use common::{fixture, fixture_lines, recorded_instruments};
use marketprism_config::{OrderBookConfig, SignalsSection, ZSection};
use marketprism_model::{DataType, Event, Exchange, MarketType, Payload, Symbol};
use marketprism_venues::binance;
use marketprism_venues::book::SyncRule;
use marketprism_venues::connection::books::Books;
use marketprism_venues::parse::Parsed;
use marketprism_venues::plan::{BookPlan, Stream};
use marketprism_venues::signals::SignalsHub;

const SYM: &str = "ctkusdt";
/// Index of the depth diff left out: the sync sees a `pu` mismatch there and resyncs.
const DROPPED_DIFF: usize = 160;

/// One recorded frame with the exchange time it is replayed at (`E`).
fn frames() -> Vec<(i64, String)> {
    let mut frames: Vec<(i64, String)> = Vec::new();
    let depth = fixture_lines(&format!(
        "binance_usdm/depthUpdate/bmoscon-cryptofeed__{SYM}_depth100ms.jsonl"
    ));
    let trades = fixture_lines(&format!(
        "binance_usdm/aggTrade/bmoscon-cryptofeed__{SYM}_aggTrade.jsonl"
    ));
    for (i, line) in depth.into_iter().enumerate() {
        if i != DROPPED_DIFF {
            frames.push((event_time(&line), line));
        }
    }
    for line in trades {
        frames.push((event_time(&line), line));
    }
    // Both streams came over one connection: merged by the venue's event time, stable.
    frames.sort_by_key(|(t, _)| *t);
    frames
}

fn event_time(line: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["data"]["E"].as_i64().unwrap()
}

/// Every signal row of one replay, and the gaps the book sync recorded.
fn replay() -> (Vec<Event>, Vec<Event>) {
    let ex = Exchange::BinanceDerivatives;
    let symbol = Symbol::new("CTK-USDT").unwrap();
    // A short z window (warm-up 5 points) so the 38 trades reach CVD z, fusion and its events.
    let section = SignalsSection {
        symbols: vec![symbol.clone()],
        z: ZSection {
            window: Some(20),
            ..ZSection::default()
        },
        ..SignalsSection::default()
    };
    let hub = SignalsHub::new(ex, &section).unwrap();
    let plan = BookPlan {
        rule: SyncRule::BinanceFutures,
        symbols: vec![symbol.clone()],
        config: OrderBookConfig::default(),
    };
    let streams = [Stream {
        data_type: DataType::Orderbooks,
        symbol: symbol.clone(),
        market_type: MarketType::Perpetual,
        max_silence: None,
    }];
    let mut books = Books::new(ex, plan, &streams).with_signals(Some(&hub));
    let snapshot = binance::parse::parse_depth_snapshot(&fixture(&format!(
        "binance_usdm/depth_snapshot/bmoscon-cryptofeed__{SYM}_rest_depth1000.json"
    )))
    .unwrap();
    let instruments = recorded_instruments(ex);
    let (mut rows, mut gaps) = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    books.on_snapshot(&symbol, snapshot, true, 0, &mut out);
    for (recv, line) in frames() {
        match binance::parse::parse_frame(&instruments, ex, &line, recv).unwrap() {
            Parsed::BookUpdate(s, u) => {
                books.on_update(&s, u, recv, &mut out);
            }
            Parsed::Event(e) => out.push(e),
            other => panic!("unexpected {other:?}"),
        }
        // As the connection supervisor does: events first (a trade or a gap feeds the hub), then tops.
        for e in out.drain(..) {
            rows.extend(hub.on_event(&e));
            if e.data_type() == DataType::Gaps {
                gaps.push(e);
            }
        }
        for top in books.take_tops() {
            rows.extend(hub.on_book(&top));
        }
    }
    (rows, gaps)
}

fn count(rows: &[Event], dt: DataType) -> usize {
    rows.iter().filter(|e| e.data_type() == dt).count()
}

#[test]
fn recorded_frames_give_bit_identical_signal_rows_twice() {
    let (a, gaps) = replay();
    let (b, _) = replay();
    let text = |rows: &[Event]| -> Vec<String> {
        rows.iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect()
    };
    assert_eq!(text(&a), text(&b), "the same frames give the same rows");
    // JSON text equality is bit equality for finite floats (shortest round-trip form); check it too.
    for (x, y) in a.iter().zip(&b) {
        if let (Payload::SignalOfi(x), Payload::SignalOfi(y)) = (&x.payload, &y.payload) {
            assert_eq!(x.ofi.to_bits(), y.ofi.to_bits());
            assert_eq!(x.ofi_z.map(f64::to_bits), y.ofi_z.map(f64::to_bits));
        }
    }

    let ofi = count(&a, DataType::SignalOfi);
    let cvd = count(&a, DataType::SignalCvd);
    eprintln!(
        "ofi {ofi}, cvd {cvd}, fusion {}, events {}",
        count(&a, DataType::SignalFusion),
        count(&a, DataType::SignalEvents)
    );
    assert!(ofi > 60, "most diffs change the top 5 levels: {ofi}");
    assert_eq!(cvd, 38, "one CVD row per recorded trade");
    let z = a
        .iter()
        .any(|e| matches!(&e.payload, Payload::SignalOfi(o) if o.ofi_z.is_some()));
    assert!(z, "the OFI z warms up within the recording");
    assert!(
        count(&a, DataType::SignalFusion) > 10,
        "fusion once both z are warm"
    );
    let warm = |stream: &str| {
        a.iter().any(|e| {
            matches!(&e.payload, Payload::SignalEvent(v)
            if v.event_type == "warmup_done" && v.meta_json.contains(stream))
        })
    };
    assert!(warm("ofi") && warm("cvd") && warm("fusion"));

    // The dropped diff: a sequence-gap resync of the book, and a reset event keyed by that gap.
    let [gap] = &gaps[..] else { panic!("{gaps:?}") };
    let Payload::Gap(g) = &gap.payload else {
        panic!()
    };
    assert_eq!(g.data_type, DataType::Orderbooks);
    let resets: Vec<_> = a
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::SignalEvent(v) if v.event_type == "reset" => Some(v),
            _ => None,
        })
        .collect();
    let [reset] = &resets[..] else {
        panic!("{resets:?}")
    };
    assert_eq!(reset.meta_json, r#"{"reason":"book_resync"}"#);
    assert_eq!(
        reset.source,
        format!("gap:orderbooks:{}:{}", g.start_ms, g.cause.as_str())
    );
    // Nothing is computed across the hole: the first CVD row after it starts from zero.
    let after = a
        .iter()
        .skip_while(|e| !matches!(&e.payload, Payload::SignalEvent(v) if v.event_type == "reset"))
        .find_map(|e| match &e.payload {
            Payload::SignalCvd(c) => Some(c),
            _ => None,
        });
    if let Some(c) = after {
        assert_eq!(c.cvd, c.delta, "CVD restarts at the reset");
    }
    // Every row names the symbol and a unique message id.
    let ids: std::collections::BTreeSet<String> = a.iter().map(Event::msg_id).collect();
    assert_eq!(ids.len(), a.len(), "message ids are unique");
    assert!(a.iter().all(|e| e.symbol.as_str() == "CTK-USDT"));
}
