//! Parser and book micro-benchmarks: `cargo bench -p marketprism-venues --bench parsers`.
//!
//! Goals per core: aggTrade parse+normalize ≥ 1M msgs/s; 20-level diff parse+apply ≥ 200k/s;
//! 400-level snapshot load ≤ 100 µs. The `btreemap` case is the alternative book layout, for comparison.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use marketprism_config::OrderBookConfig;
use marketprism_model::{Decimal, Exchange, Symbol};
use marketprism_venues::book::{BookSnapshot, BookSync, BookUpdate, OrderBook, SyncRule};
use marketprism_venues::connection::books::Books;
use marketprism_venues::parse::Parsed;
use marketprism_venues::plan::BookPlan;
use marketprism_venues::{binance, gate, mexc, okx};
use std::collections::BTreeMap;
use std::hint::black_box;

mod inputs;

use inputs::{
    AGG_TRADE, AGG_TRADE_COMBINED, GATE_FUTURES_TRADE, GATE_SPOT_TRADE, MEXC_CONTRACT_DEAL,
    MEXC_CONTRACT_DEPTH, OKX_TRADE, depth_json, gate_depth_json, gate_futures, gate_spot,
    mexc_contracts, mexc_deals_pb, mexc_depth_pb, mexc_spot, okx_spot, snapshot_json, usdm,
};

fn bench_trades(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("binance_agg_trade_raw", |b| {
        b.iter(|| {
            binance::parse::parse_frame(
                &usdm(),
                Exchange::BinanceDerivatives,
                black_box(AGG_TRADE),
                0,
            )
            .unwrap()
        })
    });
    g.bench_function("binance_agg_trade_combined", |b| {
        b.iter(|| {
            binance::parse::parse_frame(
                &usdm(),
                Exchange::BinanceDerivatives,
                black_box(AGG_TRADE_COMBINED),
                0,
            )
            .unwrap()
        })
    });
    let depth = depth_json(0, 2);
    g.bench_function("binance_depth20", |b| {
        b.iter(|| parse_update(black_box(&depth)))
    });
    g.bench_function("okx_trade", |b| {
        b.iter(|| {
            okx::parse::parse_frame(&okx_spot(), Exchange::OkxSpot, black_box(OKX_TRADE), 0)
                .unwrap()
        })
    });
    g.bench_function("gate_spot_trade", |b| {
        b.iter(|| {
            gate::parse::parse_frame(
                &gate_spot(),
                Exchange::GateSpot,
                black_box(GATE_SPOT_TRADE),
                0,
            )
            .unwrap()
        })
    });
    g.bench_function("gate_futures_trade", |b| {
        b.iter(|| {
            gate::parse::parse_frame(
                &gate_futures(),
                Exchange::GateDerivatives,
                black_box(GATE_FUTURES_TRADE),
                0,
            )
            .unwrap()
        })
    });
    let spot_depth = gate_depth_json(false, 0, 2);
    g.bench_function("gate_spot_depth20", |b| {
        b.iter(|| gate_update(Exchange::GateSpot, black_box(&spot_depth)))
    });
    let fut_depth = gate_depth_json(true, 0, 2);
    g.bench_function("gate_futures_depth20", |b| {
        b.iter(|| gate_update(Exchange::GateDerivatives, black_box(&fut_depth)))
    });
    let depth_pb = mexc_depth_pb(0, 2);
    g.bench_function("mexc_spot_depth20_protobuf", |b| {
        b.iter(|| {
            mexc::parse::parse_binary(&mexc_spot(), Exchange::MexcSpot, black_box(&depth_pb), 0)
                .unwrap()
        })
    });
    let deals_pb = mexc_deals_pb();
    g.bench_function("mexc_spot_deals3_protobuf", |b| {
        b.iter(|| {
            mexc::parse::parse_binary(&mexc_spot(), Exchange::MexcSpot, black_box(&deals_pb), 0)
                .unwrap()
        })
    });
    g.bench_function("mexc_contract_deal", |b| {
        b.iter(|| {
            mexc::futures::parse_frame(
                &mexc_contracts(),
                Exchange::MexcDerivatives,
                black_box(MEXC_CONTRACT_DEAL),
                0,
            )
            .unwrap()
        })
    });
    g.bench_function("mexc_contract_depth1", |b| {
        b.iter(|| {
            mexc::futures::parse_frame(
                &mexc_contracts(),
                Exchange::MexcDerivatives,
                black_box(MEXC_CONTRACT_DEPTH),
                0,
            )
            .unwrap()
        })
    });
    g.finish();
}

