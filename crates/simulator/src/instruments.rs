//! The simulated venues' instrument lists, in each venue's own wire shape (Binance `exchangeInfo`,
//! OKX `public/instruments`, Deribit `public/get_instruments`), written from the venues' documented
//! fields, not from our parsers. They include the cases string heuristics get wrong: `BNBUSD` (BNB/USD,
//! not BN/BUSD), `BTCEURI` (a quote no suffix list has), OKX dated futures (`BTC-USD-220527`) and
//! inverse/linear contracts with their `ctVal`/`ctValCcy`/`ctType`.

use marketprism_model::Exchange;
use serde_json::{Value, json};

/// MEXC spot: (symbol, base, quote, status: "1" online, "2" paused, "3" offline).
const MEXC_SPOT: &[(&str, &str, &str, &str)] = &[
    ("BTCUSDT", "BTC", "USDT", "1"),
    ("ETHUSDT", "ETH", "USDT", "1"),
    ("SOLUSDT", "SOL", "USDT", "1"),
    ("MXUSDT", "MX", "USDT", "1"),
    ("BTCUSDC", "BTC", "USDC", "1"),
    ("OLDUSDT", "OLD", "USDT", "3"),
];

/// MEXC contracts: (symbol, baseCoin, quoteCoin, settleCoin, contractSize, state: 0 enabled).
const MEXC_CONTRACTS: &[(&str, &str, &str, &str, f64, i64)] = &[
    ("BTC_USDT", "BTC", "USDT", "USDT", 0.0001, 0),
    ("ETH_USDT", "ETH", "USDT", "USDT", 0.01, 0),
    ("SOL_USDT", "SOL", "USDT", "USDT", 0.1, 0),
    ("BTC_USD", "BTC", "USD", "BTC", 100.0, 0),
    ("LUNA_USDT", "LUNA", "USDT", "USDT", 1.0, 3),
];

/// Binance spot: (symbol, base, quote, tickSize, stepSize).
const BINANCE_SPOT: &[(&str, &str, &str, &str, &str)] = &[
    ("BTCUSDT", "BTC", "USDT", "0.01000000", "0.00001000"),
    ("ETHUSDT", "ETH", "USDT", "0.01000000", "0.00010000"),
    ("SOLUSDT", "SOL", "USDT", "0.01000000", "0.00100000"),
    ("XRPUSDT", "XRP", "USDT", "0.00010000", "0.10000000"),
    ("DOGEUSDT", "DOGE", "USDT", "0.00001000", "1.00000000"),
    ("ADAUSDT", "ADA", "USDT", "0.00010000", "0.10000000"),
    ("BNBUSDT", "BNB", "USDT", "0.01000000", "0.00100000"),
    ("BNBUSD", "BNB", "USD", "0.01000000", "0.00100000"),
    ("BTCEURI", "BTC", "EURI", "0.01000000", "0.00001000"),
    ("ETHFDUSD", "ETH", "FDUSD", "0.01000000", "0.00010000"),
    ("LRCBTC", "LRC", "BTC", "0.00000001", "1.00000000"),
    ("BLZETH", "BLZ", "ETH", "0.00000001", "1.00000000"),
    ("AKROUSDT", "AKRO", "USDT", "0.00000100", "1.00000000"),
];

/// Binance USD-M: (symbol, base, quote, contractType).
const BINANCE_USDM: &[(&str, &str, &str, &str)] = &[
    ("BTCUSDT", "BTC", "USDT", "PERPETUAL"),
    ("ETHUSDT", "ETH", "USDT", "PERPETUAL"),
    ("SOLUSDT", "SOL", "USDT", "PERPETUAL"),
    ("XRPUSDT", "XRP", "USDT", "PERPETUAL"),
    ("DOGEUSDT", "DOGE", "USDT", "PERPETUAL"),
    ("ADAUSDT", "ADA", "USDT", "PERPETUAL"),
    ("BNBUSDT", "BNB", "USDT", "PERPETUAL"),
    ("AKROUSDT", "AKRO", "USDT", "PERPETUAL"),
    ("CTKUSDT", "CTK", "USDT", "PERPETUAL"),
    ("BTCUSDT_250627", "BTC", "USDT", "CURRENT_QUARTER"),
];

