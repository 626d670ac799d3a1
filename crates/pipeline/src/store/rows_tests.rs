use super::*;
use crate::store::columns::columns;
use marketprism_model::synthetic::synthetic_events;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn trade(price: &str, quantity: &str) -> Event {
    Event {
        exchange: Exchange::BinanceSpot,
        market_type: MarketType::Spot,
        symbol: Symbol::new("BTC-USDT").unwrap(),
        ts_ms: 1_767_225_600_123,
        recv_ts_ms: 1_767_225_600_130,
        payload: Payload::Trade(Trade {
            trade_id: "42".into(),
            price: d(price),
            quantity: d(quantity),
            raw_quantity: d(quantity),
            quantity_unit: QuantityUnit::Base,
            side: Side::Sell,
        }),
    }
}

#[test]
fn row_fields_follow_the_column_list() {
    fn names<R: TableRow>() -> Vec<&'static str> {
        <R as clickhouse::Row>::COLUMN_NAMES.to_vec()
    }
    let check = |dt: DataType, got: Vec<&'static str>| {
        let want: Vec<&str> = columns(dt).iter().map(|c| c.name).collect();
        assert_eq!(got, want, "{dt}");
    };
    check(DataType::Orderbooks, names::<OrderbookRow>());
    check(DataType::Trades, names::<TradeRow>());
    check(DataType::FundingRates, names::<FundingRateRow>());
    check(DataType::OpenInterests, names::<OpenInterestRow>());
    check(DataType::Liquidations, names::<LiquidationRow>());
    check(DataType::LsrTopPositions, names::<LsrTopPositionRow>());
    check(DataType::LsrAllAccounts, names::<LsrAllAccountRow>());
    check(DataType::VolatilityIndices, names::<VolatilityIndexRow>());
    check(DataType::Gaps, names::<GapRow>());
}

#[test]
fn trade_row_carries_exact_decimals() {
    let row = TradeRow::from_event(&trade("99999999999999999999.5", "0.00000001")).unwrap();
    assert_eq!(row.exchange, "binance_spot");
    assert_eq!(row.market_type, "spot");
    assert_eq!(row.symbol, "BTC-USDT");
    assert_eq!(row.ts_ms, 1_767_225_600_123);
    assert_eq!(row.side, "sell");
    assert_eq!(row.quantity, Dec18(10_000_000_000));
    assert_eq!(
        row.price,
        Dec18(99_999_999_999_999_999_999_500_000_000_000_000_000)
    );
    assert_eq!(
        row.to_event().unwrap(),
        trade("99999999999999999999.5", "0.00000001")
    );
}

#[test]
fn decimal_overflow_is_an_error_not_a_truncation() {
    let err = TradeRow::from_event(&trade("100000000000000000000", "1")).unwrap_err();
    assert!(
        matches!(err, RowError::Decimal { field: "price", .. }),
        "{err}"
    );
    let err = TradeRow::from_event(&trade("1", "0.0000000000000000001")).unwrap_err();
    assert!(
        matches!(
            err,
            RowError::Decimal {
                field: "quantity",
                ..
            }
        ),
        "{err}"
    );
    let mut rows = Rows::new(DataType::Trades);
    assert!(rows.push(&trade("100000000000000000000", "1")).is_err());
    assert!(rows.is_empty(), "a failed push appends nothing");
}

#[test]
fn wrong_data_type_is_an_error() {
    let err = Rows::from_events(DataType::Gaps, &[trade("1", "1")]).unwrap_err();
    assert_eq!(
        err,
        RowError::WrongType {
            data_type: DataType::Gaps,
            got: DataType::Trades
        }
    );
}

#[test]
fn every_synthetic_event_round_trips_through_its_row() {
    let events = synthetic_events(11, 100 * DataType::ALL.len());
    for dt in DataType::ALL {
        let mine: Vec<Event> = events
            .iter()
            .filter(|e| e.data_type() == dt)
            .cloned()
            .collect();
        assert_eq!(mine.len(), 100, "{dt}");
        let rows = Rows::from_events(dt, &mine).unwrap();
        assert_eq!(rows.data_type(), dt);
        assert_eq!(rows.to_events().unwrap(), mine, "{dt}");
    }
}

#[test]
fn orderbook_levels_become_parallel_arrays() {
    let e = marketprism_model::synthetic::synthetic_event(5, 0);
    let Payload::Orderbook(book) = &e.payload else {
        panic!("event 0 is an order book")
    };
    let row = OrderbookRow::from_event(&e).unwrap();
    assert_eq!(row.bid_prices.len(), book.bids.len());
    assert_eq!(row.ask_sizes.len(), book.asks.len());
    assert_eq!(row.bid_prices[0].to_decimal().unwrap(), book.bids[0].0);
    let mut uneven = row.clone();
    uneven.ask_sizes.pop();
    assert_eq!(
        uneven.to_event().unwrap_err(),
        RowError::UnevenLevels("asks", book.asks.len(), book.asks.len() - 1)
    );
}