/// A Gate `order_book_update` parsed with the product line's instruments.
fn gate_update(exchange: Exchange, text: &str) -> BookUpdate {
    let table = if exchange == Exchange::GateSpot {
        gate_spot()
    } else {
        gate_futures()
    };
    match gate::parse::parse_frame(&table, exchange, text, 0).unwrap() {
        Parsed::BookUpdate(_, u) => u,
        _ => unreachable!(),
    }
}

fn parse_update(text: &str) -> BookUpdate {
    match binance::parse::parse_frame(&usdm(), Exchange::BinanceDerivatives, text, 0).unwrap() {
        Parsed::BookUpdate(_, u) => u,
        _ => unreachable!(),
    }
}

fn bench_book(c: &mut Criterion) {
    let snap_text = snapshot_json();
    let snap: BookSnapshot = binance::parse::parse_depth_snapshot(&snap_text).unwrap();
    let frames = [depth_json(0, 2), depth_json(1, 3)];
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(1));
    g.bench_function("depth20_parse_apply", |b| {
        let mut book = OrderBook::new(400);
        book.load(&snap.bids, &snap.asks, snap.last_id, 0);
        let mut i = 0usize;
        b.iter(|| {
            let u = parse_update(black_box(&frames[i & 1]));
            book.apply(&u.bids, &u.asks, u.last_id, u.ts_ms);
            i += 1;
        });
        assert!(!book.is_crossed());
    });
    g.bench_function("depth20_parse_sync", |b| {
        // Through the full USD-M sync machine, with continuous ids (pu == previous u).
        let mut sync = BookSync::new(SyncRule::BinanceFutures, 400, false);
        sync.on_snapshot(snap.clone());
        let mut id = 1_000i64;
        let mut u0 = parse_update(&frames[0]);
        let mut u1 = parse_update(&frames[1]);
        b.iter(|| {
            let u = if id & 1 == 0 { &mut u0 } else { &mut u1 };
            // Parse cost is measured above; here the sequence check + apply on a cloned update.
            u.first_id = id;
            u.last_id = id;
            u.prev_id = Some(id - 1);
            id += 1;
            black_box(sync.on_update(u.clone()))
        });
        assert!(sync.is_live());
    });
    for (name, exchange, futures) in [
        ("gate_spot_depth20_parse_sync", Exchange::GateSpot, false),
        (
            "gate_futures_depth20_parse_sync",
            Exchange::GateDerivatives,
            true,
        ),
    ] {
        // Parse + the Gate sequence check (`U == previous u + 1`) + apply, ids continuous.
        g.bench_function(name, |b| {
            let mut sync = BookSync::new(SyncRule::Gate, 400, false);
            sync.on_snapshot(BookSnapshot {
                last_id: 1,
                ..snap.clone()
            });
            let texts: Vec<String> = (0..2).map(|v| gate_depth_json(futures, v, 0)).collect();
            let mut id = 2i64;
            b.iter(|| {
                let mut u = gate_update(exchange, black_box(&texts[(id & 1) as usize]));
                u.first_id = id;
                u.last_id = id;
                id += 1;
                black_box(sync.on_update(u))
            });
            assert!(sync.is_live() && !sync.book().is_crossed());
        });
    }
    g.bench_function("mexc_depth20_protobuf_parse_sync", |b| {
        // MEXC spot: protobuf decode + strict fromVersion == previous toVersion + 1 + apply.
        let frames = [mexc_depth_pb(0, 1_001), mexc_depth_pb(1, 1_002)];
        let mut sync = BookSync::new(SyncRule::MexcSpot, 400, false);
        sync.on_snapshot(snap.clone());
        let mut id = 1_001i64;
        b.iter(|| {
            let Ok(Parsed::BookUpdate(_, mut u)) = mexc::parse::parse_binary(
                &mexc_spot(),
                Exchange::MexcSpot,
                black_box(&frames[(id & 1) as usize]),
                0,
            ) else {
                unreachable!()
            };
            u.first_id = id;
            u.last_id = id;
            id += 1;
            black_box(sync.on_update(u))
        });
        assert!(sync.is_live());
    });
    g.bench_function("btreemap_depth20_apply", |b| {
        let (mut bids, mut asks) = (
            BTreeMap::<Decimal, Decimal>::new(),
            BTreeMap::<Decimal, Decimal>::new(),
        );
        bids.extend(snap.bids.iter().copied());
        asks.extend(snap.asks.iter().copied());
        let ups = [parse_update(&frames[0]), parse_update(&frames[1])];
        let mut i = 0usize;
        b.iter(|| {
            let u = &ups[i & 1];
            for (side, levels) in [(&mut bids, &u.bids), (&mut asks, &u.asks)] {
                for &(p, q) in levels {
                    if q.is_zero() {
                        side.remove(&p);
                    } else {
                        side.insert(p, q);
                    }
                }
            }
            i += 1;
            black_box(bids.last_key_value());
        });
    });
    g.bench_function("okx_checksum_top25", |b| {
        // OKX's crc32 over the top 25 levels of each side (run after every update when the venue sends one).
        let mut book = OrderBook::new(400);
        book.load(&snap.bids, &snap.asks, snap.last_id, 0);
        b.iter(|| {
            black_box(marketprism_venues::book::checksum::okx_checksum(black_box(
                &book,
            )))
        });
    });
    g.bench_function("snapshot400_load", |b| {
        let mut book = OrderBook::new(400);
        b.iter(|| book.load(black_box(&snap.bids), black_box(&snap.asks), 1, 0));
    });
    g.bench_function("snapshot400_parse_load", |b| {
        let mut book = OrderBook::new(400);
        b.iter(|| {
            let s = binance::parse::parse_depth_snapshot(black_box(&snap_text)).unwrap();
            book.load(&s.bids, &s.asks, s.last_id, 0);
        });
    });
    g.bench_function("btreemap_snapshot400_load", |b| {
        b.iter(|| {
            let bids: BTreeMap<Decimal, Decimal> = snap.bids.iter().copied().collect();
            let asks: BTreeMap<Decimal, Decimal> = snap.asks.iter().copied().collect();
            black_box((bids, asks))
        });
    });
    g.finish();
}

