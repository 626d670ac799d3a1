//! Venue parsers against the real recorded frames (tests/fixtures, copied from shared/fixtures/recorded).

mod common;

use common::{fixture, fixture_lines, fixtures_under, recorded_instruments};
use marketprism_model::{Decimal, Event, Exchange, MarketType, Payload, QuantityUnit, Side};
use marketprism_venues::book::BookSnapshot;
use marketprism_venues::parse::{Control, ParseErrorReason, Parsed};
use marketprism_venues::{binance, deribit, okx};

const RECV: i64 = 1_800_000_000_000;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn one_event(p: Parsed) -> Event {
    match p {
        Parsed::Event(e) => e,
        Parsed::Events(mut v) if v.len() == 1 => v.remove(0),
        other => panic!("expected one event, got {other:?}"),
    }
}

fn bn(ex: Exchange, text: &str) -> Parsed {
    binance::parse::parse_frame(&recorded_instruments(ex), ex, text, RECV)
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn binance_spot_agg_trade_combined_stream() {
    let text = fixture("binance_spot/aggTrade/bmoscon-cryptofeed__lrcbtc_aggTrade.jsonl");
    let e = one_event(bn(Exchange::BinanceSpot, &text));
    assert_eq!(
        (e.exchange, e.market_type, e.symbol.as_str()),
        (Exchange::BinanceSpot, MarketType::Spot, "LRC-BTC")
    );
    assert_eq!(e.ts_ms, 1633998534486);
    assert_eq!(e.recv_ts_ms, RECV);
    assert_eq!(e.subject(), "trade.binance_spot.spot.LRC-BTC");
    let Payload::Trade(t) = e.payload else {
        panic!()
    };
    assert_eq!(t.trade_id, "9213679");
    assert_eq!(
        t.price.to_string(),
        "0.00000638",
        "decimal text kept exactly"
    );
    assert_eq!(t.quantity, d("177"));
    assert_eq!(t.side, Side::Buy, "m=false: buyer is taker");
}

#[test]
fn binance_trades_raw_and_combined_all_fixtures() {
    for (ex, dir) in [
        (Exchange::BinanceSpot, "binance_spot/aggTrade"),
        (Exchange::BinanceSpot, "binance_spot/trade"),
        (Exchange::BinanceDerivatives, "binance_usdm/aggTrade"),
        (Exchange::BinanceDerivatives, "binance_usdm/trade"),
    ] {
        for file in fixtures_under(dir) {
            for line in fixture_lines(&file) {
                if file.contains("trade_stream_docexample") {
                    // Placeholder times (`T` 123456785, i.e. 1970): rejected, never stored.
                    let err =
                        binance::parse::parse_frame(&recorded_instruments(ex), ex, &line, RECV)
                            .unwrap_err();
                    assert_eq!(err.reason, ParseErrorReason::BadTime, "{file}: {err}");
                    continue;
                }
                let e = one_event(bn(ex, &line));
                assert!(matches!(e.payload, Payload::Trade(_)), "{file}");
                assert_eq!(
                    e.market_type,
                    if ex == Exchange::BinanceSpot {
                        MarketType::Spot
                    } else {
                        MarketType::Perpetual
                    }
                );
            }
        }
    }
    let e = one_event(bn(
        Exchange::BinanceSpot,
        &fixture("binance_spot/trade/nautilus_trader__ethusdt_trade.json"),
    ));
    let Payload::Trade(t) = e.payload else {
        panic!()
    };
    assert_eq!(
        (t.trade_id.as_str(), t.side),
        ("705291099", Side::Sell),
        "raw trade id `t`; m=true → taker sold"
    );
    let e = one_event(bn(
        Exchange::BinanceDerivatives,
        &fixture("binance_usdm/aggTrade/bmoscon-cryptofeed__akrousdt_aggTrade.jsonl"),
    ));
    assert_eq!(e.symbol.as_str(), "AKRO-USDT");
    assert_eq!(
        e.ts_ms, 1626992742134,
        "ts is the trade time T (the event time E is 1626992742291, 157 ms later)"
    );
}

#[test]
fn binance_depth_updates_with_and_without_pu() {
    let Parsed::BookUpdate(sym, u) = bn(
        Exchange::BinanceDerivatives,
        &fixture("binance_usdm/depthUpdate/crypto-msg-parser__btcusdt_depth100ms_single.json"),
    ) else {
        panic!()
    };
    assert_eq!(sym.as_str(), "BTC-USDT");
    assert_eq!(
        (u.first_id, u.last_id, u.prev_id),
        (475776377463, 475776380184, Some(475776377452))
    );
    assert_eq!(
        u.bids,
        vec![(d("35729.77"), d("1.600")), (d("35750.00"), d("5.106"))]
    );
    let Parsed::BookUpdate(_, u) = bn(
        Exchange::BinanceSpot,
        &fixture("binance_spot/depthUpdate/crypto-msg-parser__btcusdt_depth100ms_single.json"),
    ) else {
        panic!()
    };
    assert_eq!(u.prev_id, None, "spot has no pu");
    assert!(
        u.bids[0].1.is_zero(),
        "quantity 0 = delete, kept for the book"
    );
    for file in fixtures_under("binance_spot/depthUpdate")
        .into_iter()
        .chain(fixtures_under("binance_usdm/depthUpdate"))
    {
        let ex = if file.starts_with("binance_spot") {
            Exchange::BinanceSpot
        } else {
            Exchange::BinanceDerivatives
        };
        for line in fixture_lines(&file) {
            assert!(matches!(bn(ex, &line), Parsed::BookUpdate(..)), "{file}");
        }
    }
}

#[test]
fn binance_rest_depth_snapshots() {
    for file in fixtures_under("binance_spot/depth_snapshot")
        .into_iter()
        .chain(fixtures_under("binance_usdm/depth_snapshot"))
    {
        let s: BookSnapshot = binance::parse::parse_depth_snapshot(&fixture(&file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!s.bids.is_empty() && !s.asks.is_empty(), "{file}");
    }
    let s = binance::parse::parse_depth_snapshot(&fixture(
        "binance_usdm/depth_snapshot/bmoscon-cryptofeed__akrousdt_rest_depth1000.json",
    ))
    .unwrap();
    assert_eq!((s.last_id, s.ts_ms), (600859605486, Some(1626992741242)));
    assert_eq!(s.bids.len(), 609, "every level of the recorded reply");
}

#[test]
fn binance_mark_price_single_and_array() {
    let e = one_event(bn(
        Exchange::BinanceDerivatives,
        &fixture("binance_usdm/markPriceUpdate/crypto-msg-parser__btcusdt_markPrice.json"),
    ));
    let Payload::FundingRate(f) = &e.payload else {
        panic!()
    };
    assert_eq!(f.funding_rate, Some(d("0.00058455")));
    assert_eq!(f.funding_time_ms, 1617321600000);
    assert_eq!(f.mark_price, Some(d("58940.14924532")));
    assert_eq!(f.index_price, Some(d("58857.26693664")));
    let Parsed::Events(v) = bn(
        Exchange::BinanceDerivatives,
        &fixture("binance_usdm/markPriceUpdate/crypto-msg-parser__markPrice_arr.json"),
    ) else {
        panic!()
    };
    let syms: Vec<_> = v.iter().map(|e| e.symbol.as_str()).collect();
    assert_eq!(syms, ["BTC-USDT", "ETH-USDT"]);
    one_event(bn(
        Exchange::BinanceDerivatives,
        &fixture("binance_usdm/markPriceUpdate/nautilus_trader__mark_price_stream_docexample.json"),
    ));
}

#[test]
fn binance_force_orders() {
    let e = one_event(bn(
        Exchange::BinanceDerivatives,
        &fixture("binance_usdm/forceOrder/barter-rs__btcusdt_forceOrder.json"),
    ));
    let Payload::Liquidation(l) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (l.side, l.price, l.quantity),
        (Side::Sell, d("18990.00"), d("0.009")),
        "average price, filled quantity"
    );
    assert_eq!(e.ts_ms, 1665523974217, "the order's trade time o.T, not E");
    let lines = fixture_lines("binance_usdm/forceOrder/hummingbot__forceOrder_2msgs.jsonl");
    let e = one_event(bn(Exchange::BinanceDerivatives, &lines[0]));
    assert_eq!(e.symbol.as_str(), "GLM-USDT");
    let Payload::Liquidation(l) = &e.payload else {
        panic!()
    };
    assert_eq!((l.side, l.quantity), (Side::Buy, d("9970")));
}

#[test]
fn binance_rest_open_interest_and_long_short_ratios() {
    let usdm = recorded_instruments(Exchange::BinanceDerivatives);
    let e = binance::parse::parse_open_interest(
        &usdm,
        &fixture("binance_usdm/openInterest_rest/crypto-msg-parser__btcusdt_openInterest.json"),
        RECV,
    )
    .unwrap();
    assert_eq!((e.symbol.as_str(), e.ts_ms), ("BTC-USDT", 1654336844754));
    let Payload::OpenInterest(oi) = &e.payload else {
        panic!()
    };
    assert_eq!(oi.open_interest, d("84617.188"));
    use binance::parse::{RatioKind, parse_long_short};
    let top = parse_long_short(&usdm, &fixture("binance_usdm/topLongShortPositionRatio_rest/nautilus_trader__top_long_short_position_ratio_docexample.json"), RatioKind::TopPositions, "5m", RECV).unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(top[0].ts_ms, 1583139600000);
    let Payload::LsrTopPosition(r) = &top[0].payload else {
        panic!()
    };
    assert_eq!(
        (r.long_short_ratio, r.long_ratio, r.period.as_str()),
        (d("1.4342"), Some(d("0.5891")), "5m")
    );
    let all = parse_long_short(&usdm, &fixture("binance_usdm/globalLongShortAccountRatio_rest/nautilus_trader__global_long_short_account_ratio_docexample.json"), RatioKind::AllAccounts, "5m", RECV).unwrap();
    assert!(matches!(all[1].payload, Payload::LsrAllAccount(_)));
    // COIN-M names: longPosition/shortPosition; numeric timestamp.
    let coinm = r#"[{"symbol":"BTCUSD","longShortRatio":"1.2","longPosition":"0.6","shortPosition":"0.4","timestamp":1583139600000}]"#;
    let v = parse_long_short(&usdm, coinm, RatioKind::TopPositions, "5m", RECV).unwrap();
    let Payload::LsrTopPosition(r) = &v[0].payload else {
        panic!()
    };
    assert_eq!(
        (r.long_ratio, r.short_ratio),
        (Some(d("0.6")), Some(d("0.4")))
    );
}

#[test]
fn binance_control_frames() {
    assert_eq!(
        bn(Exchange::BinanceSpot, r#"{"result":null,"id":1}"#),
        Parsed::Control(Control::Ack { id: "1".into() })
    );
    let Parsed::Control(Control::Error { code, msg, .. }) = bn(
        Exchange::BinanceSpot,
        r#"{"code":2,"msg":"Invalid request: unknown variant \"x\"","id":1}"#,
    ) else {
        panic!()
    };
    assert_eq!(code, "2");
    assert!(msg.contains("\"x\""), "escaped text is unescaped: {msg}");
    assert_eq!(
        bn(
            Exchange::BinanceSpot,
            r#"{"e":"serverShutdown","E":1770123456789}"#
        ),
        Parsed::Control(Control::ServerShutdown {
            ts_ms: 1770123456789
        })
    );
}

#[test]
fn binance_bad_frames_are_typed_errors() {
    let cases = [
        ("not json", ParseErrorReason::InvalidJson),
        (
            r#"{"e":"aggTrade","E":1,"T":1700000000000,"s":"BTCUSDT","a":1,"p":"x","q":"1","m":true}"#,
            ParseErrorReason::BadDecimal,
        ),
        (
            r#"{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"q":"1","m":true}"#,
            ParseErrorReason::MissingField,
        ),
        (
            r#"{"e":"aggTrade","E":1,"s":"NOPE","a":1,"p":"1","q":"1","m":true}"#,
            ParseErrorReason::BadSymbol,
        ),
        (r#"{"e":"kline","E":1}"#, ParseErrorReason::UnknownMessage),
        (
            r#"{"e":"aggTrade","E":1,"s":"BTCUSDT","a":-1,"p":"1","q":"1","m":true}"#,
            ParseErrorReason::BadNumber,
        ),
        (
            r#"{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"HOLD","p":"1","q":"1","T":1700000000000}}"#,
            ParseErrorReason::BadSide,
        ),
        ("{}", ParseErrorReason::UnknownMessage),
    ];
    for (text, reason) in cases {
        let err = binance::parse::parse_frame(
            &recorded_instruments(Exchange::BinanceSpot),
            Exchange::BinanceSpot,
            text,
            RECV,
        )
        .unwrap_err();
        assert_eq!(err.reason, reason, "{text}: {err}");
    }
}

fn ok(text: &str) -> Parsed {
    okx::parse::parse_frame(
        &recorded_instruments(Exchange::OkxSpot),
        Exchange::OkxSpot,
        text,
        RECV,
    )
    .unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn okx_books_snapshot_update_and_rest() {
    let Parsed::BookSnapshot(sym, s) = ok(&fixture(
        "okx/books/nautilus_trader__books_snapshot_docexample.json",
    )) else {
        panic!()
    };
    assert_eq!(sym.as_str(), "BTC-USDT");
    assert_eq!(
        (s.last_id, s.checksum, s.ts_ms),
        (123456, Some(-855196043), Some(1597026383085))
    );
    assert_eq!(
        s.asks[0],
        (d("8476.98"), d("415")),
        "4-element levels: price and size only"
    );
    let Parsed::BookUpdate(_, u) = ok(&fixture(
        "okx/books/nautilus_trader__books_update_docexample.json",
    )) else {
        panic!()
    };
    assert_eq!((u.last_id, u.prev_id), (123457, Some(123456)));
    let Parsed::BookSnapshot(sym, _) = ok(&fixture(
        "okx/books/crypto-msg-parser__books-l2-tbt_BTC-USD-SWAP_snapshot_truncated.json",
    )) else {
        panic!()
    };
    assert_eq!(sym.as_str(), "BTC-USD", "never -SWAP");
    for line in fixture_lines("okx/books/bmoscon-cryptofeed__BTC-USDT_books.jsonl") {
        assert!(matches!(
            ok(&line),
            Parsed::BookSnapshot(..) | Parsed::BookUpdate(..)
        ));
    }
    let zero = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"ts":"1700000000001","checksum":0,"prevSeqId":15,"seqId":15}]}"#;
    let Parsed::BookUpdate(_, u) = ok(zero) else {
        panic!()
    };
    assert_eq!(u.checksum, None, "checksum 0 means absent");
    let rest = r#"{"code":"0","msg":"","data":[{"asks":[["41006.8","0.60038921","0","1"]],"bids":[["41006.3","0.30178218","0","2"]],"ts":"1629966436396","seqId":3235851742}]}"#;
    let s = okx::parse::parse_rest_books(rest).unwrap();
    assert_eq!((s.last_id, s.bids[0].0), (3235851742, d("41006.3")));
    let err =
        okx::parse::parse_rest_books(r#"{"code":"50011","msg":"Too Many Requests","data":[]}"#)
            .unwrap_err();
    assert_eq!(err.reason, ParseErrorReason::VenueError);
}

#[test]
fn okx_trades_funding_open_interest_liquidations() {
    for file in fixtures_under("okx/trades") {
        for line in fixture_lines(&file) {
            assert!(
                matches!(ok(&line), Parsed::Events(v) if !v.is_empty()),
                "{file}"
            );
        }
    }
    let e = one_event(ok(&fixture(
        "okx/trades/crypto-msg-parser__BTC-USDT-SWAP_trades.json",
    )));
    assert_eq!(
        (e.symbol.as_str(), e.market_type, e.ts_ms),
        ("BTC-USDT", MarketType::Perpetual, 1646312440645)
    );
    let Payload::Trade(t) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (t.trade_id.as_str(), t.price, t.side),
        ("219066264", d("43568.8"), Side::Buy)
    );
    for file in fixtures_under("okx/funding-rate") {
        assert!(
            matches!(
                one_event(ok(&fixture(&file))).payload,
                Payload::FundingRate(_)
            ),
            "{file}"
        );
    }
    let e = one_event(ok(&fixture(
        "okx/funding-rate/nautilus_trader__BTC-USDT-SWAP_funding-rate.json",
    )));
    let Payload::FundingRate(f) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (f.funding_rate, f.funding_time_ms, f.next_funding_time_ms),
        (Some(d("0.0001")), 1744590349506, Some(1744619149506))
    );
    let oi = r#"{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","instType":"SWAP","oi":"2216113.01000000309","oiCcy":"22161.1301000000309","oiUsd":"1939251795.54769270396321","ts":"1743041250440"}]}"#;
    let e = one_event(ok(oi));
    let Payload::OpenInterest(o) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (o.open_interest, o.raw_open_interest, o.open_interest_unit),
        (
            d("22161.1301000000309"),
            d("2216113.01000000309"),
            QuantityUnit::Contracts
        ),
        "base units from oiCcy; the venue's contracts kept raw"
    );
    let rest = okx::parse::parse_rest_open_interest(
        &recorded_instruments(Exchange::OkxDerivatives),
        &fixture("okx/open-interest/crypto-msg-parser__rest_open-interest_BTC-USD-SWAP.json"),
        RECV,
    )
    .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[1].symbol.as_str(), "ETH-USD");
    let liq = r#"{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}"#;
    let e = one_event(ok(liq));
    let Payload::Liquidation(l) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (e.symbol.as_str(), l.side, l.price, e.ts_ms),
        ("IOST-USDT", Side::Buy, d("0.007831"), 1692266434010)
    );
}

