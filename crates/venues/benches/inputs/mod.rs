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

/// Gate `spot.trades` (recorded shape: `create_time_ms` a string with a fraction).
pub const GATE_SPOT_TRADE: &str = r#"{"time":1619093543,"channel":"spot.trades","event":"update","result":{"id":816995772,"create_time":1619093543,"create_time_ms":"1619093543708.2642","side":"sell","currency_pair":"BTC_USDT","amount":"0.2010000000","price":"58216.2800000000"}}"#;
/// Gate `futures.trades` (documented shape, integer signed size in contracts).
pub const GATE_FUTURES_TRADE: &str = r#"{"channel":"futures.trades","event":"update","time":1541503698,"time_ms":1541503698123,"result":[{"size":-108,"id":27753479,"create_time":1545136464,"create_time_ms":1545136464123,"price":"96.4","contract":"BTC_USDT"}]}"#;

/// A 20-level Gate `order_book_update` (10 bids, 10 asks), spot (`[p, s]`) or futures (`{p, s}`,
/// integer contracts), with `U == u == id`.
pub fn gate_depth_json(futures: bool, variant: u32, id: i64) -> String {
    let lv = |sign: i64| {
        (1..=10)
            .map(|i| {
                let p = price(3_000_000 + sign * i * 10);
                let zero = variant == 1 && i % 5 == 0;
                if futures {
                    let s = if zero {
                        0
                    } else {
                        i * 100 + i64::from(variant)
                    };
                    format!(r#"{{"p":"{p}","s":{s}}}"#)
                } else {
                    let s = if zero {
                        "0".to_owned()
                    } else {
                        format!("{}.{:03}", i + i64::from(variant), i)
                    };
                    format!(r#"["{p}","{s}"]"#)
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let (ch, s) = if futures {
        ("futures.order_book_update", "BTC_USDT")
    } else {
        ("spot.order_book_update", "BTC_USDT")
    };
    format!(
        r#"{{"time":1626992742,"time_ms":1626992742291,"channel":"{ch}","event":"update","result":{{"t":1626992742291,"s":"{s}","U":{id},"u":{id},"b":[{}],"a":[{}]}}}}"#,
        lv(-1),
        lv(1)
    )
}

fn gate_table(
    exchange: marketprism_model::Exchange,
    cell: &'static std::sync::OnceLock<marketprism_model::instruments::Instruments>,
) -> std::sync::Arc<marketprism_model::instruments::InstrumentTable> {
    cell.get_or_init(|| marketprism_venues::test_support::simulator_instruments(exchange))
        .load()
}

pub fn gate_spot() -> std::sync::Arc<marketprism_model::instruments::InstrumentTable> {
    static T: std::sync::OnceLock<marketprism_model::instruments::Instruments> =
        std::sync::OnceLock::new();
    gate_table(marketprism_model::Exchange::GateSpot, &T)
}

pub fn gate_futures() -> std::sync::Arc<marketprism_model::instruments::InstrumentTable> {
    static T: std::sync::OnceLock<marketprism_model::instruments::Instruments> =
        std::sync::OnceLock::new();
    gate_table(marketprism_model::Exchange::GateDerivatives, &T)
}
