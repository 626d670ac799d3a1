//! Unit tests of the Gate parser on documented frames (futures) and recorded ones (spot).

use super::*;
use marketprism_model::instruments::SizeRule;
use marketprism_model::{MarketType, QuantityUnit, Symbol};
use std::str::FromStr;

const RECV: i64 = 1_700_000_000_000;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn table() -> InstrumentTable {
    let inst = |v: &str, s: &str, m, size| Instrument {
        venue_symbol: v.into(),
        symbol: Symbol::new(s).unwrap(),
        market_type: m,
        size,
        tick_size: None,
        lot_size: None,
        venue_type: "futures".into(),
    };
    InstrumentTable::new([
        inst(
            "BTC_USDT",
            "BTC-USDT",
            MarketType::Perpetual,
            SizeRule::ContractsOfBase(d("0.0001")),
        ),
        inst("DIS_USDT", "DIS-USDT", MarketType::Spot, SizeRule::Base),
    ])
}

fn parse(text: &str) -> ParseResult<Parsed> {
    parse_frame(&table(), Exchange::GateDerivatives, text, RECV)
}

#[test]
fn docexample_futures_trades_take_the_side_from_the_sign() {
    let f = r#"{"channel":"futures.trades","event":"update","time":1541503698,"time_ms":1541503698123,"result":[{"size":"-108","id":27753479,"create_time":1545136464,"create_time_ms":1545136464123,"price":"96.4","contract":"BTC_USDT","is_internal":true},{"size":5,"id":27753480,"create_time_ms":1545136464124,"price":"96.5","contract":"BTC_USDT"}]}"#;
    let Parsed::Events(v) = parse(f).unwrap() else {
        panic!()
    };
    let Payload::Trade(t) = &v[0].payload else {
        panic!()
    };
    assert_eq!(
        (
            t.trade_id.as_str(),
            t.side,
            t.price,
            t.quantity,
            t.raw_quantity,
            t.quantity_unit
        ),
        (
            "27753479",
            Side::Sell,
            d("96.4"),
            d("0.0108"),
            d("108"),
            QuantityUnit::Contracts
        )
    );
    assert_eq!(
        (v[0].ts_ms, v[0].symbol.as_str()),
        (1_545_136_464_123, "BTC-USDT")
    );
    let Payload::Trade(t) = &v[1].payload else {
        panic!()
    };
    assert_eq!(
        (t.side, t.quantity),
        (Side::Buy, d("0.0005")),
        "integer size without the decimal header"
    );
    let zero = f.replace(r#""size":5"#, r#""size":0"#);
    assert_eq!(parse(&zero).unwrap_err().reason, ParseErrorReason::BadSide);
    let secs = f.replace("1545136464123", "1545136464");
    assert_eq!(parse(&secs).unwrap_err().reason, ParseErrorReason::BadTime);
}

#[test]
fn docexample_futures_book_update_in_base_units() {
    let f = r#"{"time":1615366381,"time_ms":1615366381123,"channel":"futures.order_book_update","event":"update","result":{"t":1615366381417,"s":"BTC_USDT","U":2517661101,"u":2517661113,"b":[{"p":"54672.1","s":"0"},{"p":"54664.5","s":"58794"}],"a":[{"p":"54743.6","s":0},{"p":"54742","s":95}],"l":"100"}}"#;
    let Parsed::BookUpdate(sym, u) = parse(f).unwrap() else {
        panic!()
    };
    assert_eq!(sym.as_str(), "BTC-USDT");
    assert_eq!(
        (u.first_id, u.last_id, u.prev_id, u.ts_ms),
        (2_517_661_101, 2_517_661_113, None, 1_615_366_381_417)
    );
    assert_eq!(
        u.bids,
        vec![(d("54672.1"), d("0")), (d("54664.5"), d("5.8794"))]
    );
    assert_eq!(u.asks[1], (d("54742"), d("0.0095")));
    let err = parse(&f.replace(r#""p":"54742""#, r#""p":"x""#)).unwrap_err();
    assert_eq!(err.reason, ParseErrorReason::BadDecimal);
    assert_eq!(
        err.stream.unwrap().data_type,
        DataType::Orderbooks,
        "attributed to its stream"
    );
}

#[test]
fn a_bad_funding_value_in_tickers_costs_only_the_funding_fact() {
    // The doc example with a funding rate of 30 fractional digits: open interest still lands, and
    // the rejection names the funding stream of its contract.
    let f = r#"{"time":1541659086,"time_ms":1541659086123,"channel":"futures.tickers","event":"update","result":[{"contract":"BTC_USDT","funding_rate":"0.000000000000000000000000000001","mark_price":"118.35","index_price":"118.36","total_size":"73648"}]}"#;
    let Parsed::Partial(events, errors) = parse(f).unwrap() else {
        panic!("{:?}", parse(f))
    };
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0].payload, Payload::OpenInterest(_)));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason, ParseErrorReason::OutOfRange);
    let stream = errors[0].stream.as_ref().expect("attributed");
    assert_eq!(
        (stream.data_type, stream.symbol.as_str(), stream.at_ms),
        (DataType::FundingRates, "BTC-USDT", 1541659086123),
        "at the push's own time"
    );
    // Both facts bad: nothing lands, both streams get their rejection.
    let both = f.replace(r#""total_size":"73648""#, r#""total_size":"1e-40""#);
    let Parsed::Partial(events, errors) = parse(&both).unwrap() else {
        panic!("{:?}", parse(&both))
    };
    assert!(events.is_empty());
    let types: Vec<_> = errors
        .iter()
        .map(|e| e.stream.as_ref().unwrap().data_type)
        .collect();
    assert_eq!(types, [DataType::FundingRates, DataType::OpenInterests]);
}

