//! One symbol's fault stays in that symbol: a refused instrument, a symbol that never sends, a quiet
//! symbol, a silent symbol, frames that name no subscribed stream, swapped trades. Each test asserts
//! the right events on the faulty stream and that nothing happens to the others (no gap rows, no
//! reconnect, data keeps flowing).

use crate::books::assert_book_matches_sim;
use crate::checks::{assert_invariants, assert_trade_holes_covered};
use crate::common::{Rig, bad_frames, gaps, metric, sim_config};
use marketprism_model::Exchange::{BinanceDerivatives, BinanceSpot, OkxDerivatives};
use marketprism_model::{DataType, Event, Exchange, GapCause, Symbol};
use marketprism_simulator::{Fault, Malformation, Target};
use std::time::Duration;

fn syms(names: &[&str]) -> Vec<Symbol> {
    names.iter().map(|s| Symbol::new(*s).unwrap()).collect()
}

/// Every (data type, symbol) delivered data after event index `from`.
async fn wait_delivering(
    rig: &mut Rig,
    exchange: Exchange,
    streams: &[(DataType, &str)],
    from: usize,
) {
    rig.wait_for(&format!("{exchange} delivering {streams:?}"), |ev| {
        streams.iter().all(|(dt, sym)| {
            ev[from.min(ev.len())..].iter().any(|e| {
                e.exchange == exchange && e.data_type() == *dt && e.symbol.as_str() == *sym
            })
        })
    })
    .await;
}

fn gaps_on<'a>(events: &'a [Event], exchange: Exchange, symbol: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.exchange == exchange && e.symbol.as_str() == symbol)
        .filter(|e| e.data_type() == DataType::Gaps)
        .collect()
}

fn stream_status(
    rig: &Rig,
    exchange: Exchange,
    dt: DataType,
    symbol: &str,
) -> Option<(bool, String)> {
    rig.health
        .snapshot()
        .get(&format!("stream:{exchange}/{dt}/{symbol}"))
        .map(|s| (s.ready, s.reason.clone()))
}

/// OKX refuses one instrument of a batch subscribe (error 60018 for its args, acks for the others):
/// only that instrument's streams end, each with one `refused` gap and a not-ready reason; the two
/// listed instruments keep delivering on the same connection, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_refused_instrument_stays_in_its_stream() {
    let types = [
        DataType::Orderbooks,
        DataType::Trades,
        DataType::FundingRates,
    ];
    let mut rig = Rig::start_prepared(
        sim_config(),
        &[(OkxDerivatives, &types)],
        |c| c.symbols = syms(&["BTC-USDT", "ETH-USDT", "SOL-USDT"]),
        |sim| {
            sim.inject(Fault::Delist(Target::symbol(
                OkxDerivatives,
                "SOL-USDT-SWAP",
            )));
        },
    )
    .await;
    let healthy: Vec<(DataType, &str)> = types
        .iter()
        .flat_map(|dt| [(*dt, "BTC-USDT"), (*dt, "ETH-USDT")])
        .collect();
    wait_delivering(&mut rig, OkxDerivatives, &healthy, 0).await;
    rig.wait_for("a refused gap per SOL stream", |ev| {
        types.iter().all(|dt| {
            gaps(ev, OkxDerivatives).iter().any(|(s, g)| {
                *s == "SOL-USDT" && g.data_type == *dt && g.cause == GapCause::Refused
            })
        })
    })
    .await;
    // Several stale periods and subscribe timeouts later, still one connection, still delivering.
    let before = rig.events.len();
    rig.settle(Duration::from_secs(3)).await;
    let n = rig.events.len();
    eprintln!(
        "refused SOL: BTC and ETH delivered {} events in 3 s",
        n - before
    );
    wait_delivering(&mut rig, OkxDerivatives, &healthy, n).await;
    assert_book_matches_sim(&mut rig, OkxDerivatives, "BTC-USDT").await;
    assert_eq!(
        rig.sim.stats().venue(OkxDerivatives).connections,
        1,
        "no reconnect"
    );
    let (ready, reason) =
        stream_status(&rig, OkxDerivatives, DataType::Orderbooks, "SOL-USDT").expect("registered");
    assert!(!ready && reason.contains("60018"), "{reason}");
    assert_eq!(
        stream_status(&rig, OkxDerivatives, DataType::Orderbooks, "BTC-USDT"),
        None,
        "healthy streams never reported"
    );
    assert!(
        metric(
            "marketprism_stream_refused_total",
            &["exchange=\"okx_derivatives\"", "symbol=\"SOL-USDT\""]
        ) >= 3
    );
    let events = rig.stop().await;
    let sol = gaps_on(&events, OkxDerivatives, "SOL-USDT");
    assert_eq!(sol.len(), 3, "one refused gap per stream: {sol:?}");
    for s in ["BTC-USDT", "ETH-USDT"] {
        assert!(
            gaps_on(&events, OkxDerivatives, s).is_empty(),
            "{s}: {:?}",
            gaps_on(&events, OkxDerivatives, s)
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| e.symbol.as_str() == "SOL-USDT" && e.data_type() != DataType::Gaps),
        "nothing collected for the refused instrument"
    );
    assert_invariants(&events);
}

