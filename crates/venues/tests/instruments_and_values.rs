//! Instruments from the venue's list and exact values, per issue 10 (sections 1 and 3), on real
//! recorded frames and on frames shaped exactly like the venue's: each case with the right value.

mod common;

use common::{fixture, recorded_instruments};
use marketprism_model::{DataType, Decimal, Event, Exchange, MarketType, Payload, QuantityUnit};
use marketprism_venues::parse::{ParseError, ParseErrorReason, Parsed};
use marketprism_venues::{binance, deribit, okx};

const RECV: i64 = 1_700_000_000_500;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn events(p: Parsed) -> Vec<Event> {
    match p {
        Parsed::Event(e) => vec![e],
        Parsed::Events(v) => v,
        other => panic!("expected events, got {other:?}"),
    }
}

fn binance(ex: Exchange, text: &str) -> Result<Parsed, ParseError> {
    binance::parse::parse_frame(&recorded_instruments(ex), ex, text, RECV)
}

fn okx(text: &str) -> Result<Parsed, ParseError> {
    okx::parse::parse_frame(
        &recorded_instruments(Exchange::OkxDerivatives),
        Exchange::OkxDerivatives,
        text,
        RECV,
    )
}

fn agg_trade(symbol: &str, id: u64, e: i64, t: i64, p: &str, q: &str) -> String {
    format!(
        r#"{{"e":"aggTrade","E":{e},"a":{id},"s":"{symbol}","p":"{p}","q":"{q}","f":1,"l":1,"T":{t},"m":false}}"#
    )
}

#[test]
fn binance_symbols_come_from_the_venue_list_not_quote_suffixes() {
    // BNBUSD is BNB/USD (suffix matching made it BN-BUSD); BTCEURI's quote is in no suffix list.
    for (venue, ours) in [("BNBUSD", "BNB-USD"), ("BTCEURI", "BTC-EURI")] {
        let text = agg_trade(venue, 7, 1_700_000_000_100, 1_700_000_000_000, "600.5", "1");
        let e = events(binance(Exchange::BinanceSpot, &text).unwrap()).remove(0);
        assert_eq!((e.symbol.as_str(), e.market_type), (ours, MarketType::Spot));
    }
    let unlisted = agg_trade("BNBBUSD", 1, 1_700_000_000_100, 1_700_000_000_000, "1", "1");
    let err = binance(Exchange::BinanceSpot, &unlisted).unwrap_err();
    assert_eq!(err.reason, ParseErrorReason::BadSymbol, "{err}");
}

#[test]
fn binance_ts_is_the_trade_time_not_the_event_time() {
    // Three fills of one trade time pushed in events 20, 90 and 156 ms later: one stamp.
    let t = 1_700_000_000_000;
    for (id, e) in [(1, t + 20), (2, t + 90), (3, t + 156)] {
        let text = agg_trade("BTCUSDT", id, e, t, "42000", "0.1");
        let ev = events(binance(Exchange::BinanceDerivatives, &text).unwrap()).remove(0);
        assert_eq!(ev.ts_ms, t, "aggTrade `T`");
    }
    let raw_trade = r#"{"e":"trade","E":1700000000150,"s":"BTCUSDT","t":9,"p":"42000","q":"0.1","T":1700000000001,"m":true}"#;
    let ev = events(binance(Exchange::BinanceSpot, raw_trade).unwrap()).remove(0);
    assert_eq!(ev.ts_ms, 1_700_000_000_001, "trade `T`");
    let liq = r#"{"e":"forceOrder","E":1700000000300,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.5","p":"41000","ap":"41010","X":"FILLED","l":"0.5","z":"0.5","T":1700000000200}}"#;
    let ev = events(binance(Exchange::BinanceDerivatives, liq).unwrap()).remove(0);
    assert_eq!(ev.ts_ms, 1_700_000_000_200, "forceOrder `o.T`");
}

#[test]
fn a_microsecond_time_is_rejected_and_names_its_stream() {
    let text = agg_trade(
        "BTCUSDT",
        44,
        1_700_000_000_100,
        1_700_000_000_000_123,
        "42000",
        "1",
    );
    let err = binance(Exchange::BinanceSpot, &text).unwrap_err();
    assert_eq!(err.reason, ParseErrorReason::BadTime, "{err}");
    assert!(err.detail.contains("microseconds"), "{err}");
    let st = err.stream.expect("the stream the rejected fact belongs to");
    assert_eq!(
        (st.data_type, st.symbol.as_str(), st.market_type),
        (DataType::Trades, "BTC-USDT", MarketType::Spot)
    );
}

#[test]
fn values_the_schema_cannot_hold_are_rejected_never_rounded() {
    let tiny_qty = agg_trade(
        "BTCUSDT",
        1,
        1_700_000_000_100,
        1_700_000_000_000,
        "42000",
        "0.000000000000000000000000000001",
    );
    let err = binance(Exchange::BinanceSpot, &tiny_qty).unwrap_err();
    assert_eq!(err.reason, ParseErrorReason::OutOfRange, "{err}");
    assert_eq!(err.stream.unwrap().data_type, DataType::Trades);
    let long_price = agg_trade(
        "BTCUSDT",
        2,
        1_700_000_000_100,
        1_700_000_000_000,
        "42000.1234567890123456789",
        "1",
    );
    let err = binance(Exchange::BinanceSpot, &long_price).unwrap_err();
    assert_eq!(err.reason, ParseErrorReason::OutOfRange, "{err}");
    // 18 fractional digits fit exactly and are kept.
    let fits = agg_trade(
        "BTCUSDT",
        3,
        1_700_000_000_100,
        1_700_000_000_000,
        "42000.5",
        "0.000000000000000001",
    );
    let Payload::Trade(t) = events(binance(Exchange::BinanceSpot, &fits).unwrap())
        .remove(0)
        .payload
    else {
        panic!()
    };
    assert_eq!(t.quantity.to_string(), "0.000000000000000001");
}

