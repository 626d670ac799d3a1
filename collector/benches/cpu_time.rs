//! The same cases as `parsers`, timed by on-CPU time of this thread (`/proc/thread-self/schedstat`)
//! rather than wall time, so figures stay per-core on a shared, busy machine:
//! `cargo bench -p marketprism-collector --bench cpu_time`.

use marketprism_collector::book::OrderBook;
use marketprism_collector::exchanges::binance;
use marketprism_collector::exchanges::parse::Parsed;
use marketprism_collector::model::Exchange;
use std::hint::black_box;

const AGG_TRADE: &str = r#"{"e":"aggTrade","E":1626992742291,"a":14888302,"s":"BTCUSDT","p":"29012.41","q":"0.312","f":27931348,"l":27931348,"T":1626992742134,"m":true}"#;

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

fn price(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn main() {
    let side = |sign: i64| {
        (1..=400)
            .map(|i| {
                format!(
                    "[\"{}\",\"{}.{:03}\"]",
                    price(3_000_000 + sign * i * 10),
                    i % 7 + 1,
                    i % 1000
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let snap_text = format!(
        r#"{{"lastUpdateId":1000,"bids":[{}],"asks":[{}]}}"#,
        side(-1),
        side(1)
    );
    let snap = binance::parse::parse_depth_snapshot(&snap_text).unwrap();
    let depth = |variant: u32, id: i64| {
        let lv = |sign: i64| {
            (1..=10)
                .map(|i| {
                    let size = if variant == 1 && i % 5 == 0 {
                        "0".to_owned()
                    } else {
                        format!("{}.{:03}", i + i64::from(variant), i)
                    };
                    format!("[\"{}\",\"{size}\"]", price(3_000_000 + sign * i * 10))
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":{id},"u":{id},"pu":{},"b":[{}],"a":[{}]}}"#,
            id - 1,
            lv(-1),
            lv(1)
        )
    };
    let frames = [depth(0, 2), depth(1, 3)];
    measure("aggTrade parse+normalize", 1_000_000, || {
        black_box(
            binance::parse::parse_frame(Exchange::BinanceDerivatives, black_box(AGG_TRADE), 0)
                .unwrap(),
        );
    });
    let mut book = OrderBook::new(400);
    book.load(&snap.bids, &snap.asks, 1, 0);
    let mut i = 0usize;
    measure("depth20 parse+apply", 200_000, || {
        let Ok(Parsed::BookUpdate(_, u)) =
            binance::parse::parse_frame(Exchange::BinanceDerivatives, black_box(&frames[i & 1]), 0)
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
}
