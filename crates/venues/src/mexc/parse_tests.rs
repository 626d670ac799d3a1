//! MEXC spot parser tests. Protobuf frames are built independently of the decoder: literal wire
//! bytes written by hand, and the documentation examples encoded by
//! `tests/fixtures/mexc/encode_docexamples.py` (its own encoder, from the encoding spec).

use super::*;
use marketprism_model::MarketType;
use marketprism_model::instruments::SizeRule;
use std::str::FromStr;

const RECV: i64 = 1_736_411_507_100;

fn table() -> InstrumentTable {
    InstrumentTable::new([Instrument {
        venue_symbol: "BTCUSDT".into(),
        symbol: marketprism_model::Symbol::new("BTC-USDT").unwrap(),
        market_type: MarketType::Spot,
        size: SizeRule::Base,
        tick_size: None,
        lot_size: None,
        venue_type: "SPOT".into(),
    }])
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    let t = text.trim();
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap())
        .collect()
}

/// Minimal wire writer for the failure cases (key, varint, length-delimited): not prost.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}
fn field_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}
fn field_varint(field: u64, n: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(n, out);
}
fn depth_push(from: &str, to: &str, send_time: u64) -> Vec<u8> {
    let mut level = Vec::new();
    field_bytes(1, b"100.5", &mut level);
    field_bytes(2, b"2", &mut level);
    let mut body = Vec::new();
    field_bytes(1, &level, &mut body);
    field_bytes(4, from.as_bytes(), &mut body);
    field_bytes(5, to.as_bytes(), &mut body);
    let mut push = Vec::new();
    field_bytes(
        1,
        b"spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
        &mut push,
    );
    field_bytes(313, &body, &mut push);
    field_bytes(3, b"BTCUSDT", &mut push);
    field_varint(6, send_time, &mut push);
    push
}
fn deals_push(trade_type: u64, trade_id: Option<&str>) -> Vec<u8> {
    let mut deal = Vec::new();
    field_bytes(1, b"93220.00", &mut deal);
    field_bytes(2, b"0.5", &mut deal);
    field_varint(3, trade_type, &mut deal);
    field_varint(4, 1_736_409_765_051, &mut deal);
    if let Some(id) = trade_id {
        field_bytes(5, id.as_bytes(), &mut deal);
    }
    let mut body = Vec::new();
    field_bytes(1, &deal, &mut body);
    field_bytes(1, &deal, &mut body);
    let mut push = Vec::new();
    field_bytes(
        1,
        b"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
        &mut push,
    );
    field_bytes(314, &body, &mut push);
    field_varint(6, 1_736_409_765_052, &mut push);
    push
}

#[test]
fn hand_written_wire_bytes_decode_to_a_trade() {
    // PushDataV3ApiWrapper { channel: "x@BTCUSDT", publicAggreDeals (314): { deals: [{ price "1.5",
    // quantity "2", tradeType 1, time 1736409765051 }] }, symbol "BTCUSDT" }, byte by byte.
    let frame: Vec<u8> = [
        &[0x0a, 0x09][..],
        b"x@BTCUSDT",
        &[0xd2, 0x13, 0x13], // key 314<<3|2 = 2514 = varint d2 13; body length 19
        &[0x0a, 0x11],       // deals[0], 17 bytes
        &[0x0a, 0x03],
        b"1.5",
        &[0x12, 0x01],
        b"2",
        &[0x18, 0x01],                               // tradeType 1
        &[0x20, 0xbb, 0xa9, 0xd9, 0xd0, 0xc4, 0x32], // time 1736409765051
        &[0x1a, 0x07],
        b"BTCUSDT",
    ]
    .concat();
    let Parsed::Events(ev) = parse_binary(&table(), Exchange::MexcSpot, &frame, RECV).unwrap()
    else {
        panic!()
    };
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].ts_ms, 1_736_409_765_051);
    let Payload::Trade(t) = &ev[0].payload else {
        panic!()
    };
    assert_eq!((t.price, t.quantity, t.side), (d("1.5"), d("2"), Side::Buy));
}

#[test]
fn documented_depth_example_is_a_book_update() {
    let frame = hex(include_str!(
        "../../tests/fixtures/mexc/spot_depth_docexample.pb.hex"
    ));
    let Parsed::BookUpdate(sym, u) =
        parse_binary(&table(), Exchange::MexcSpot, &frame, RECV).unwrap()
    else {
        panic!()
    };
    assert_eq!(sym.as_str(), "BTC-USDT");
    assert_eq!(
        (u.first_id, u.last_id, u.prev_id),
        (10_589_632_359, 10_589_632_359, None)
    );
    assert_eq!(u.ts_ms, 1_736_411_507_002);
    assert_eq!(u.bids, vec![(d("92877.58"), d("0"))]);
    assert!(u.asks.is_empty());
}

#[test]
fn documented_deals_example_is_a_sell() {
    let frame = hex(include_str!(
        "../../tests/fixtures/mexc/spot_deals_docexample.pb.hex"
    ));
    let Parsed::Events(ev) = parse_binary(&table(), Exchange::MexcSpot, &frame, RECV).unwrap()
    else {
        panic!()
    };
    let Payload::Trade(t) = &ev[0].payload else {
        panic!()
    };
    assert_eq!(
        (t.price, t.quantity, t.side, ev[0].ts_ms),
        (
            d("93220.00"),
            d("0.04438243"),
            Side::Sell,
            1_736_409_765_051
        )
    );
    assert_eq!(
        t.price.to_string(),
        "93220.00",
        "the venue's text, scale kept"
    );
    assert_eq!(
        t.trade_id,
        deal_id(
            1_736_409_765_051,
            "93220.00",
            "0.04438243",
            2,
            <crate::mexc::pb::PushDataV3ApiWrapper as prost::Message>::decode(&frame[..])
                .unwrap()
                .send_time
                .unwrap_or(0),
            0
        )
    );
    assert!(t.trade_id.parse::<u64>().is_ok(), "numeric ids");
}

