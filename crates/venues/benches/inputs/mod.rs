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

/// MEXC contract `push.deal` (the live array form) and one unmerged `push.depth` increment.
pub const MEXC_CONTRACT_DEAL: &str = r#"{"symbol":"BTC_USDT","data":[{"p":77525.9,"v":3,"T":2,"O":3,"M":1,"t":1626992742134,"i":"16005949540","cts":"1626992742134"}],"channel":"push.deal","ts":1626992742134}"#;
pub const MEXC_CONTRACT_DEPTH: &str = r#"{"symbol":"BTC_USDT","data":{"asks":[[76356.9,1709998,5]],"bids":[],"version":14452998434},"channel":"push.depth","ts":1626992742134}"#;

/// Protobuf wire writing for the MEXC spot inputs (key, varint, length-delimited), from the encoding spec.
fn pb_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}
fn pb_bytes(field: u64, b: &[u8], out: &mut Vec<u8>) {
    pb_varint(field << 3 | 2, out);
    pb_varint(b.len() as u64, out);
    out.extend_from_slice(b);
}
fn pb_int(field: u64, n: u64, out: &mut Vec<u8>) {
    pb_varint(field << 3, out);
    pb_varint(n, out);
}
fn pb_push(channel: &str, tag: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    pb_bytes(1, channel.as_bytes(), &mut out);
    pb_bytes(tag, body, &mut out);
    pb_bytes(3, b"BTCUSDT", &mut out);
    pb_int(6, 1_626_992_742_291, &mut out);
    out
}

/// A MEXC spot `publicAggreDepths` push with 10 bids and 10 asks, versions `id..=id`.
pub fn mexc_depth_pb(variant: u32, id: i64) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, sign) in [(1, 1), (2, -1)] {
        for i in 1..=10i64 {
            let size = if variant == 1 && i % 5 == 0 {
                "0".to_owned()
            } else {
                format!("{}.{:03}", i + i64::from(variant), i)
            };
            let mut item = Vec::new();
            pb_bytes(1, price(3_000_000 + sign * i * 10).as_bytes(), &mut item);
            pb_bytes(2, size.as_bytes(), &mut item);
            pb_bytes(field, &item, &mut body);
        }
    }
    pb_bytes(3, b"spot@public.aggre.depth.v3.api.pb@100ms", &mut body);
    pb_bytes(4, id.to_string().as_bytes(), &mut body);
    pb_bytes(5, id.to_string().as_bytes(), &mut body);
    pb_push(
        "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
        313,
        &body,
    )
}

/// A MEXC spot `publicAggreDeals` push with 3 deals.
pub fn mexc_deals_pb() -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..3u64 {
        let mut item = Vec::new();
        pb_bytes(1, format!("93220.{:02}", i).as_bytes(), &mut item);
        pb_bytes(2, b"0.04438243", &mut item);
        pb_int(3, 1 + i % 2, &mut item);
        pb_int(4, 1_626_992_742_134 + i, &mut item);
        pb_bytes(1, &item, &mut body);
    }
    pb_bytes(2, b"spot@public.aggre.deals.v3.api.pb@100ms", &mut body);
    pb_push(
        "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
        314,
        &body,
    )
}

pub fn mexc_spot() -> std::sync::Arc<marketprism_model::instruments::InstrumentTable> {
    static T: std::sync::OnceLock<marketprism_model::instruments::Instruments> =
        std::sync::OnceLock::new();
    T.get_or_init(|| {
        marketprism_venues::test_support::simulator_instruments(
            marketprism_model::Exchange::MexcSpot,
        )
    })
    .load()
}

pub fn mexc_contracts() -> std::sync::Arc<marketprism_model::instruments::InstrumentTable> {
    static T: std::sync::OnceLock<marketprism_model::instruments::Instruments> =
        std::sync::OnceLock::new();
    T.get_or_init(|| {
        marketprism_venues::test_support::simulator_instruments(
            marketprism_model::Exchange::MexcDerivatives,
        )
    })
    .load()
}
