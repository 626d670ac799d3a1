//! MEXC contract parser tests, on the documentation's example frames
//! (`tests/fixtures/mexc/contract_docexamples.jsonl`) and the live array form of `push.deal`.

use super::*;
use marketprism_model::instruments::SizeRule;
use marketprism_model::{MarketType, QuantityUnit};
use std::str::FromStr;

const RECV: i64 = 1_587_442_022_100;

fn table() -> InstrumentTable {
    InstrumentTable::new([Instrument {
        venue_symbol: "BTC_USDT".into(),
        symbol: marketprism_model::Symbol::new("BTC-USDT").unwrap(),
        market_type: MarketType::Perpetual,
        size: SizeRule::ContractsOfBase(Decimal::from_str("0.0001").unwrap()),
        tick_size: None,
        lot_size: None,
        venue_type: "PERPETUAL".into(),
    }])
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn doc(i: usize) -> &'static str {
    include_str!("../../tests/fixtures/mexc/contract_docexamples.jsonl")
        .lines()
        .nth(i)
        .unwrap()
}

fn parse(text: &str) -> ParseResult<Parsed> {
    parse_frame(&table(), Exchange::MexcDerivatives, text, RECV)
}

#[test]
fn documented_deal_is_contracts_times_contract_size() {
    let Parsed::Events(ev) = parse(doc(0)).unwrap() else {
        panic!()
    };
    let Payload::Trade(t) = &ev[0].payload else {
        panic!()
    };
    assert_eq!(ev[0].ts_ms, 1_587_442_049_632);
    assert_eq!(
        (t.price, t.quantity, t.raw_quantity, t.quantity_unit, t.side),
        (
            d("6866.5"),
            d("0.2096"),
            d("2096"),
            QuantityUnit::Contracts,
            Side::Buy
        )
    );
    assert!(t.trade_id.parse::<u64>().is_ok());
}

#[test]
fn live_deal_arrays_carry_their_ids() {
    let live = r#"{"symbol":"BTC_USDT","data":[{"p":77525.9,"v":3,"T":2,"O":3,"M":1,"t":1587442049632,"i":"16005949540","cts":"1587442049632"},{"p":77526,"v":1,"T":1,"O":3,"M":1,"t":1587442049633,"i":"16005949541"}],"channel":"push.deal","ts":1587442049632}"#;
    let Parsed::Events(ev) = parse(live).unwrap() else {
        panic!()
    };
    let ids: Vec<_> = ev
        .iter()
        .map(|e| match &e.payload {
            Payload::Trade(t) => (t.trade_id.as_str(), t.side, t.quantity),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("16005949540", Side::Sell, d("0.0003")),
            ("16005949541", Side::Buy, d("0.0001"))
        ]
    );
}

#[test]
fn documented_depth_funding_and_ticker() {
    let Parsed::BookUpdate(sym, u) = parse(doc(1)).unwrap() else {
        panic!()
    };
    assert_eq!(sym.as_str(), "BTC-USDT");
    assert_eq!((u.first_id, u.last_id), (96_801_927, 96_801_927));
    assert_eq!(
        u.asks,
        vec![(d("6859.5"), d("3251"))],
        "books keep contracts"
    );
    assert_eq!(u.ts_ms, 1_587_442_022_003);
    let Parsed::Event(f) = parse(doc(2)).unwrap() else {
        panic!()
    };
    let Payload::FundingRate(f) = f.payload else {
        panic!()
    };
    assert_eq!(f.funding_rate, Some(d("0.001")));
    assert_eq!(
        f.funding_time_ms, 1_587_442_022_003,
        "no nextSettleTime: the push time"
    );
    let with_settle = r#"{"channel":"push.funding.rate","data":{"rate":-0.0001,"symbol":"BTC_USDT","nextSettleTime":1587456000000},"symbol":"BTC_USDT","ts":1587442022003}"#;
    let Parsed::Event(f) = parse(with_settle).unwrap() else {
        panic!()
    };
    assert!(
        matches!(f.payload, Payload::FundingRate(ref r) if r.funding_time_ms == 1_587_456_000_000)
    );
    let Parsed::Event(oi) = parse(doc(3)).unwrap() else {
        panic!()
    };
    let Payload::OpenInterest(o) = oi.payload else {
        panic!()
    };
    assert_eq!(
        (o.open_interest, o.raw_open_interest, o.open_interest_unit),
        (d("228.4742"), d("2284742"), QuantityUnit::Contracts)
    );
}

