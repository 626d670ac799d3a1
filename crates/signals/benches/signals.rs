//! CPU per book change (5 levels) and per trade on a warmed engine with the default
//! configuration (window 300, hybrid scale): `cargo bench -p marketprism-signals`. Goal ≤ 1 µs each.
//! Measured 2026-11-30 on a 2-core shared VM loaded by other builds (load average ≈ 4):
//! ≈ 300 ns per book change, ≈ 250 ns per trade.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use marketprism_signals::synthetic::{Input, SyntheticMarket};
use marketprism_signals::{Level, Side, SignalEngine, SignalsConfig};
use std::hint::black_box;

type Book = (Vec<Level>, Vec<Level>);
type Trade = (f64, f64, Option<Side>);

/// Books and trades of a synthetic market, and an engine warmed on 20 000 of its inputs.
fn setup() -> (SignalEngine, Vec<Book>, Vec<Trade>, i64) {
    let mut m = SyntheticMarket::new(42, None);
    let mut engine = SignalEngine::new(SignalsConfig::default()).unwrap();
    let (mut books, mut trades, mut ts) = (vec![], vec![], 0);
    for input in m.take(40_000) {
        if books.len() < 10_000 || trades.len() < 10_000 {
            engine.apply(&input);
        }
        match input {
            Input::Book { ts_ms, bids, asks } => {
                ts = ts_ms;
                books.push((bids, asks));
            }
            Input::Trade {
                ts_ms,
                price,
                qty,
                side,
            } => {
                ts = ts_ms;
                trades.push((price, qty, side));
            }
            Input::Gap { .. } => {}
        }
    }
    (engine, books, trades, ts)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("signals");
    g.throughput(Throughput::Elements(1));
    let (engine, books, trades, ts0) = setup();
    {
        let (mut e, mut i, mut ts) = (engine.clone(), 0, ts0);
        g.bench_function("on_book_5_levels", |b| {
            b.iter(|| {
                let (bids, asks) = &books[i % books.len()];
                i += 1;
                ts += 5;
                black_box(e.on_book(ts, black_box(bids), black_box(asks)))
            })
        });
    }
    {
        let (mut e, mut i, mut ts) = (engine.clone(), 0, ts0);
        g.bench_function("on_trade", |b| {
            b.iter(|| {
                let (price, qty, side) = trades[i % trades.len()];
                i += 1;
                ts += 5;
                black_box(e.on_trade(ts, black_box(price), qty, side))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