#[test]
fn okx_contract_sizes_are_stored_in_base_units_with_the_raw_size_beside() {
    // Recorded: BTC-USDT-SWAP, 7 contracts of 0.01 BTC.
    let e = events(
        okx(&fixture(
            "okx/trades/crypto-msg-parser__BTC-USDT-SWAP_trades.json",
        ))
        .unwrap(),
    )
    .remove(0);
    let Payload::Trade(t) = &e.payload else {
        panic!()
    };
    assert_eq!(e.market_type, MarketType::Perpetual);
    assert_eq!(
        (t.quantity, t.raw_quantity, t.quantity_unit),
        (d("0.07"), d("7"), QuantityUnit::Contracts)
    );
    // Inverse: 4 contracts of 100 USD at 40000 USD/BTC = 0.01 BTC.
    let inverse = r#"{"arg":{"channel":"trades","instId":"BTC-USD-SWAP"},"data":[{"instId":"BTC-USD-SWAP","tradeId":"5","px":"40000","sz":"4","side":"sell","ts":"1700000000000"}]}"#;
    let Payload::Trade(t) = events(okx(inverse).unwrap()).remove(0).payload else {
        panic!()
    };
    assert_eq!((t.quantity, t.raw_quantity), (d("0.01"), d("4")));
    // Spot sizes are base already.
    let spot = okx::parse::parse_frame(
        &recorded_instruments(Exchange::OkxSpot),
        Exchange::OkxSpot,
        &fixture("okx/trades/nautilus_trader__BTC-USD_trades.json"),
        RECV,
    )
    .unwrap();
    let Payload::Trade(t) = events(spot).remove(0).payload else {
        panic!()
    };
    assert_eq!(
        (t.quantity, t.quantity_unit),
        (d("0.12060306"), QuantityUnit::Base)
    );
    // Liquidations too: 13 contracts of 1000 IOST.
    let liq = r#"{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}"#;
    let Payload::Liquidation(l) = events(okx(liq).unwrap()).remove(0).payload else {
        panic!()
    };
    assert_eq!(
        (l.quantity, l.raw_quantity, l.quantity_unit),
        (d("13000"), d("13"), QuantityUnit::Contracts)
    );
}

#[test]
fn okx_dated_futures_are_futures() {
    let frame = r#"{"arg":{"channel":"trades","instId":"BTC-USD-220527"},"data":[{"instId":"BTC-USD-220527","tradeId":"11","px":"40000","sz":"2","side":"buy","ts":"1652000000000"}]}"#;
    let e = events(okx(frame).unwrap()).remove(0);
    assert_eq!(
        (e.symbol.as_str(), e.market_type),
        ("BTC-USD-220527", MarketType::Futures)
    );
    assert_eq!(e.subject(), "trade.okx_derivatives.futures.BTC-USD-220527");
    let liq = r#"{"arg":{"channel":"liquidation-orders","instType":"FUTURES"},"data":[{"details":[{"bkPx":"39000","side":"sell","sz":"3","ts":"1652000000001"}],"instId":"BTC-USD-220527","instType":"FUTURES","uly":"BTC-USD"}]}"#;
    let e = events(okx(liq).unwrap()).remove(0);
    assert_eq!(e.market_type, MarketType::Futures);
}

#[test]
fn an_okx_funding_push_without_a_rate_is_a_row_with_nulls() {
    let frame = r#"{"arg":{"channel":"funding-rate","instId":"BTC-USD-SWAP"},"data":[{"instId":"BTC-USD-SWAP","instType":"SWAP","fundingTime":"1700006400000","nextFundingRate":"0.00012","nextFundingTime":"1700035200000","ts":"1700000000000"}]}"#;
    let e = events(okx(frame).unwrap()).remove(0);
    let Payload::FundingRate(f) = &e.payload else {
        panic!()
    };
    assert_eq!(f.funding_rate, None);
    assert_eq!(f.next_funding_rate, Some(d("0.00012")));
    assert_eq!(
        (e.ts_ms, f.funding_time_ms, f.next_funding_time_ms),
        (
            1_700_000_000_000,
            1_700_006_400_000,
            Some(1_700_035_200_000)
        )
    );
    // `""` is "not given" too.
    let empty = frame.replace(
        r#""nextFundingRate":"0.00012""#,
        r#""fundingRate":"","nextFundingRate":"""#,
    );
    let Payload::FundingRate(f) = events(okx(&empty).unwrap()).remove(0).payload else {
        panic!()
    };
    assert_eq!((f.funding_rate, f.next_funding_rate), (None, None));
}

#[test]
fn deribit_inverse_amounts_are_usd_and_stored_in_base_units() {
    let frame = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms","data":[{"trade_seq":1,"trade_id":"77","timestamp":1700000000000,"tick_direction":0,"price":50000.0,"mark_price":50000.1,"instrument_name":"BTC-PERPETUAL","index_price":50000.2,"direction":"buy","amount":100.0}]}}"#;
    let table = recorded_instruments(Exchange::DeribitDerivatives);
    let e = events(deribit::parse::parse_frame(&table, frame, RECV).unwrap()).remove(0);
    let Payload::Trade(t) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (
            e.symbol.as_str(),
            t.quantity,
            t.raw_quantity,
            t.quantity_unit
        ),
        ("BTC-USD", d("0.002"), d("100.0"), QuantityUnit::Quote)
    );
}