#[test]
fn documented_control_frames() {
    assert_eq!(
        parse(doc(4)).unwrap(),
        Parsed::Control(Control::Ack {
            id: "rs.sub.deal".into()
        })
    );
    assert!(matches!(
        parse(doc(5)).unwrap(),
        Parsed::Control(Control::Error { ref msg, .. }) if msg == "Contract doesn't exist!"
    ));
    assert_eq!(parse(doc(6)).unwrap(), Parsed::Control(Control::Pong));
}

#[test]
fn bad_values_are_rejected_on_their_stream() {
    let reason = |t: &str| parse(t).unwrap_err().reason;
    let e = parse(r#"{"channel":"push.deal","data":{"p":"x","v":1,"T":1,"t":1587442049632},"symbol":"BTC_USDT","ts":1}"#).unwrap_err();
    assert_eq!(e.reason, ParseErrorReason::BadDecimal);
    assert_eq!(e.stream.unwrap().data_type, DataType::Trades);
    assert_eq!(
        reason(
            r#"{"channel":"push.deal","data":{"p":1,"v":1,"T":3,"t":1587442049632},"symbol":"BTC_USDT"}"#
        ),
        ParseErrorReason::BadSide
    );
    assert_eq!(
        reason(
            r#"{"channel":"push.depth","data":{"asks":[],"bids":[],"version":5},"symbol":"NOPE_USDT","ts":1587442022003}"#
        ),
        ParseErrorReason::BadSymbol
    );
    assert_eq!(
        reason(
            r#"{"channel":"push.depth","data":{"asks":[[1]],"bids":[],"version":5},"symbol":"BTC_USDT","ts":1587442022003}"#
        ),
        ParseErrorReason::InvalidJson
    );
    assert_eq!(
        reason(r#"{"channel":"push.kline","data":{},"symbol":"BTC_USDT"}"#),
        ParseErrorReason::UnknownMessage
    );
    assert_eq!(
        reason("{\"channel\":\"push.de"),
        ParseErrorReason::InvalidJson
    );
}

#[test]
fn rest_depth_snapshot_and_errors() {
    let body = r#"{"success":true,"code":0,"data":{"asks":[[6859.5,3251,1]],"bids":[[6859,100,2]],"version":96801927,"timestamp":1587442022003}}"#;
    let s = parse_depth_snapshot(body).unwrap();
    assert_eq!((s.last_id, s.bids[0]), (96_801_927, (d("6859"), d("100"))));
    assert_eq!(
        parse_depth_snapshot(
            r#"{"success":false,"code":1001,"message":"Contract does not exist"}"#
        )
        .unwrap_err()
        .reason,
        ParseErrorReason::VenueError
    );
}

/// Deals sent without an id (the documented single-object form) get ids from their fields, their
/// push's time and position: equal deals of two pushes are two trades, a replayed push is not.
#[test]
fn equal_deals_of_two_pushes_get_two_ids_and_a_replay_one() {
    let frame = |ts: i64| {
        format!(
            r#"{{"symbol":"BTC_USDT","data":{{"p":100.5,"v":2,"T":1,"O":1,"M":1,"t":1587442022003}},"channel":"push.deal","ts":{ts}}}"#
        )
    };
    let id = |text: &str| match parse(text).unwrap() {
        Parsed::Events(ev) => match &ev[0].payload {
            Payload::Trade(t) => t.trade_id.clone(),
            p => panic!("{p:?}"),
        },
        p => panic!("{p:?}"),
    };
    let a = id(&frame(1_587_442_022_003));
    assert_eq!(a, id(&frame(1_587_442_022_003)), "a replayed push");
    assert_ne!(a, id(&frame(1_587_442_022_004)), "another push");
}