/// Binance books of a busy symbol, a symbol the venue does not list (acked, never sends, REST depth
/// `-1121`) and a symbol that is merely quiet (no book change for several stale periods): the unlisted
/// one ends with one `refused` gap, the quiet one is verified against the REST snapshot and left alone,
/// the connection is never recycled, and the busy and quiet books get no gap row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_unlisted_and_quiet_symbols_stay_in_their_streams() {
    let types = [DataType::Orderbooks, DataType::Trades];
    let mut rig = Rig::start_prepared(
        sim_config(),
        &[(BinanceSpot, &types)],
        |c| {
            c.symbols = syms(&["BTC-USDT", "ETH-USDT", "SOL-USDT"]);
            c.stale_after_s = 1;
        },
        |sim| {
            sim.inject(Fault::Delist(Target::symbol(BinanceSpot, "SOLUSDT")));
        },
    )
    .await;
    let busy = [
        (DataType::Orderbooks, "BTC-USDT"),
        (DataType::Orderbooks, "ETH-USDT"),
        (DataType::Trades, "BTC-USDT"),
    ];
    wait_delivering(&mut rig, BinanceSpot, &busy, 0).await;
    rig.wait_for("the unlisted book refused", |ev| {
        gaps(ev, BinanceSpot)
            .iter()
            .any(|(s, g)| *s == "SOL-USDT" && g.cause == GapCause::Refused)
    })
    .await;
    let quiet_before = metric(
        "marketprism_orderbook_quiet_verified_total",
        &["exchange=\"binance_spot\"", "symbol=\"ETH-USDT\""],
    );
    assert_eq!(
        rig.sim.inject(Fault::Quiet {
            target: Target::symbol(BinanceSpot, "ETHUSDT"),
            duration_ms: 4_000,
        }),
        1
    );
    let n = rig.events.len();
    rig.settle(Duration::from_millis(4_500)).await;
    // The busy book kept flowing through the quiet period.
    wait_delivering(
        &mut rig,
        BinanceSpot,
        &[(DataType::Orderbooks, "BTC-USDT")],
        n,
    )
    .await;
    let n = rig.events.len();
    wait_delivering(&mut rig, BinanceSpot, &busy, n).await;
    assert!(
        metric(
            "marketprism_orderbook_quiet_verified_total",
            &["exchange=\"binance_spot\"", "symbol=\"ETH-USDT\""],
        ) > quiet_before,
        "the quiet book was checked against a snapshot"
    );
    assert_book_matches_sim(&mut rig, BinanceSpot, "ETH-USDT").await;
    assert_eq!(
        rig.sim.stats().venue(BinanceSpot).connections,
        1,
        "no reconnect"
    );
    let (ready, reason) =
        stream_status(&rig, BinanceSpot, DataType::Orderbooks, "SOL-USDT").expect("registered");
    assert!(!ready && reason.contains("-1121"), "{reason}");
    let events = rig.stop().await;
    let sol = gaps_on(&events, BinanceSpot, "SOL-USDT");
    assert_eq!(sol.len(), 1, "{sol:?}");
    for s in ["BTC-USDT", "ETH-USDT"] {
        assert!(
            gaps_on(&events, BinanceSpot, s).is_empty(),
            "{s}: {:?}",
            gaps_on(&events, BinanceSpot, s)
        );
    }
    assert_invariants(&events);
}