#[test]
fn okx_rubik_ratios_and_control() {
    use okx::parse::{RatioKind, parse_rubik_ratio};
    let sym = marketprism_model::Symbol::new("BTC-USDT").unwrap();
    let v = parse_rubik_ratio(
        r#"{"code":"0","msg":"","data":[["1701417600000","1.1739"],["1701417300000","1.1"]]}"#,
        &sym,
        MarketType::Perpetual,
        RatioKind::TopPositions,
        "5m",
        RECV,
    )
    .unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].ts_ms, 1701417600000);
    assert!(
        matches!(&v[0].payload, Payload::LsrTopPosition(r) if r.long_short_ratio == d("1.1739"))
    );
    assert_eq!(ok("pong"), Parsed::Control(Control::Pong));
    let ack = r#"{"id":"1512","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"connId":"a4d3ae55"}"#;
    assert_eq!(
        ok(ack),
        Parsed::Control(Control::Ack {
            id: "books:BTC-USDT-SWAP".into()
        })
    );
    let err = r#"{"id":"1512","event":"error","code":"60012","msg":"Invalid request: ...","connId":"a4d3ae55"}"#;
    assert!(matches!(ok(err), Parsed::Control(Control::Error { code, .. }) if code == "60012"));
    let e = okx::parse::parse_frame(
        &recorded_instruments(Exchange::OkxSpot),
        Exchange::OkxSpot,
        r#"{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}"#,
        RECV,
    )
    .unwrap_err();
    assert_eq!(e.reason, ParseErrorReason::UnknownMessage);
}