/// OKX spot pairs (instId = base-quote).
const OKX_SPOT: &[&str] = &[
    "BTC-USDT",
    "ETH-USDT",
    "SOL-USDT",
    "XRP-USDT",
    "DOGE-USDT",
    "ADA-USDT",
    "IOST-USDT",
    "AKRO-USDT",
    "BTC-USD",
];

/// OKX SWAP/FUTURES: (instType, instId, family, ctVal, ctValCcy, ctType).
const OKX_DERIVATIVES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("SWAP", "BTC-USDT-SWAP", "BTC-USDT", "0.01", "BTC", "linear"),
    ("SWAP", "ETH-USDT-SWAP", "ETH-USDT", "0.1", "ETH", "linear"),
    ("SWAP", "SOL-USDT-SWAP", "SOL-USDT", "1", "SOL", "linear"),
    ("SWAP", "XRP-USDT-SWAP", "XRP-USDT", "100", "XRP", "linear"),
    (
        "SWAP",
        "DOGE-USDT-SWAP",
        "DOGE-USDT",
        "1000",
        "DOGE",
        "linear",
    ),
    ("SWAP", "ADA-USDT-SWAP", "ADA-USDT", "100", "ADA", "linear"),
    (
        "SWAP",
        "IOST-USDT-SWAP",
        "IOST-USDT",
        "1000",
        "IOST",
        "linear",
    ),
    ("SWAP", "BTC-USD-SWAP", "BTC-USD", "100", "USD", "inverse"),
    ("SWAP", "ETH-USD-SWAP", "ETH-USD", "10", "USD", "inverse"),
    (
        "FUTURES",
        "BTC-USD-220527",
        "BTC-USD",
        "100",
        "USD",
        "inverse",
    ),
    (
        "FUTURES",
        "BTC-USDT-220527",
        "BTC-USDT",
        "0.01",
        "BTC",
        "linear",
    ),
];

/// Deribit: (instrument_name, kind, settlement_period, base, quote, instrument_type).
const DERIBIT: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "BTC-PERPETUAL",
        "future",
        "perpetual",
        "BTC",
        "USD",
        "reversed",
    ),
    (
        "ETH-PERPETUAL",
        "future",
        "perpetual",
        "ETH",
        "USD",
        "reversed",
    ),
    (
        "BTC_USDC-PERPETUAL",
        "future",
        "perpetual",
        "BTC",
        "USDC",
        "linear",
    ),
    ("BTC-27JUN25", "future", "quarter", "BTC", "USD", "reversed"),
    (
        "BTC-31DEC21-34000-P",
        "option",
        "month",
        "BTC",
        "USD",
        "reversed",
    ),
];

/// Gate spot pairs: (id, base, quote, precision, amount_precision, trade_status).
const GATE_SPOT: &[(&str, &str, &str, u32, u32, &str)] = &[
    ("BTC_USDT", "BTC", "USDT", 1, 3, "tradable"),
    ("ETH_USDT", "ETH", "USDT", 2, 3, "tradable"),
    ("SOL_USDT", "SOL", "USDT", 3, 3, "tradable"),
    ("OLD_USDT", "OLD", "USDT", 3, 3, "untradable"),
];

/// Gate USDT perpetual contracts: (name, order_price_round). Every contract is worth 0.001 base.
const GATE_CONTRACTS: &[(&str, &str)] = &[
    ("BTC_USDT", "0.1"),
    ("ETH_USDT", "0.01"),
    ("SOL_USDT", "0.001"),
];