/// One symbol's frames stop while its market moves on (the others flow): a `stale` gap on that book
/// only, found by comparing with the venue's snapshot; the book is rebuilt; no reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_silent_symbol_is_resynced_alone() {
    let mut rig = Rig::start_with(
        sim_config(),
        &[(BinanceDerivatives, &[DataType::Orderbooks])],
        |c| c.stale_after_s = 1,
    )
    .await;
    rig.wait_streaming(BinanceDerivatives, 0).await;
    let connections = rig.sim.stats().venue(BinanceDerivatives).connections;
    rig.sim.inject(Fault::Stale {
        target: Target::symbol(BinanceDerivatives, "ETHUSDT"),
        duration_ms: 3_000,
    });
    rig.wait_for("ETH stale gap", |ev| {
        gaps(ev, BinanceDerivatives).iter().any(|(s, g)| {
            *s == "ETH-USDT" && g.data_type == DataType::Orderbooks && g.cause == GapCause::Stale
        })
    })
    .await;
    rig.settle(Duration::from_secs(3)).await;
    assert_book_matches_sim(&mut rig, BinanceDerivatives, "ETH-USDT").await;
    assert_eq!(
        rig.sim.stats().venue(BinanceDerivatives).connections,
        connections,
        "no reconnect"
    );
    let events = rig.stop().await;
    assert!(
        gaps_on(&events, BinanceDerivatives, "BTC-USDT").is_empty(),
        "{:?}",
        gaps_on(&events, BinanceDerivatives, "BTC-USDT")
    );
    assert_invariants(&events);
}

/// Unparsable frames on an OKX connection carrying trades, funding, books and liquidations of two
/// symbols: a truncated frame still names its stream and gaps only that one; an invalid JSON frame
/// names nothing, so every stream that cannot notice a loss itself (all but the books) gets a
/// `rejected` gap saying so, and the books of both symbols stay untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_unparsable_frame_touches_only_its_stream() {
    let types = [
        DataType::Orderbooks,
        DataType::Trades,
        DataType::FundingRates,
        DataType::Liquidations,
    ];
    let mut rig = Rig::start(sim_config(), &[(OkxDerivatives, &types)]).await;
    rig.wait_streaming(OkxDerivatives, 0).await;
    let before = bad_frames(OkxDerivatives);
    let unattributed = || {
        metric(
            "marketprism_exchange_unattributed_frames_total",
            &["exchange=\"okx_derivatives\"", "reason=\"unparsable\""],
        )
    };
    let unattributed_before = unattributed();
    for kind in [Malformation::Truncated, Malformation::InvalidJson] {
        rig.sim.inject(Fault::Malformed {
            target: Target::symbol(OkxDerivatives, "BTC-USDT-SWAP"),
            kind,
            messages: 1,
        });
    }
    while rig.counters(OkxDerivatives, "", Some("BTC-USDT")).malformed < 2 {
        rig.settle(Duration::from_millis(100)).await;
    }
    while bad_frames(OkxDerivatives) - before < 2 {
        rig.settle(Duration::from_millis(100)).await;
    }
    assert!(
        unattributed() > unattributed_before,
        "the invalid JSON frame names no stream"
    );
    let n = rig.events.len();
    rig.wait_streaming(OkxDerivatives, n).await;
    assert_book_matches_sim(&mut rig, OkxDerivatives, "BTC-USDT").await;
    let events = rig.stop().await;
    // A truncated book frame is caught by the book's sequence instead: only on its own book.
    let all: Vec<_> = gaps(&events, OkxDerivatives)
        .into_iter()
        .filter(|(s, g)| !(*s == "BTC-USDT" && g.data_type == DataType::Orderbooks))
        .collect();
    assert!(
        all.iter()
            .all(|(_, g)| g.data_type != DataType::Orderbooks && g.cause == GapCause::Rejected),
        "the books find their own holes; only rejected gaps: {all:?}"
    );
    // The invalid JSON frame: one gap on every non-book stream of the connection, both symbols.
    for symbol in ["BTC-USDT", "ETH-USDT"] {
        for dt in [
            DataType::Trades,
            DataType::FundingRates,
            DataType::Liquidations,
        ] {
            assert!(
                all.iter().any(|(s, g)| *s == symbol
                    && g.data_type == dt
                    && g.detail.contains("unknown stream")),
                "{symbol} {dt}: {all:?}"
            );
        }
    }
    // The truncated frame named one BTC stream.
    let named: Vec<_> = all
        .iter()
        .filter(|(_, g)| !g.detail.contains("unknown stream"))
        .collect();
    assert!(named.len() <= 1, "{named:?}");
    assert!(named.iter().all(|(s, _)| *s == "BTC-USDT"), "{named:?}");
    assert_invariants(&events);
}

