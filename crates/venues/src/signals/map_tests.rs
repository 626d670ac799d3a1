use super::*;
use marketprism_signals::{SignalEngine, SignalsConfig};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn ctx(symbol: &Symbol) -> RowContext<'_> {
    RowContext {
        exchange: Exchange::BinanceDerivatives,
        market_type: MarketType::Perpetual,
        symbol,
        recv_ts_ms: 9_999,
    }
}

#[test]
fn levels_take_the_best_n_as_floats() {
    let side = vec![
        (d("100.1"), d("2")),
        (d("100.0"), d("0.5")),
        (d("99.9"), d("1")),
    ];
    let l = levels(&side, 2);
    assert_eq!(
        l,
        vec![sig::Level::new(100.1, 2.0), sig::Level::new(100.0, 0.5)]
    );
    assert_eq!(levels(&side, 10).len(), 3);
    assert_eq!(f64_of(d("0.000000000000000001")), 1e-18);
}

#[test]
fn gap_causes_map_to_reset_reasons() {
    use DataType::*;
    use GapCause::*;
    assert_eq!(
        reset_reason(Orderbooks, SequenceGap),
        ResetReason::BookResync
    );
    assert_eq!(reset_reason(Orderbooks, Integrity), ResetReason::BookResync);
    assert_eq!(reset_reason(Trades, SequenceGap), ResetReason::StreamGap);
    assert_eq!(reset_reason(Trades, Disconnect), ResetReason::Reconnect);
    assert_eq!(reset_reason(Orderbooks, Disconnect), ResetReason::Reconnect);
    assert_eq!(reset_reason(Trades, Overflow), ResetReason::StreamGap);
}

#[test]
fn sources_name_their_input() {
    assert_eq!(Source::Book { update_id: 7 }.key(), "book:7");
    assert_eq!(Source::Trade { trade_id: "a1" }.key(), "trade:a1");
    let gap = Source::Gap {
        data_type: DataType::Orderbooks,
        start_ms: 5,
        cause: GapCause::SequenceGap,
    };
    assert_eq!(gap.key(), "gap:orderbooks:5:sequence_gap");
}

#[test]
fn book_trade_and_gap_outputs_become_keyed_events() {
    let sym = Symbol::new("BTC-USDT").unwrap();
    let mut engine = SignalEngine::new(SignalsConfig::default()).unwrap();
    let bids = [sig::Level::new(100.0, 5.0)];
    let asks = [sig::Level::new(100.1, 3.0)];
    let first = engine.on_book(1_000, &bids, &asks);
    assert!(output_events(ctx(&sym), &Source::Book { update_id: 1 }, &first).is_empty());

    let out = engine.on_book(1_100, &[sig::Level::new(100.0, 7.0)], &asks);
    let events = output_events(ctx(&sym), &Source::Book { update_id: 2 }, &out);
    let [e] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(e.ts_ms, 1_100);
    assert_eq!(e.recv_ts_ms, 9_999);
    let Payload::SignalOfi(o) = &e.payload else {
        panic!()
    };
    assert_eq!((o.update_id, o.ofi, o.ofi_z), (2, 0.4 * 2.0, None));
    assert_eq!(o.regime, "quiet");
    assert_eq!(
        e.msg_id(),
        "signal_ofi.binance_derivatives.perpetual.BTC-USDT:1100:2"
    );

    let out = engine.on_trade(1_150, 100.1, 0.5, Some(side(Side::Buy)));
    let events = output_events(ctx(&sym), &Source::Trade { trade_id: "77" }, &out);
    let Payload::SignalCvd(c) = &events[0].payload else {
        panic!("{events:?}")
    };
    assert_eq!((c.trade_id.as_str(), c.cvd, c.delta), ("77", 0.5, 0.5));
    assert_eq!(
        events[0].msg_id(),
        "signal_cvd.binance_derivatives.perpetual.BTC-USDT:77"
    );

    let source = Source::Gap {
        data_type: DataType::Orderbooks,
        start_ms: 1_200,
        cause: GapCause::SequenceGap,
    };
    let out = engine.on_gap(
        1_200,
        reset_reason(DataType::Orderbooks, GapCause::SequenceGap),
    );
    let events = output_events(ctx(&sym), &source, &out);
    let [e] = &events[..] else {
        panic!("{events:?}")
    };
    let Payload::SignalEvent(v) = &e.payload else {
        panic!()
    };
    assert_eq!(v.event_type, "reset");
    assert_eq!(v.meta_json, r#"{"reason":"book_resync"}"#);
    assert_eq!(
        (v.source.as_str(), v.seq),
        ("gap:orderbooks:1200:sequence_gap", 0)
    );
    assert_eq!(e.data_type(), DataType::SignalEvents);
}

#[test]
fn a_row_without_its_key_is_not_invented() {
    let sym = Symbol::new("BTC-USDT").unwrap();
    let mut engine = SignalEngine::new(SignalsConfig::default()).unwrap();
    let out = engine.on_trade(1, 100.0, 1.0, Some(sig::Side::Sell));
    assert!(out.cvd.is_some());
    // A CVD row reported against a book input has no trade id to be keyed by.
    assert!(output_events(ctx(&sym), &Source::Book { update_id: 1 }, &out).is_empty());
}
