//! The same cases as `parsers`, timed by on-CPU time of this thread (`/proc/thread-self/schedstat`)
//! rather than wall time, so figures stay per-core on a shared, busy machine:
//! `cargo bench -p marketprism-venues --bench cpu_time`.

use marketprism_model::Exchange;
use marketprism_venues::binance;
use marketprism_venues::book::OrderBook;
use marketprism_venues::parse::Parsed;
use std::hint::black_box;

mod inputs;

use inputs::{AGG_TRADE, depth_json, snapshot_json, usdm};

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
    let mut book = OrderBook::new(400);
    measure("snapshot400 load", 20_000, || {
        book.load(black_box(&snap.bids), black_box(&snap.asks), 1, 0)
    });
    measure("snapshot400 parse+load", 5_000, || {
        let s = binance::parse::parse_depth_snapshot(black_box(&snap_text)).unwrap();
        book.load(&s.bids, &s.asks, s.last_id, 0);
    });
}
