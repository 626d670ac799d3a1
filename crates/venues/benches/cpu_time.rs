//! The same cases as `parsers`, timed by on-CPU time of this thread (`/proc/thread-self/schedstat`)
//! rather than wall time, so figures stay per-core on a shared, busy machine:
//! `cargo bench -p marketprism-venues --bench cpu_time`.

use marketprism_model::Exchange;
use marketprism_venues::book::OrderBook;
use marketprism_venues::parse::Parsed;
use marketprism_venues::{binance, gate, mexc};
use std::hint::black_box;

mod inputs;

use inputs::{
    AGG_TRADE, GATE_FUTURES_TRADE, GATE_SPOT_TRADE, depth_json, gate_depth_json, gate_futures,
    gate_spot, mexc_depth_pb, mexc_spot, snapshot_json, usdm,
};

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn measure(name: &str, iters: u64, mut f: impl FnMut()) {
    for _ in 0..iters / 10 {
        f();
    }
    let start = cpu_ns();
    for _ in 0..iters {
        f();
    }
    let per = (cpu_ns() - start) as f64 / iters as f64;
    println!(
        "{name:<28} {per:>10.0} ns/op (cpu) {:>12.0} ops/s per core",
        1e9 / per
    );
}

fn main() {
    let snap_text = snapshot_json();
    let snap = binance::parse::parse_depth_snapshot(&snap_text).unwrap();
    let frames = [depth_json(0, 2), depth_json(1, 3)];
    measure("aggTrade parse+normalize", 1_000_000, || {
        black_box(
            binance::parse::parse_frame(
                &usdm(),
                Exchange::BinanceDerivatives,
                black_box(AGG_TRADE),
                0,
            )
            .unwrap(),
        );
    });
    let mut book = OrderBook::new(400);
    book.load(&snap.bids, &snap.asks, 1, 0);
    let mut i = 0usize;
    measure("depth20 parse+apply", 200_000, || {
        let Ok(Parsed::BookUpdate(_, u)) = binance::parse::parse_frame(
            &usdm(),
            Exchange::BinanceDerivatives,
            black_box(&frames[i & 1]),
            0,
        ) else {
            unreachable!()
        };
        book.apply(&u.bids, &u.asks, u.last_id, u.ts_ms);
        i += 1;
    });
    let pb = [mexc_depth_pb(0, 2), mexc_depth_pb(1, 3)];
    let mut book = OrderBook::new(400);
    book.load(&snap.bids, &snap.asks, 1, 0);
    let mut i = 0usize;
    measure("mexc depth20 pb parse+apply", 200_000, || {
        let Ok(Parsed::BookUpdate(_, u)) =
            mexc::parse::parse_binary(&mexc_spot(), Exchange::MexcSpot, black_box(&pb[i & 1]), 0)
        else {
            unreachable!()
        };
        book.apply(&u.bids, &u.asks, u.last_id, u.ts_ms);
        i += 1;
    });
    let mut book = OrderBook::new(400);
    measure("snapshot400 load", 20_000, || {
        book.load(black_box(&snap.bids), black_box(&snap.asks), 1, 0)
    });
    measure("snapshot400 parse+load", 5_000, || {
        let s = binance::parse::parse_depth_snapshot(black_box(&snap_text)).unwrap();
        book.load(&s.bids, &s.asks, s.last_id, 0);
    });
    gate(&snap);
    signals();
}

