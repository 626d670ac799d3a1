//! Every data type arrives for every venue that offers it, and polled ratios are the right series.

use crate::checks::assert_invariants;
use crate::common::{
    BINANCE_DERIVATIVES_TYPES, GATE_DERIVATIVES_TYPES, MEXC_DERIVATIVES_TYPES, Rig, SPOT_TYPES,
    count, sim_config, symbols, venue_symbol,
};
use marketprism_model::{DataType, Decimal, Event, Exchange, Payload};
use serde_json::Value;
use std::collections::BTreeMap;

const DERIBIT_TYPES: [DataType; 3] = [
    DataType::VolatilityIndices,
    DataType::Trades,
    DataType::Orderbooks,
];

fn offered(exchange: Exchange) -> &'static [DataType] {
    match exchange {
        Exchange::BinanceSpot | Exchange::OkxSpot | Exchange::GateSpot => &SPOT_TYPES,
        Exchange::GateDerivatives => &GATE_DERIVATIVES_TYPES,
        Exchange::BinanceDerivatives | Exchange::OkxDerivatives => &BINANCE_DERIVATIVES_TYPES,
        Exchange::DeribitDerivatives => &DERIBIT_TYPES,
        Exchange::MexcSpot => &SPOT_TYPES,
        Exchange::MexcDerivatives => &MEXC_DERIVATIVES_TYPES,
    }
}

/// Every (venue, type, symbol) has at least one event (liquidations: at least one per venue).
fn missing(events: &[Event]) -> Vec<String> {
    let mut out = Vec::new();
    for exchange in Exchange::ALL {
        for &dt in offered(exchange) {
            for symbol in symbols(exchange) {
                let any = events.iter().any(|e| {
                    e.exchange == exchange
                        && e.data_type() == dt
                        && (dt == DataType::Liquidations || e.symbol == symbol)
                });
                if !any {
                    out.push(format!("{exchange}/{dt}/{symbol}"));
                }
            }
        }
    }
    out
}

/// `timestamp -> longShortRatio` of one of the simulator's ratio endpoints.
async fn sim_ratios(rig: &Rig, url: &str) -> BTreeMap<i64, Decimal> {
    let http = marketprism_venues::rest_client(&rig.tls);
    let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    let num = |v: &Value| -> String { v.as_str().map_or_else(|| v.to_string(), str::to_owned) };
    let rows = body.get("data").unwrap_or(&body).as_array().cloned();
    rows.unwrap_or_else(|| panic!("{url}: {body}"))
        .iter()
        .map(|r| match r {
            Value::Array(a) => (num(&a[0]).parse().unwrap(), num(&a[1]).parse().unwrap()),
            o => (
                num(&o["timestamp"]).parse().unwrap(),
                num(&o["longShortRatio"]).parse().unwrap(),
            ),
        })
        .collect()
}

/// Ratios the collector published for one venue, type and symbol.
fn published(
    events: &[Event],
    exchange: Exchange,
    dt: DataType,
    symbol: &str,
) -> BTreeMap<i64, Decimal> {
    events
        .iter()
        .filter(|e| e.exchange == exchange && e.data_type() == dt && e.symbol.as_str() == symbol)
        .filter_map(|e| match &e.payload {
            Payload::LsrTopPosition(r) | Payload::LsrAllAccount(r) => {
                Some((e.ts_ms, r.long_short_ratio))
            }
            _ => None,
        })
        .collect()
}

/// The published ratios equal the intended endpoint's rows and differ from every other series'.
async fn assert_ratio_series(rig: &Rig, events: &[Event], exchange: Exchange) {
    let base = rig.sim.endpoints(exchange).rest_url.unwrap();
    let symbol = "BTC-USDT";
    let s = venue_symbol(exchange, symbol);
    let url = |path: &str| match exchange {
        Exchange::BinanceDerivatives => {
            format!("{base}/futures/data/{path}?symbol={s}&period=5m&limit=30")
        }
        _ => format!("{base}/api/v5/rubik/stat/contracts/{path}?instId={s}&period=5m"),
    };
    let (top, top_others, all, all_others): (&str, &[&str], &str, &[&str]) = match exchange {
        Exchange::BinanceDerivatives => (
            "topLongShortPositionRatio",
            &["topLongShortAccountRatio", "globalLongShortAccountRatio"],
            "globalLongShortAccountRatio",
            &["topLongShortAccountRatio", "topLongShortPositionRatio"],
        ),
        _ => (
            "long-short-position-ratio-contract-top-trader",
            &[
                "long-short-account-ratio-contract-top-trader",
                "long-short-account-ratio-contract",
            ],
            "long-short-account-ratio-contract",
            &[
                "long-short-account-ratio-contract-top-trader",
                "long-short-position-ratio-contract-top-trader",
            ],
        ),
    };
    for (dt, right, wrong) in [
        (DataType::LsrTopPositions, top, top_others),
        (DataType::LsrAllAccounts, all, all_others),
    ] {
        let got = published(events, exchange, dt, symbol);
        assert!(!got.is_empty(), "{exchange} {dt}: nothing published");
        let expected = sim_ratios(rig, &url(right)).await;
        // The venue answers a fixed number of periods ending now: a period the collector read just
        // before a period boundary may have left the window when we ask. Older ones are not judged.
        let oldest = *expected
            .keys()
            .next()
            .expect("the venue answers some periods");
        let mut compared = 0;
        for (ts, ratio) in got.iter().filter(|(ts, _)| **ts >= oldest) {
            compared += 1;
            assert_eq!(
                expected.get(ts),
                Some(ratio),
                "{exchange} {dt} at {ts}: published {ratio}, {right} says {:?}",
                expected.get(ts)
            );
        }
        assert!(
            compared > 0,
            "{exchange} {dt}: no published period is in the venue's window"
        );
        for other in wrong {
            let theirs = sim_ratios(rig, &url(other)).await;
            assert!(
                got.iter().any(|(ts, r)| theirs.get(ts) != Some(r)),
                "{exchange} {dt} is indistinguishable from {other}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_venue_delivers_every_data_type_it_offers() {
    let venues: Vec<(Exchange, &[DataType])> =
        Exchange::ALL.iter().map(|&e| (e, offered(e))).collect();
    let mut rig = Rig::start(sim_config(), &venues).await;
    rig.wait_for("every data type of every venue", |ev| {
        missing(ev).is_empty()
    })
    .await;
    let events = rig.events.clone();
    assert_ratio_series(&rig, &events, Exchange::BinanceDerivatives).await;
    assert_ratio_series(&rig, &events, Exchange::OkxDerivatives).await;
    let events = rig.stop().await;
    assert_invariants(&events);
    for exchange in Exchange::ALL {
        assert_eq!(
            count(&events, exchange, DataType::Gaps),
            0,
            "{exchange}: gap without a fault: {:?}",
            crate::common::gaps(&events, exchange)
        );
    }
}