/// Whether Gate lists (and trades) a pair or contract by its venue name.
pub(crate) fn gate_lists(exchange: Exchange, name: &str) -> bool {
    if exchange == Exchange::GateSpot {
        GATE_SPOT.iter().any(|r| r.0 == name && r.5 != "untradable")
    } else {
        GATE_CONTRACTS.iter().any(|r| r.0 == name)
    }
}

/// Drop the instruments `hidden` names from a list body, whatever the venue's shape (Binance
/// `symbols[].symbol`, OKX `data[].instId`, Deribit `result[].instrument_name`).
pub(crate) fn leave_out(list: &mut Value, hidden: impl Fn(&str) -> bool) {
    for (array, key) in [
        ("symbols", "symbol"),
        ("data", "instId"),
        ("data", "symbol"),
        ("result", "instrument_name"),
    ] {
        if let Some(items) = list.get_mut(array).and_then(Value::as_array_mut) {
            items.retain(|i| !i.get(key).and_then(Value::as_str).is_some_and(&hidden));
        }
    }
    // Gate lists are bare arrays: spot rows named by `id`, contracts by `name`.
    if let Some(items) = list.as_array_mut() {
        items.retain(|i| {
            !["id", "name"]
                .iter()
                .any(|k| i.get(*k).and_then(Value::as_str).is_some_and(&hidden))
        });
    }
}