#[test]
fn docexample_tickers_give_funding_and_open_interest() {
    let f = r#"{"time":1541659086,"time_ms":1541659086123,"channel":"futures.tickers","event":"update","result":[{"contract":"BTC_USDT","last":"118.4","change_percentage":"0.77","funding_rate":"-0.000114","funding_rate_indicative":"0.01875","mark_price":"118.35","index_price":"118.36","total_size":"73648","volume_24h":"745487577","quanto_base_rate":"","low_24h":"99.2","high_24h":"132.5"}]}"#;
    let Parsed::Events(v) = parse(f).unwrap() else {
        panic!()
    };
    assert_eq!(v.len(), 2);
    let Payload::FundingRate(fr) = &v[0].payload else {
        panic!()
    };
    assert_eq!(
        (
            fr.funding_rate,
            fr.next_funding_rate,
            fr.mark_price,
            fr.index_price,
            fr.funding_time_ms
        ),
        (
            Some(d("-0.000114")),
            Some(d("0.01875")),
            Some(d("118.35")),
            Some(d("118.36")),
            1_541_659_086_123
        )
    );
    let Payload::OpenInterest(oi) = &v[1].payload else {
        panic!()
    };
    assert_eq!(
        (
            oi.open_interest,
            oi.raw_open_interest,
            oi.open_interest_unit
        ),
        (d("7.3648"), d("73648"), QuantityUnit::Contracts)
    );
    assert_eq!(v[1].ts_ms, 1_541_659_086_123);
    let no_ms = f.replace(r#""time_ms":1541659086123,"#, "");
    let Parsed::Events(v) = parse(&no_ms).unwrap() else {
        panic!()
    };
    assert_eq!(
        v[0].ts_ms, 1_541_659_086_000,
        "envelope seconds when time_ms is absent"
    );
}

#[test]
fn docexample_public_liquidates_old_and_new_shapes() {
    let new = r#"{"channel":"futures.public_liquidates","event":"update","time":1541505434,"time_ms":1541505434123,"result":[{"price":"215.1","size":"-124.5","time":1541486601123,"contract":"BTC_USDT"},{"price":"215.2","size":-10,"time":1541486601456,"contract":"BTC_USDT"}]}"#;
    let Parsed::Events(v) = parse(new).unwrap() else {
        panic!()
    };
    assert_eq!(v.len(), 2);
    let Payload::Liquidation(l) = &v[0].payload else {
        panic!()
    };
    assert_eq!(
        (l.side, l.price, l.quantity, l.raw_quantity),
        (Side::Sell, d("215.1"), d("0.01245"), d("124.5"))
    );
    assert_eq!(v[1].ts_ms, 1_541_486_601_456);
    let old = r#"{"channel":"futures.public_liquidates","event":"update","time":1541505434,"result":[{"price":215.1,"size":124,"time_ms":1541486601123,"contract":"BTC_USDT"}]}"#;
    let Parsed::Events(v) = parse(old).unwrap() else {
        panic!()
    };
    let Payload::Liquidation(l) = &v[0].payload else {
        panic!()
    };
    assert_eq!(
        (l.side, l.price),
        (Side::Buy, d("215.1")),
        "a buy order closes a short"
    );
    let unknown = new.replace("BTC_USDT", "XRP_USDT");
    assert_eq!(
        parse(&unknown).unwrap_err().reason,
        ParseErrorReason::BadSymbol
    );
}

#[test]
fn acks_errors_and_pongs() {
    let ack = r#"{"time":1545404023,"time_ms":1545404023123,"id":7,"channel":"futures.tickers","event":"subscribe","result":{"status":"success"}}"#;
    assert_eq!(
        parse(ack).unwrap(),
        Parsed::Control(Control::Ack { id: "7".into() })
    );
    // The recording's acks (no id was sent) name the channel.
    let recorded = r#"{"time":1619093532,"channel":"spot.trades","event":"subscribe","result":{"status":"success"}}"#;
    assert_eq!(
        parse(recorded).unwrap(),
        Parsed::Control(Control::Ack {
            id: "spot.trades".into()
        })
    );
    let err = r#"{"time":1611541000,"id":3,"channel":"spot.trades","event":"subscribe","error":{"code":2,"message":"unknown currency pair GT_USDT1"},"result":null}"#;
    assert_eq!(
        parse(err).unwrap(),
        Parsed::Control(Control::Error {
            id: Some("3".into()),
            code: "2".into(),
            msg: "unknown currency pair GT_USDT1".into()
        })
    );
    // A real refusal (as recorded in ccxt's Gate client): `result.status` is "fail" beside the error.
    let real = r#"{"time":1739853211,"time_ms":1739853211201,"id":1,"conn_id":"62f2c1dabbe186d7","trace_id":"cdb02a8c0b61086b2fe6f8fad2f98c54","channel":"spot.trades","event":"subscribe","payload":["LUNARLENS_USDT","ETH_USDT"],"error":{"code":2,"message":"unknown currency pair: LUNARLENS_USDT"},"result":{"status":"fail"},"requestId":"cdb02a8c0b61086b2fe6f8fad2f98c54"}"#;
    assert_eq!(
        parse(real).unwrap(),
        Parsed::Control(Control::Error {
            id: Some("1".into()),
            code: "2".into(),
            msg: "unknown currency pair: LUNARLENS_USDT".into()
        })
    );
    let failed = r#"{"time":1,"id":9,"channel":"spot.trades","event":"subscribe","result":{"status":"fail"}}"#;
    assert!(
        matches!(parse(failed).unwrap(), Parsed::Control(Control::Error { id: Some(ref i), .. }) if i == "9")
    );
    let pong = r#"{"time":1545404023,"time_ms":1545404023123,"channel":"futures.pong","event":"","result":null}"#;
    assert_eq!(parse(pong).unwrap(), Parsed::Control(Control::Pong));
    assert_eq!(
        parse(r#"{"channel":"spot.candlesticks","event":"update","result":{}}"#)
            .unwrap_err()
            .reason,
        ParseErrorReason::UnknownMessage
    );
    assert_eq!(
        parse("{").unwrap_err().reason,
        ParseErrorReason::InvalidJson
    );
    assert_eq!(
        parse(r#"{"channel":"futures.trades","event":"update"}"#)
            .unwrap_err()
            .reason,
        ParseErrorReason::MissingField
    );
}

#[test]
fn recorded_spot_trade_time_keeps_whole_milliseconds() {
    let f = r#"{"time":1619093543,"channel":"spot.trades","event":"update","result":{"id":816995772,"create_time":1619093543,"create_time_ms":"1619093543708.2642","side":"sell","currency_pair":"DIS_USDT","amount":"0.2010000000","price":"121.5800000000"}}"#;
    let Parsed::Event(e) = parse_frame(&table(), Exchange::GateSpot, f, 1_619_093_544_000).unwrap()
    else {
        panic!()
    };
    let Payload::Trade(t) = &e.payload else {
        panic!()
    };
    assert_eq!(
        (e.ts_ms, t.side, t.quantity, t.price),
        (1_619_093_543_708, Side::Sell, d("0.201"), d("121.58"))
    );
    assert_eq!(t.quantity_unit, QuantityUnit::Base);
}

#[test]
fn rest_books_spot_and_futures() {
    let spot = r#"{"id":13035634,"current":1623898993123,"update":1623898993121,"asks":[["1.52","1.151"],["1.53","1.218"]],"bids":[["1.17","201.863"]]}"#;
    let s = parse_rest_book(spot, None).unwrap();
    assert_eq!(
        (s.last_id, s.ts_ms, s.asks.len(), s.bids[0]),
        (
            13_035_634,
            Some(1_623_898_993_123),
            2,
            (d("1.17"), d("201.863"))
        )
    );
    let fut = r#"{"id":123456,"current":1623898993.123,"update":1623898993.121,"asks":[{"p":"1.52","s":100},{"p":"1.53","s":40}],"bids":[{"p":"1.17","s":150}]}"#;
    let t = table();
    let inst = t.by_venue("BTC_USDT").unwrap();
    let f = parse_rest_book(fut, Some(inst)).unwrap();
    assert_eq!(
        (f.last_id, f.ts_ms, f.asks[0]),
        (123_456, Some(1_623_898_993_123), (d("1.52"), d("0.01")))
    );
    assert_eq!(
        parse_rest_book(&fut.replace(r#""id":123456,"#, ""), Some(inst))
            .unwrap_err()
            .reason,
        ParseErrorReason::MissingField
    );
    assert_eq!(
        parse_rest_book(
            r#"{"label":"INVALID_CURRENCY_PAIR","message":"x","asks":[],"bids":[]}"#,
            None
        )
        .unwrap_err()
        .reason,
        ParseErrorReason::VenueError
    );
}