fn dr(text: &str) -> Parsed {
    deribit::parse::parse_frame(
        &recorded_instruments(Exchange::DeribitDerivatives),
        text,
        RECV,
    )
    .unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn deribit_dvol_heartbeat_books_trades_rpc() {
    let e = one_event(dr(&fixture(
        "deribit/deribit_volatility_index/nautilus_trader__btc_usd_dvol_docexample.json",
    )));
    assert_eq!(
        (e.exchange, e.market_type, e.symbol.as_str(), e.ts_ms),
        (
            Exchange::DeribitDerivatives,
            MarketType::Options,
            "BTC-USD",
            1619777946007
        )
    );
    let Payload::VolatilityIndex(v) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (v.volatility.to_string().as_str(), v.index_name.as_str()),
        ("129.36", "btc_usd"),
        "number text → exact decimal"
    );
    assert_eq!(
        dr(&fixture(
            "deribit/heartbeat/nautilus_trader__test_request_docexample.json"
        )),
        Parsed::Control(Control::TestRequest)
    );
    assert_eq!(
        dr(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#),
        Parsed::Control(Control::Heartbeat)
    );
    let lines =
        fixture_lines("deribit/book/bmoscon-cryptofeed__BTC-31DEC21-34000-P_book_raw.jsonl");
    let Parsed::BookSnapshot(sym, s) = dr(&lines[0]) else {
        panic!()
    };
    assert_eq!(sym.as_str(), "BTC-USD-31DEC21-34000-P");
    assert_eq!(
        (s.last_id, s.bids[0]),
        (33195894133, (d("0.2325"), d("0.8")))
    );
    let Parsed::BookUpdate(_, u) = dr(&lines[2]) else {
        panic!()
    };
    assert_eq!((u.last_id, u.prev_id), (33195896354, Some(33195894765)));
    assert_eq!(u.asks[0], (d("0.239"), Decimal::ZERO), "delete → size 0");
    let trades = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms","data":[{"trade_seq":1,"trade_id":"ETH-123","timestamp":1590484156350,"tick_direction":0,"price":8950.5,"instrument_name":"BTC-PERPETUAL","index_price":8955.88,"direction":"sell","amount":10.0}]}}"#;
    let e = one_event(dr(trades));
    let Payload::Trade(t) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (e.symbol.as_str(), t.price, t.side),
        ("BTC-USD", d("8950.5"), Side::Sell)
    );
    assert_eq!(
        dr(
            r#"{"jsonrpc":"2.0","id":42,"result":["deribit_volatility_index.btc_usd"],"usIn":1,"usOut":2,"usDiff":1,"testnet":false}"#
        ),
        Parsed::Control(Control::Subscribed {
            id: "42".into(),
            channels: vec!["deribit_volatility_index.btc_usd".into()]
        })
    );
    assert_eq!(
        dr(
            r#"{"jsonrpc":"2.0","id":3997,"result":[],"usIn":1,"usOut":2,"usDiff":1,"testnet":true}"#
        ),
        Parsed::Control(Control::Subscribed {
            id: "3997".into(),
            channels: vec![]
        }),
        "a channel the venue cannot serve is left out of the result (go-deribit#16)"
    );
    assert_eq!(
        dr(r#"{"jsonrpc":"2.0","id":1,"result":"ok"}"#),
        Parsed::Control(Control::Ack { id: "1".into() }),
        "set_heartbeat answers ok"
    );
    assert!(
        matches!(dr(r#"{"jsonrpc":"2.0","id":7,"error":{"code":11050,"message":"bad_request"}}"#), Parsed::Control(Control::Error { code, .. }) if code == "11050")
    );
}