/// Tick by tick (`orderbook.every_update`): a USD-M depth update through the connection's books, with
/// the top-20 row built and JSON-encoded after every update, against the interval cadence (no row).
fn bench_tick_by_tick(c: &mut Criterion) {
    let snap: BookSnapshot = binance::parse::parse_depth_snapshot(&snapshot_json()).unwrap();
    let ups = [
        parse_update(&depth_json(0, 2)),
        parse_update(&depth_json(1, 3)),
    ];
    let symbol = Symbol::new("BTC-USDT").unwrap();
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(1));
    for (name, every_update) in [
        ("update_interval_top20", false),
        ("update_every_top20_json", true),
    ] {
        let plan = BookPlan {
            rule: SyncRule::BinanceFutures,
            symbols: vec![symbol.clone()],
            config: OrderBookConfig {
                snapshot_levels: 20,
                snapshot_interval_ms: 1_000,
                every_update,
                ..OrderBookConfig::default()
            },
        };
        let mut books = Books::new(Exchange::BinanceDerivatives, plan, &[]);
        let mut out = Vec::new();
        // The first update bridges the snapshot (USD-M: `U <= lastUpdateId <= u`), then `pu` chains.
        let mut first = ups[0].clone();
        (first.first_id, first.last_id, first.prev_id) =
            (snap.last_id, snap.last_id, Some(snap.last_id - 1));
        books.on_update(&symbol, first, 0, &mut out);
        books.on_snapshot(&symbol, snap.clone(), true, 0, &mut out);
        assert!(books.is_live(&symbol));
        let mut id = snap.last_id + 1;
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut u = ups[(id & 1) as usize].clone();
                (u.first_id, u.last_id, u.prev_id, u.ts_ms) = (id, id, Some(id - 1), 1_000);
                id += 1;
                out.clear();
                books.on_update(&symbol, u, 0, &mut out);
                for e in &out {
                    black_box(serde_json::to_vec(e).unwrap());
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_trades, bench_book, bench_tick_by_tick);
criterion_main!(benches);