/// Frames for instruments the connection did not subscribe (one listed, one the parser cannot even
/// map): counted and skipped, no gap row anywhere, no reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_frames_for_unsubscribed_symbols_touch_no_stream() {
    let mut rig = Rig::start(
        sim_config(),
        &[(BinanceSpot, &[DataType::Trades, DataType::Orderbooks])],
    )
    .await;
    rig.wait_streaming(BinanceSpot, 0).await;
    let count = || {
        metric(
            "marketprism_exchange_unattributed_frames_total",
            &["exchange=\"binance_spot\""],
        )
    };
    let before = count();
    for sym in ["XRPUSDT", "BTCEURI"] {
        assert_eq!(
            rig.sim
                .inject(Fault::UnsubscribedFrame(Target::symbol(BinanceSpot, sym))),
            1
        );
    }
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    while count() < before + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "unattributed frames not counted"
        );
        rig.settle(Duration::from_millis(100)).await;
    }
    let n = rig.events.len();
    rig.wait_streaming(BinanceSpot, n).await;
    assert_eq!(rig.sim.stats().venue(BinanceSpot).connections, 1);
    let events = rig.stop().await;
    assert!(
        gaps(&events, BinanceSpot).is_empty(),
        "{:?}",
        gaps(&events, BinanceSpot)
    );
    assert!(
        !events.iter().any(|e| e.symbol.as_str() == "XRP-USDT"),
        "never emitted"
    );
    assert_invariants(&events);
}

/// aggTrades arriving swapped (ids n+2 then n+1): no false `sequence_gap`, every id stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_swapped_trades_leave_no_false_gap() {
    let mut rig = Rig::start(sim_config(), &[(BinanceDerivatives, &[DataType::Trades])]).await;
    rig.wait_streaming(BinanceDerivatives, 0).await;
    rig.sim.inject(Fault::SwapTrades {
        target: Target::symbol(BinanceDerivatives, "BTCUSDT"),
        messages: 10,
    });
    while rig
        .counters(BinanceDerivatives, "agg_trades", Some("BTC-USDT"))
        .reordered
        < 10
    {
        rig.settle(Duration::from_millis(100)).await;
    }
    // Past the reorder window, so a hole would have been declared by now.
    rig.settle(Duration::from_secs(2)).await;
    let events = rig.stop().await;
    assert!(
        gaps(&events, BinanceDerivatives).is_empty(),
        "{:?}",
        gaps(&events, BinanceDerivatives)
    );
    assert_eq!(assert_trade_holes_covered(&events), 0, "no hole at all");
    assert_invariants(&events);
}