#[test]
fn synthetic_ids_are_stable_and_distinct_and_a_sent_id_wins() {
    let a = parse_binary(&table(), Exchange::MexcSpot, &deals_push(1, None), RECV).unwrap();
    let b = parse_binary(&table(), Exchange::MexcSpot, &deals_push(1, None), RECV).unwrap();
    assert_eq!(
        a, b,
        "the same push twice: the same ids (a repeat is a duplicate)"
    );
    let Parsed::Events(ev) = a else { panic!() };
    let ids: Vec<_> = ev
        .iter()
        .map(|e| match &e.payload {
            Payload::Trade(t) => t.trade_id.clone(),
            _ => panic!(),
        })
        .collect();
    assert_ne!(ids[0], ids[1], "two equal deals of one push are two trades");
    let Parsed::Events(ev) = parse_binary(
        &table(),
        Exchange::MexcSpot,
        &deals_push(2, Some("777")),
        RECV,
    )
    .unwrap() else {
        panic!()
    };
    assert!(matches!(&ev[0].payload, Payload::Trade(t) if t.trade_id == "777"));
}

#[test]
fn broken_frames_are_typed_and_attributed_when_possible() {
    let t = table();
    let err = |bytes: &[u8]| parse_binary(&t, Exchange::MexcSpot, bytes, RECV).unwrap_err();
    assert_eq!(
        err(&[0xff, 0xff, 0xff]).reason,
        ParseErrorReason::InvalidBinary
    );
    let mut truncated = depth_push("5", "6", 1_736_411_507_002);
    truncated.truncate(truncated.len() - 20);
    assert_eq!(err(&truncated).reason, ParseErrorReason::InvalidBinary);
    assert_eq!(
        channel_of(&truncated),
        Some("spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"),
        "the channel is still readable for attribution"
    );
    let e = err(&depth_push("x", "6", 1_736_411_507_002));
    assert_eq!(e.reason, ParseErrorReason::BadNumber);
    assert_eq!(e.stream.unwrap().data_type, DataType::Orderbooks);
    assert_eq!(
        err(&depth_push("7", "6", 1_736_411_507_002)).reason,
        ParseErrorReason::BadNumber
    );
    assert_eq!(
        err(&depth_push("5", "6", 1_736_411_507)).reason,
        ParseErrorReason::BadTime,
        "seconds are not milliseconds"
    );
    let e = err(&deals_push(3, None));
    assert_eq!(e.reason, ParseErrorReason::BadSide);
    assert_eq!(e.stream.unwrap().data_type, DataType::Trades);
    // A body we do not decode (publicDeals, 301): well-formed but unknown.
    let mut other = Vec::new();
    field_bytes(1, b"spot@public.deals.v3.api.pb@BTCUSDT", &mut other);
    field_bytes(301, b"", &mut other);
    assert_eq!(err(&other).reason, ParseErrorReason::UnknownMessage);
    let mut foreign = Vec::new();
    field_bytes(
        1,
        b"spot@public.aggre.deals.v3.api.pb@100ms@XYZUSDT",
        &mut foreign,
    );
    field_bytes(314, b"", &mut foreign);
    assert_eq!(err(&foreign).reason, ParseErrorReason::BadSymbol);
}

#[test]
fn control_frames_are_acks_pongs_and_refusals() {
    let lines: Vec<&str> = include_str!("../../tests/fixtures/mexc/spot_control_docexamples.jsonl")
        .lines()
        .collect();
    assert_eq!(
        parse_text(lines[0]).unwrap(),
        Parsed::Control(Control::Ack {
            id: "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT".into()
        })
    );
    assert_eq!(
        parse_text(lines[1]).unwrap(),
        Parsed::Control(Control::Pong)
    );
    let refused = r#"{"id":0,"code":0,"msg":"Not Subscribed successfully! [spot@public.deals.v3.api@BTCUSDT].  Reason： Blocked! "}"#;
    let Parsed::Control(Control::Error { msg, .. }) = parse_text(refused).unwrap() else {
        panic!()
    };
    assert_eq!(refused_channels(&msg), ["spot@public.deals.v3.api@BTCUSDT"]);
    assert!(matches!(
        parse_text(r#"{"id":0,"code":1,"msg":"invalid"}"#).unwrap(),
        Parsed::Control(Control::Error { .. })
    ));
    assert_eq!(
        parse_text("{}").unwrap_err().reason,
        ParseErrorReason::MissingField
    );
    assert_eq!(
        parse_text("garbage").unwrap_err().reason,
        ParseErrorReason::InvalidJson
    );
}

#[test]
fn rest_depth_snapshot() {
    let body = r#"{"lastUpdateId":10589632359,"bids":[["92877.58","1.5"]],"asks":[["92877.59","0.25"]],"timestamp":1736411507002}"#;
    let s = parse_depth_snapshot(body).unwrap();
    assert_eq!(s.last_id, 10_589_632_359);
    assert_eq!(s.bids, vec![(d("92877.58"), d("1.5"))]);
    assert_eq!(s.ts_ms, Some(1_736_411_507_002));
    assert!(parse_depth_snapshot(r#"{"code":-1121,"msg":"Invalid symbol."}"#).is_err());
}
