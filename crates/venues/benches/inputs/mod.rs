//! The benchmark inputs, shared by `parsers` (criterion, wall time) and `cpu_time` (on-CPU time),
//! so both measure exactly the same frames.
#![allow(dead_code)] // each bench uses a subset

pub const AGG_TRADE: &str = r#"{"e":"aggTrade","E":1626992742291,"a":14888302,"s":"BTCUSDT","p":"29012.41","q":"0.312","f":27931348,"l":27931348,"T":1626992742134,"m":true}"#;
pub const AGG_TRADE_COMBINED: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1626992742291,"a":14888302,"s":"BTCUSDT","p":"29012.41","q":"0.312","f":27931348,"l":27931348,"T":1626992742134,"m":true}}"#;
pub const OKX_TRADE: &str = r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3","source":"0","seqId":1234}]}"#;

pub fn price(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A 400-level-per-side REST snapshot around 30000.00 with a 0.10 tick.
pub fn snapshot_json() -> String {
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
    format!(
        r#"{{"lastUpdateId":1000,"E":1626992742291,"T":1626992742291,"bids":[{}],"asks":[{}]}}"#,
        side(-1),
        side(1)
    )
}

/// A 20-level depth diff (10 bids, 10 asks near the top); `variant` changes the sizes, 1 deletes two.
pub fn depth_json(variant: u32, id: i64) -> String {
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
        r#"{{"e":"depthUpdate","E":1626992742291,"T":1626992742291,"s":"BTCUSDT","U":{id},"u":{id},"pu":{},"b":[{}],"a":[{}]}}"#,
        id - 1,
        lv(-1),
        lv(1)
    )
}

/// The simulator's instrument lists (a frame's symbol → instrument is one hash lookup, as in production).
pub fn usdm() -> std::sync::Arc<marketprism_model::instruments::InstrumentTable> {
    static T: std::sync::OnceLock<marketprism_model::instruments::Instruments> =
        std::sync::OnceLock::new();
    T.get_or_init(|| {
        marketprism_venues::test_support::simulator_instruments(
            marketprism_model::Exchange::BinanceDerivatives,
        )
    })
    .load()
}

#[allow(dead_code)]
pub fn okx_spot() -> std::sync::Arc<marketprism_model::instruments::InstrumentTable> {
    static T: std::sync::OnceLock<marketprism_model::instruments::Instruments> =
        std::sync::OnceLock::new();
    T.get_or_init(|| {
        marketprism_venues::test_support::simulator_instruments(
            marketprism_model::Exchange::OkxSpot,
        )
    })
    .load()
}