/// After a reconnect the refused stream is refused again (one more `refused` gap), but gets no
/// `disconnect` gap: it never ran. The listed symbol gets its `disconnect` gap as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_stream_gets_no_reconnect_gap() {
    use marketprism_model::Exchange::OkxSpot;
    let mut rig = Rig::start_prepared(
        sim_config(),
        &[(OkxSpot, &[DataType::Orderbooks])],
        |c| c.symbols = syms(&["BTC-USDT", "SOL-USDT"]),
        |sim| {
            sim.inject(Fault::Delist(Target::symbol(OkxSpot, "SOL-USDT")));
        },
    )
    .await;
    let refused = |ev: &[Event]| {
        gaps(ev, OkxSpot)
            .iter()
            .filter(|(s, g)| *s == "SOL-USDT" && g.cause == GapCause::Refused)
            .count()
    };
    rig.wait_for("SOL refused", |ev| refused(ev) == 1).await;
    wait_delivering(&mut rig, OkxSpot, &[(DataType::Orderbooks, "BTC-USDT")], 0).await;
    assert_eq!(
        rig.sim
            .inject(Fault::DropConnections(Target::venue(OkxSpot))),
        1
    );
    rig.wait_for("BTC disconnect gap and SOL refused again", |ev| {
        refused(ev) == 2
            && gaps(ev, OkxSpot)
                .iter()
                .any(|(s, g)| *s == "BTC-USDT" && g.cause == GapCause::Disconnect)
    })
    .await;
    let events = rig.stop().await;
    let sol: Vec<_> = gaps(&events, OkxSpot)
        .into_iter()
        .filter(|(s, _)| *s == "SOL-USDT")
        .collect();
    assert!(
        sol.iter().all(|(_, g)| g.cause == GapCause::Refused),
        "{sol:?}"
    );
    assert_invariants(&events);
}

/// Deribit leaves a channel it cannot serve out of the `public/subscribe` result (go-deribit#16):
/// the streams of those channels are refused one by one (a `refused` gap each, not-ready with the
/// channel named), the confirmed ones deliver on the same connection with no gap, and DVOL, which
/// is per index, is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deribit_channels_missing_from_the_subscribe_result_are_refused_one_by_one() {
    use marketprism_model::Exchange::DeribitDerivatives;
    let types = [
        DataType::Orderbooks,
        DataType::Trades,
        DataType::VolatilityIndices,
    ];
    let mut rig = Rig::start_prepared(
        sim_config(),
        &[(DeribitDerivatives, &types)],
        |c| c.symbols = syms(&["BTC-USD", "ETH-USD"]),
        |sim| {
            sim.inject(Fault::Delist(Target::symbol(
                DeribitDerivatives,
                "ETH-PERPETUAL",
            )));
        },
    )
    .await;
    let healthy = [
        (DataType::Orderbooks, "BTC-USD"),
        (DataType::Trades, "BTC-USD"),
        (DataType::VolatilityIndices, "BTC-USD"),
        (DataType::VolatilityIndices, "ETH-USD"),
    ];
    wait_delivering(&mut rig, DeribitDerivatives, &healthy, 0).await;
    rig.wait_for("a refused gap for ETH books and trades", |ev| {
        [DataType::Orderbooks, DataType::Trades].iter().all(|dt| {
            gaps(ev, DeribitDerivatives)
                .iter()
                .any(|(s, g)| *s == "ETH-USD" && g.data_type == *dt && g.cause == GapCause::Refused)
        })
    })
    .await;
    rig.settle(Duration::from_secs(2)).await;
    let n = rig.events.len();
    wait_delivering(&mut rig, DeribitDerivatives, &healthy, n).await;
    assert_book_matches_sim(&mut rig, DeribitDerivatives, "BTC-USD").await;
    assert_eq!(
        rig.sim.stats().venue(DeribitDerivatives).connections,
        1,
        "no reconnect"
    );
    let (ready, reason) =
        stream_status(&rig, DeribitDerivatives, DataType::Trades, "ETH-USD").expect("registered");
    assert!(
        !ready && reason.contains("missing from the result"),
        "{reason}"
    );
    let events = rig.stop().await;
    let eth: Vec<_> = gaps_on(&events, DeribitDerivatives, "ETH-USD")
        .into_iter()
        .filter_map(|e| match &e.payload {
            marketprism_model::Payload::Gap(g) => Some((g.data_type, g.cause)),
            _ => None,
        })
        .collect();
    assert_eq!(
        eth.len(),
        2,
        "one refused gap per refused stream, none for DVOL: {eth:?}"
    );
    assert!(eth.iter().all(|(_, c)| *c == GapCause::Refused), "{eth:?}");
    assert!(
        gaps_on(&events, DeribitDerivatives, "BTC-USD").is_empty(),
        "confirmed streams see no gap"
    );
    assert_invariants(&events);
}
