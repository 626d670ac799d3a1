//! Instruments from the venue's own list, over the network path (issue 10, section 1): the collector
//! loads the simulator's `exchangeInfo` / `public/instruments`, collects what it lists under the venue's
//! names, stores sizes in base units, and refuses (never guesses) what it does not list.

use crate::common::{Rig, gaps, metric, sim_config, summary};
use marketprism_model::Exchange::{BinanceSpot, OkxDerivatives};
use marketprism_model::{
    DataType, Decimal, Event, GapCause, MarketType, Payload, QuantityUnit, Symbol,
};
use std::time::Duration;

fn trades<'a>(ev: &'a [Event], symbol: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
    ev.iter()
        .filter(move |e| e.symbol.as_str() == symbol && e.data_type() == DataType::Trades)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bnb_usd_is_collected_by_its_listed_name_and_an_unlisted_symbol_is_refused() {
    let types = [DataType::Trades, DataType::Orderbooks];
    let mut rig = Rig::start_with(sim_config(), &[(BinanceSpot, &types)], |c| {
        // BNBUSD is listed as BNB/USD; BN-BUSD (the old suffix split) is not listed at all.
        c.symbols = vec![
            Symbol::new("BNB-USD").unwrap(),
            Symbol::new("BN-BUSD").unwrap(),
        ];
    })
    .await;
    rig.wait_for("BNB-USD trades and book", |ev| {
        trades(ev, "BNB-USD").count() >= 40
            && ev
                .iter()
                .any(|e| e.symbol.as_str() == "BNB-USD" && e.data_type() == DataType::Orderbooks)
    })
    .await;
    rig.settle(Duration::from_millis(300)).await;
    let events = rig.stop().await;
    let refused: Vec<_> = gaps(&events, BinanceSpot)
        .into_iter()
        .filter(|(s, _)| *s == "BN-BUSD")
        .collect();
    let mut kinds: Vec<_> = refused
        .iter()
        .map(|(_, g)| (g.data_type, g.cause))
        .collect();
    kinds.sort_by_key(|(d, _)| *d);
    assert_eq!(
        kinds,
        [
            (DataType::Orderbooks, GapCause::Refused),
            (DataType::Trades, GapCause::Refused)
        ],
        "one refused gap per configured stream of the unlisted symbol: {}",
        summary(&events)
    );
    assert!(
        refused[0]
            .1
            .detail
            .contains("not in binance_spot's instrument list")
    );
    assert!(
        events
            .iter()
            .all(|e| e.symbol.as_str() != "BN-BUSD" || e.data_type() == DataType::Gaps),
        "nothing collected for an unlisted symbol"
    );
    assert!(
        gaps(&events, BinanceSpot)
            .iter()
            .all(|(s, _)| *s != "BNB-USD"),
        "the listed symbol has no gap: {:?}",
        gaps(&events, BinanceSpot)
    );
    for e in trades(&events, "BNB-USD") {
        let Payload::Trade(t) = &e.payload else {
            unreachable!()
        };
        assert_eq!(
            (e.market_type, t.quantity_unit),
            (MarketType::Spot, QuantityUnit::Base)
        );
        assert_eq!(t.quantity, t.raw_quantity);
    }
    assert_eq!(
        metric(
            "marketprism_exchange_unlisted_symbols_total",
            &["binance_spot", "BN-BUSD"]
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_dated_futures_are_futures_and_contract_sizes_land_in_base_units() {
    let types = [
        DataType::Trades,
        DataType::Liquidations,
        DataType::OpenInterests,
    ];
    let mut rig = Rig::start_with(sim_config(), &[(OkxDerivatives, &types)], |c| {
        c.symbols = vec![
            Symbol::new("BTC-USD-220527").unwrap(),
            Symbol::new("BTC-USDT").unwrap(),
        ];
    })
    .await;
    let of = |ev: &[Event], symbol: &str, dt: DataType| {
        ev.iter()
            .filter(|e| e.symbol.as_str() == symbol && e.data_type() == dt)
            .count()
    };
    rig.wait_for(
        "trades, liquidations and open interest of the future",
        |ev| {
            of(ev, "BTC-USD-220527", DataType::Trades) >= 5
                && of(ev, "BTC-USDT", DataType::Trades) >= 5
                && of(ev, "BTC-USD-220527", DataType::Liquidations) >= 1
                && of(ev, "BTC-USD-220527", DataType::OpenInterests) >= 1
        },
    )
    .await;
    let events = rig.stop().await;
    let hundred = Decimal::from(100);
    let ct_linear: Decimal = "0.01".parse().unwrap();
    for e in events.iter().filter(|e| e.data_type() != DataType::Gaps) {
        let future = e.symbol.as_str() == "BTC-USD-220527";
        let want = if future {
            MarketType::Futures
        } else {
            MarketType::Perpetual
        };
        assert_eq!(e.market_type, want, "{e:?}");
        let (q, raw, unit, price) = match &e.payload {
            Payload::Trade(t) => (t.quantity, t.raw_quantity, t.quantity_unit, t.price),
            Payload::Liquidation(l) => (l.quantity, l.raw_quantity, l.quantity_unit, l.price),
            _ => continue,
        };
        assert_eq!(unit, QuantityUnit::Contracts);
        let base = if future {
            // Inverse: 100 USD per contract.
            (raw * hundred / price).round_dp(18).normalize()
        } else {
            raw * ct_linear
        };
        assert_eq!(q, base, "{e:?}");
    }
    assert!(
        gaps(&events, OkxDerivatives).is_empty(),
        "{:?}",
        gaps(&events, OkxDerivatives)
    );
}

/// Binance spot trades and books of BTC and SOL, the instrument list refreshed every second.
async fn btc_and_sol_refreshed_every_second(
    prepare: impl FnOnce(&marketprism_simulator::SimulatorHandle),
) -> Rig {
    let types = [DataType::Trades, DataType::Orderbooks];
    Rig::start_prepared(
        sim_config(),
        &[(BinanceSpot, &types)],
        |c| {
            c.symbols = vec![
                Symbol::new("BTC-USDT").unwrap(),
                Symbol::new("SOL-USDT").unwrap(),
            ];
            c.instruments_refresh_s = 1;
        },
        prepare,
    )
    .await
}

/// A configured symbol the venue lists only after the collector started (a new listing) is refused
/// at start, then collected from the refresh that sees it, without a restart: its trades and book
/// arrive on a connection of their own, the instrument list turns ready, and the symbols that were
/// listed all along keep their connection with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbol_listed_after_start_is_collected_from_the_next_refresh() {
    use marketprism_simulator::{Fault, Target};
    let mut rig = btc_and_sol_refreshed_every_second(|sim| {
        sim.inject(Fault::ListLater {
            target: Target::symbol(BinanceSpot, "SOLUSDT"),
            after_ms: 2_500,
        });
    })
    .await;
    rig.wait_for("SOL refused at start", |ev| {
        gaps(ev, BinanceSpot)
            .iter()
            .any(|(s, g)| *s == "SOL-USDT" && g.cause == GapCause::Refused)
    })
    .await;
    let instruments = |rig: &Rig| rig.health.snapshot()["instruments:binance_spot"].clone();
    let before = instruments(&rig);
    assert!(
        !before.ready && before.reason.contains("SOL-USDT"),
        "{before:?}"
    );
    rig.wait_for("SOL trades and book after it is listed", |ev| {
        trades(ev, "SOL-USDT").count() >= 5
            && ev
                .iter()
                .any(|e| e.symbol.as_str() == "SOL-USDT" && e.data_type() == DataType::Orderbooks)
    })
    .await;
    let after = instruments(&rig);
    assert!(
        after.ready,
        "every configured symbol is listed now: {after:?}"
    );
    assert_eq!(
        rig.sim.stats().venue(BinanceSpot).connections,
        2,
        "the first connection kept; one more for the new listing"
    );
    let events = rig.stop().await;
    let btc: Vec<_> = gaps(&events, BinanceSpot)
        .into_iter()
        .filter(|(s, _)| *s == "BTC-USDT")
        .collect();
    assert!(btc.is_empty(), "listed all along, never disturbed: {btc:?}");
    let sol: Vec<_> = gaps(&events, BinanceSpot)
        .into_iter()
        .filter(|(s, _)| *s == "SOL-USDT")
        .map(|(_, g)| g.cause)
        .collect();
    assert!(
        sol.iter().all(|c| *c == GapCause::Refused),
        "only the refusal at start: {sol:?}"
    );
}

/// A collected symbol the venue stops listing while the collector runs (a delisting announced,
/// maintenance) is not lost silently: the refresh that sees it gone writes one `refused` gap per
/// stream of it ("left … instrument list"), the instrument list turns not ready naming it, and the
/// symbols still listed keep flowing with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collected_symbol_that_leaves_the_list_is_a_gap_and_not_ready() {
    use marketprism_simulator::{Fault, Target};
    let mut rig = btc_and_sol_refreshed_every_second(|_| {}).await;
    rig.wait_for("SOL trades first", |ev| trades(ev, "SOL-USDT").count() >= 3)
        .await;
    rig.sim
        .inject(Fault::Unlist(Target::symbol(BinanceSpot, "SOLUSDT")));
    rig.wait_for("a gap per SOL stream once it left the list", |ev| {
        let left: Vec<DataType> = gaps(ev, BinanceSpot)
            .iter()
            .filter(|(s, g)| {
                *s == "SOL-USDT" && g.cause == GapCause::Refused && g.detail.contains("left")
            })
            .map(|(_, g)| g.data_type)
            .collect();
        left.contains(&DataType::Trades) && left.contains(&DataType::Orderbooks)
    })
    .await;
    let instruments = rig.health.snapshot()["instruments:binance_spot"].clone();
    assert!(
        !instruments.ready && instruments.reason.contains("SOL-USDT"),
        "{instruments:?}"
    );
    let btc_before = trades(&rig.events, "BTC-USDT").count();
    rig.wait_for("BTC keeps flowing", |ev| {
        trades(ev, "BTC-USDT").count() > btc_before + 3
    })
    .await;
    let events = rig.stop().await;
    let btc: Vec<_> = gaps(&events, BinanceSpot)
        .into_iter()
        .filter(|(s, _)| *s == "BTC-USDT")
        .collect();
    assert!(btc.is_empty(), "still listed, never disturbed: {btc:?}");
}