/// The list body a venue serves at `path` (`None`: not a list path of this venue).
pub fn listing(exchange: Exchange, path: &str, inst_type: Option<&str>) -> Option<Value> {
    match (exchange, path) {
        (Exchange::BinanceSpot, "/api/v3/exchangeInfo") => Some(json!({
            "timezone": "UTC",
            "serverTime": super::now_ms(),
            "rateLimits": [],
            "symbols": BINANCE_SPOT.iter().map(|(s, b, q, tick, step)| json!({
                "symbol": s, "status": "TRADING", "baseAsset": b, "baseAssetPrecision": 8,
                "quoteAsset": q, "quotePrecision": 8,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
                    {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step}
                ]
            })).collect::<Vec<_>>()
        })),
        (Exchange::BinanceDerivatives, "/fapi/v1/exchangeInfo") => Some(json!({
            "timezone": "UTC",
            "serverTime": super::now_ms(),
            "symbols": BINANCE_USDM.iter().map(|(s, b, q, ct)| json!({
                "symbol": s, "pair": format!("{b}{q}"), "contractType": ct, "status": "TRADING",
                "baseAsset": b, "quoteAsset": q, "marginAsset": q,
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.10"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.001"}
                ]
            })).collect::<Vec<_>>()
        })),
        (Exchange::OkxSpot | Exchange::OkxDerivatives, "/api/v5/public/instruments") => {
            let data: Vec<Value> = match (exchange, inst_type?) {
                (_, "SPOT") => OKX_SPOT
                    .iter()
                    .map(|id| {
                        let (b, q) = id.split_once('-').unwrap_or((id, ""));
                        json!({"instType": "SPOT", "instId": id, "uly": "", "instFamily": "",
                            "baseCcy": b, "quoteCcy": q, "settleCcy": "", "ctVal": "", "ctMult": "",
                            "ctValCcy": "", "ctType": "", "tickSz": "0.1", "lotSz": "0.00000001",
                            "state": "live", "expTime": ""})
                    })
                    .collect(),
                (_, t) => OKX_DERIVATIVES
                    .iter()
                    .filter(|r| r.0 == t)
                    .map(|(t, id, fam, ct_val, ccy, ct_type)| {
                        json!({"instType": t, "instId": id, "uly": fam, "instFamily": fam,
                            "baseCcy": "", "quoteCcy": "", "settleCcy": if *ct_type == "inverse" { fam.split('-').next().unwrap_or("") } else { "USDT" },
                            "ctVal": ct_val, "ctMult": "1", "ctValCcy": ccy, "ctType": ct_type,
                            "tickSz": "0.1", "lotSz": "1", "state": "live",
                            "expTime": if *t == "FUTURES" { "1653638400000" } else { "" }})
                    })
                    .collect(),
            };
            Some(json!({"code": "0", "msg": "", "data": data}))
        }
        (Exchange::DeribitDerivatives, "/api/v2/public/get_instruments") => Some(json!({
            "jsonrpc": "2.0",
            "result": DERIBIT.iter().map(|(name, kind, period, b, q, ty)| json!({
                "instrument_name": name, "kind": kind, "settlement_period": period,
                "base_currency": b, "quote_currency": q, "counter_currency": q,
                "instrument_type": ty, "is_active": true,
                "contract_size": if *ty == "reversed" && *kind == "future" { 10.0 } else { 1.0 },
                "tick_size": 0.5, "min_trade_amount": if *ty == "reversed" && *kind == "future" { 10.0 } else { 0.1 }
            })).collect::<Vec<_>>(),
            "usIn": 0, "usOut": 0, "usDiff": 0, "testnet": false
        })),
        (Exchange::GateSpot, "/api/v4/spot/currency_pairs") => Some(Value::Array(
            GATE_SPOT
                .iter()
                .map(|(id, b, q, p, ap, status)| {
                    json!({
                        "id": id, "base": b, "quote": q, "fee": "0.2", "min_base_amount": "0.001",
                        "min_quote_amount": "1", "amount_precision": ap, "precision": p,
                        "trade_status": status, "sell_start": 0, "buy_start": 0
                    })
                })
                .collect(),
        )),
        (Exchange::GateDerivatives, "/api/v4/futures/usdt/contracts") => Some(Value::Array(
            GATE_CONTRACTS
                .iter()
                .map(|(name, round)| {
                    json!({
                        "name": name, "type": "direct", "quanto_multiplier": "0.001",
                        "order_price_round": round, "order_size_min": 1, "in_delisting": false,
                        "funding_interval": 28800, "mark_type": "index", "status": "trading"
                    })
                })
                .collect(),
        )),
        (Exchange::MexcSpot, "/api/v3/exchangeInfo") => Some(json!({
            "timezone": "CST",
            "serverTime": super::now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": MEXC_SPOT.iter().map(|(s, b, q, status)| json!({
                "symbol": s, "status": status, "baseAsset": b, "baseAssetPrecision": 8,
                "quoteAsset": q, "quotePrecision": 2, "quoteAssetPrecision": 2,
                "baseCommissionPrecision": 8, "quoteCommissionPrecision": 2,
                "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"], "isSpotTradingAllowed": true,
                "isMarginTradingAllowed": false, "quoteAmountPrecision": "1.000000000000000000",
                "baseSizePrecision": "0.000001", "permissions": ["SPOT"], "filters": [],
                "maxQuoteAmount": "2000000.000000000000000000", "makerCommission": "0",
                "takerCommission": "0.0005", "tradeSideType": 1
            })).collect::<Vec<_>>()
        })),
        (Exchange::MexcDerivatives, "/api/v1/contract/detail") => Some(json!({
            "success": true,
            "code": 0,
            "data": MEXC_CONTRACTS.iter().map(|(s, b, q, settle, size, state)| json!({
                "symbol": s, "displayName": format!("{s} perpetual"), "displayNameEn": format!("{s} PERPETUAL"),
                "positionOpenType": 3, "baseCoin": b, "quoteCoin": q, "settleCoin": settle,
                "contractSize": size, "minLeverage": 1, "maxLeverage": 200, "priceScale": 1,
                "volScale": 0, "amountScale": 4, "priceUnit": 0.1, "volUnit": 1, "minVol": 1,
                "maxVol": 1000000, "state": state, "isNew": false, "isHot": true, "isHidden": false
            })).collect::<Vec<_>>()
        })),
        _ => None,
    }
}