/// Gate spot and futures trades, and 20-level `order_book_update` parse+apply (futures sizes
/// converted from contracts to base).
fn gate(snap: &marketprism_venues::book::BookSnapshot) {
    measure("gate spot trade parse", 1_000_000, || {
        black_box(
            gate::parse::parse_frame(
                &gate_spot(),
                Exchange::GateSpot,
                black_box(GATE_SPOT_TRADE),
                0,
            )
            .unwrap(),
        );
    });
    measure("gate futures trade parse", 1_000_000, || {
        black_box(
            gate::parse::parse_frame(
                &gate_futures(),
                Exchange::GateDerivatives,
                black_box(GATE_FUTURES_TRADE),
                0,
            )
            .unwrap(),
        );
    });
    for (name, exchange, futures) in [
        ("gate spot depth20 parse+apply", Exchange::GateSpot, false),
        (
            "gate futures depth20 parse+apply",
            Exchange::GateDerivatives,
            true,
        ),
    ] {
        let table = if futures { gate_futures() } else { gate_spot() };
        let frames = [
            gate_depth_json(futures, 0, 2),
            gate_depth_json(futures, 1, 3),
        ];
        let mut book = OrderBook::new(400);
        book.load(&snap.bids, &snap.asks, 1, 0);
        let mut i = 0usize;
        measure(name, 200_000, || {
            let Ok(Parsed::BookUpdate(_, u)) =
                gate::parse::parse_frame(&table, exchange, black_box(&frames[i & 1]), 0)
            else {
                unreachable!()
            };
            book.apply(&u.bids, &u.asks, u.last_id, u.ts_ms);
            i += 1;
        });
    }
}

/// The signals stage as the collector runs it (issue 14's goal: ≤ 1 µs per book change and per
/// trade at 5 levels): the product line's hub, engine and mapping of its rows to `signal_*` events.
fn signals() {
    use marketprism_model::{
        Decimal, Event, MarketType, Payload, QuantityUnit, Side, Symbol, Trade,
    };
    use marketprism_signals::Level;
    use marketprism_venues::signals::{BookTop, SignalsHub};
    let symbol = Symbol::new("BTC-USDT").unwrap();
    let section = marketprism_config::SignalsSection {
        symbols: vec![symbol.clone()],
        ..Default::default()
    };
    let hub = SignalsHub::new(Exchange::BinanceDerivatives, &section).unwrap();
    let side = |base: f64, step: f64, i: usize| -> Vec<Level> {
        (0..5)
            .map(|k| Level {
                price: base + step * k as f64,
                qty: 1.0 + ((i + k) % 7) as f64 * 0.25,
            })
            .collect()
    };
    let top = |i: usize| BookTop {
        symbol: symbol.clone(),
        market_type: MarketType::Perpetual,
        ts_ms: 1_700_000_000_000 + i as i64 * 10,
        recv_ts_ms: 1_700_000_000_005 + i as i64 * 10,
        update_id: i as i64,
        bids: side(50_000.0 - (i % 3) as f64 * 0.1, -0.1, i),
        asks: side(50_000.1 + (i % 2) as f64 * 0.1, 0.1, i),
    };
    // Inputs built beforehand, exchange time always moving forward (measure runs iters + iters/10).
    const N: usize = 2_000 + 220_000;
    let tops: Vec<BookTop> = (0..N).map(top).collect();
    let trade = |i: usize| Event {
        exchange: Exchange::BinanceDerivatives,
        market_type: MarketType::Perpetual,
        symbol: symbol.clone(),
        ts_ms: 1_700_000_000_000 + i as i64 * 10,
        recv_ts_ms: 1_700_000_000_003 + i as i64 * 10,
        payload: Payload::Trade(Trade {
            trade_id: (1_000_000 + i).to_string(),
            price: Decimal::new(5_000_000 + (i % 9) as i64, 2),
            quantity: Decimal::new(15 + (i % 5) as i64, 3),
            raw_quantity: Decimal::new(15 + (i % 5) as i64, 3),
            quantity_unit: QuantityUnit::Base,
            side: if i.is_multiple_of(3) {
                Side::Sell
            } else {
                Side::Buy
            },
        }),
    };
    // Books are measured first, then trades, on one timeline: the trades come after the last book.
    let trades: Vec<Event> = (N..2 * N).map(trade).collect();
    // Warm past the z window so every input computes a z (the steady state).
    for (i, top) in tops.iter().enumerate().take(2_000) {
        hub.on_book(top);
        hub.on_event(&trade(i));
    }
    let mut i = 2_000;
    measure("signals: book change → rows", 200_000, || {
        black_box(hub.on_book(black_box(&tops[i])));
        i += 1;
    });
    let mut i = 2_000;
    measure("signals: trade → rows", 200_000, || {
        black_box(hub.on_event(black_box(&trades[i])));
        i += 1;
    });
}
