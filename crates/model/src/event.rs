//! The normalized event and its 13 payloads (8 data types, gap, 4 signal types), with their natural keys.

use super::identity::{DataType, Exchange, MarketType, Symbol};
use super::signal::{CvdSignal, FusionSignal, OfiSignal, SignalEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One normalized market-data event. Serialized as JSON on NATS; one row in ClickHouse and Parquet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub exchange: Exchange,
    pub market_type: MarketType,
    pub symbol: Symbol,
    /// Exchange event time, UTC milliseconds: the authoritative time of the event.
    pub ts_ms: i64,
    /// Local receive time, UTC milliseconds.
    pub recv_ts_ms: i64,
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    Orderbook(OrderBookSnapshot),
    Trade(Trade),
    FundingRate(FundingRate),
    OpenInterest(OpenInterest),
    Liquidation(Liquidation),
    LsrTopPosition(LongShortRatio),
    LsrAllAccount(LongShortRatio),
    VolatilityIndex(VolatilityIndex),
    Gap(Gap),
    SignalOfi(OfiSignal),
    SignalCvd(CvdSignal),
    SignalFusion(FusionSignal),
    SignalEvent(SignalEvent),
}

/// Taker side for trades; order side for liquidations (`Sell` = a long position was liquidated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// One price level: `[price, size]` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level(pub Decimal, pub Decimal);

/// Top-N levels per side of a local L2 book, best first, after applying the update `last_update_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderBookSnapshot {
    /// The venue's id of the last update applied (Binance `u`, OKX `seqId`, Deribit `change_id`).
    pub last_update_id: i64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// The unit the venue counts a size in; `raw_*` columns keep the venue's number in this unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityUnit {
    /// Base asset (Binance spot and USD-M `q`, OKX spot `sz`, Deribit linear and options `amount`).
    Base,
    /// Contracts of the instrument's contract value (OKX SWAP/FUTURES `sz`, `oi`).
    Contracts,
    /// Quote currency, usually USD (Deribit inverse `amount`).
    Quote,
}

impl QuantityUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            QuantityUnit::Base => "base",
            QuantityUnit::Contracts => "contracts",
            QuantityUnit::Quote => "quote",
        }
    }

    pub fn parse(s: &str) -> Option<QuantityUnit> {
        [
            QuantityUnit::Base,
            QuantityUnit::Contracts,
            QuantityUnit::Quote,
        ]
        .into_iter()
        .find(|u| u.as_str() == s)
    }
}

/// A size as stored: `quantity` in base units, and the venue's own number and unit beside it.
/// Linear contracts: base = contracts × ctVal (exact). Inverse contracts and quote sizes:
/// base = quote amount / price, rounded to 18 fractional digits (the raw value stays exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quantity {
    pub base: Decimal,
    pub raw: Decimal,
    pub unit: QuantityUnit,
}

impl Quantity {
    /// A size the venue already gives in the base asset.
    pub fn base(q: Decimal) -> Quantity {
        Quantity {
            base: q,
            raw: q,
            unit: QuantityUnit::Base,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::Trade")]
pub struct Trade {
    /// The venue's trade id (Binance aggregate id `a` or trade id `t`, OKX `tradeId`, Deribit `trade_id`).
    pub trade_id: String,
    pub price: Decimal,
    /// Base-asset quantity (see [`Quantity`]).
    pub quantity: Decimal,
    /// The size as the venue sent it, in `quantity_unit`.
    pub raw_quantity: Decimal,
    pub quantity_unit: QuantityUnit,
    /// Taker side.
    pub side: Side,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundingRate {
    /// `None` when the push carries no current rate (OKX sends some with only `nextFundingRate`).
    pub funding_rate: Option<Decimal>,
    /// When the current rate settles (Binance `T`, OKX `fundingTime`), UTC ms.
    pub funding_time_ms: i64,
    pub next_funding_time_ms: Option<i64>,
    /// The predicted next rate (OKX `nextFundingRate`), when given.
    pub next_funding_rate: Option<Decimal>,
    pub mark_price: Option<Decimal>,
    pub index_price: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::OpenInterest")]
pub struct OpenInterest {
    /// In base currency (Binance `openInterest`, OKX `oiCcy` or `oi` × ctVal).
    pub open_interest: Decimal,
    /// The venue's number (OKX `oi` in contracts), in `open_interest_unit`.
    pub raw_open_interest: Decimal,
    pub open_interest_unit: QuantityUnit,
    /// In USD or quote currency, when the venue gives it.
    pub open_interest_value: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::Liquidation")]
pub struct Liquidation {
    /// Side of the liquidation order: `Sell` closes a long.
    pub side: Side,
    pub price: Decimal,
    /// Base-asset quantity (see [`Quantity`]).
    pub quantity: Decimal,
    pub raw_quantity: Decimal,
    pub quantity_unit: QuantityUnit,
}

/// What may arrive on NATS: messages published before sizes carried their raw value and unit (still in
/// JetStream across an upgrade) have neither; their size was the venue's, taken as base (the old meaning).
mod wire {
    use super::{Decimal, QuantityUnit, Side};
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Trade {
        trade_id: String,
        price: Decimal,
        quantity: Decimal,
        #[serde(default)]
        raw_quantity: Option<Decimal>,
        #[serde(default)]
        quantity_unit: Option<QuantityUnit>,
        side: Side,
    }

    impl From<Trade> for super::Trade {
        fn from(t: Trade) -> Self {
            super::Trade {
                trade_id: t.trade_id,
                price: t.price,
                quantity: t.quantity,
                raw_quantity: t.raw_quantity.unwrap_or(t.quantity),
                quantity_unit: t.quantity_unit.unwrap_or(QuantityUnit::Base),
                side: t.side,
            }
        }
    }

    #[derive(Deserialize)]
    pub struct Liquidation {
        side: Side,
        price: Decimal,
        quantity: Decimal,
        #[serde(default)]
        raw_quantity: Option<Decimal>,
        #[serde(default)]
        quantity_unit: Option<QuantityUnit>,
    }

    impl From<Liquidation> for super::Liquidation {
        fn from(l: Liquidation) -> Self {
            super::Liquidation {
                side: l.side,
                price: l.price,
                quantity: l.quantity,
                raw_quantity: l.raw_quantity.unwrap_or(l.quantity),
                quantity_unit: l.quantity_unit.unwrap_or(QuantityUnit::Base),
            }
        }
    }

    #[derive(Deserialize)]
    pub struct OpenInterest {
        open_interest: Decimal,
        #[serde(default)]
        raw_open_interest: Option<Decimal>,
        #[serde(default)]
        open_interest_unit: Option<QuantityUnit>,
        #[serde(default)]
        open_interest_value: Option<Decimal>,
    }

    impl From<OpenInterest> for super::OpenInterest {
        fn from(o: OpenInterest) -> Self {
            super::OpenInterest {
                open_interest: o.open_interest,
                raw_open_interest: o.raw_open_interest.unwrap_or(o.open_interest),
                open_interest_unit: o.open_interest_unit.unwrap_or(QuantityUnit::Base),
                open_interest_value: o.open_interest_value,
            }
        }
    }
}

/// Long/short ratio, for `lsr_top_positions` and `lsr_all_accounts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongShortRatio {
    /// Aggregation period as the venue names it (`5m`, `1H`, …).
    pub period: String,
    pub long_short_ratio: Decimal,
    pub long_ratio: Option<Decimal>,
    pub short_ratio: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolatilityIndex {
    /// Index name as the venue has it (`btc_usd`).
    pub index_name: String,
    pub volatility: Decimal,
}

/// A stream interruption: data of `data_type` for this instrument may be missing between `start_ms` and `end_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub data_type: DataType,
    pub start_ms: i64,
    pub end_ms: i64,
    pub cause: GapCause,
    /// Free text: close code, expected and received sequence ids, …
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapCause {
    /// The connection closed or failed.
    Disconnect,
    /// A sequence check failed (`pu`, `U/u`, `prevSeqId`, `change_id`, trade ids).
    SequenceGap,
    /// The stream stayed open but went silent past its watchdog.
    Stale,
    /// An integrity check (checksum, crossed book) failed and the book was rebuilt.
    Integrity,
    /// The venue announced a shutdown or maintenance.
    ServerShutdown,
    /// A bounded buffer overflowed and events were dropped.
    Overflow,
    /// This collector lost its instance lock (fencing) or was stopped.
    Fenced,
    /// The venue refused the subscription or does not list the instrument: nothing was delivered.
    Refused,
    /// A frame or value could not be parsed or stored exactly (malformed, out of range, more digits
    /// than the schema holds): the event was rejected and counted, and this gap marks where.
    Rejected,
    /// A collector task panicked (a bug); it was logged, counted and restarted with backoff.
    Crashed,
    /// The shard's instance lock moved to another holder, or a connection rotation could not wait
    /// for a tick-by-tick book to be taken over: the time between the last event the previous
    /// holder (connection) published and the first of the new one.
    Handover,
}

impl GapCause {
    pub fn as_str(self) -> &'static str {
        match self {
            GapCause::Disconnect => "disconnect",
            GapCause::SequenceGap => "sequence_gap",
            GapCause::Stale => "stale",
            GapCause::Integrity => "integrity",
            GapCause::ServerShutdown => "server_shutdown",
            GapCause::Overflow => "overflow",
            GapCause::Fenced => "fenced",
            GapCause::Refused => "refused",
            GapCause::Rejected => "rejected",
            GapCause::Crashed => "crashed",
            GapCause::Handover => "handover",
        }
    }
}

impl Payload {
    pub fn data_type(&self) -> DataType {
        match self {
            Payload::Orderbook(_) => DataType::Orderbooks,
            Payload::Trade(_) => DataType::Trades,
            Payload::FundingRate(_) => DataType::FundingRates,
            Payload::OpenInterest(_) => DataType::OpenInterests,
            Payload::Liquidation(_) => DataType::Liquidations,
            Payload::LsrTopPosition(_) => DataType::LsrTopPositions,
            Payload::LsrAllAccount(_) => DataType::LsrAllAccounts,
            Payload::VolatilityIndex(_) => DataType::VolatilityIndices,
            Payload::Gap(_) => DataType::Gaps,
            Payload::SignalOfi(_) => DataType::SignalOfi,
            Payload::SignalCvd(_) => DataType::SignalCvd,
            Payload::SignalFusion(_) => DataType::SignalFusion,
            Payload::SignalEvent(_) => DataType::SignalEvents,
        }
    }
}

impl Event {
    pub fn data_type(&self) -> DataType {
        self.payload.data_type()
    }

    /// `{data_type}.{exchange}.{market_type}.{symbol}`, e.g. `trade.binance_spot.spot.BTC-USDT`.
    pub fn subject(&self) -> String {
        let mut s = String::with_capacity(48);
        self.write_subject(&mut s);
        s
    }

    fn write_subject(&self, s: &mut String) {
        let _ = write!(
            s,
            "{}.{}.{}.{}",
            self.data_type().subject_token(),
            self.exchange,
            self.market_type,
            self.symbol
        );
    }

    /// The natural key within the subject: equal for two copies of the same fact, different otherwise.
    /// It is the ReplacingMergeTree key in ClickHouse and the tail of the JetStream message id.
    pub fn natural_key(&self) -> String {
        match &self.payload {
            Payload::Trade(t) => t.trade_id.clone(),
            Payload::Orderbook(b) => format!("{}:{}", self.ts_ms, b.last_update_id),
            Payload::FundingRate(_) | Payload::OpenInterest(_) | Payload::VolatilityIndex(_) => {
                self.ts_ms.to_string()
            }
            // Values, not their text: `1.4604426` and `1.46044260` (as a store gives a decimal
            // back) are one fact, so a replayed liquidation has the id the live one had.
            Payload::Liquidation(l) => {
                format!(
                    "{}:{}:{}:{}",
                    self.ts_ms,
                    l.side.as_str(),
                    l.price.normalize(),
                    l.quantity.normalize()
                )
            }
            Payload::LsrTopPosition(r) | Payload::LsrAllAccount(r) => {
                format!("{}:{}", r.period, self.ts_ms)
            }
            Payload::Gap(g) => format!("{}:{}:{}", g.data_type, g.start_ms, g.cause.as_str()),
            Payload::SignalOfi(o) => format!("{}:{}", self.ts_ms, o.update_id),
            Payload::SignalCvd(c) => c.trade_id.clone(),
            Payload::SignalFusion(f) => format!("{}:{}", self.ts_ms, f.source),
            Payload::SignalEvent(v) => format!("{}:{}:{}", self.ts_ms, v.source, v.seq),
        }
    }

    /// Deterministic JetStream `Nats-Msg-Id`: `{subject}:{natural key}`.
    /// Two collectors, or one collector after a reconnect, publishing the same fact get the same id,
    /// so the server's duplicate window drops the second copy.
    pub fn msg_id(&self) -> String {
        let mut s = String::with_capacity(64);
        self.write_subject(&mut s);
        s.push(':');
        s.push_str(&self.natural_key());
        s
    }
}

/// The subject part of a [`Event::msg_id`]: everything before the first ':' (no subject token holds one).
pub fn subject_of_msg_id(msg_id: &str) -> &str {
    msg_id.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn trade(id: &str) -> Event {
        Event {
            exchange: Exchange::BinanceSpot,
            market_type: MarketType::Spot,
            symbol: Symbol::new("BTC-USDT").unwrap(),
            ts_ms: 1_700_000_000_123,
            recv_ts_ms: 1_700_000_000_130,
            payload: Payload::Trade(Trade {
                trade_id: id.into(),
                price: Decimal::from_str("42219.90").unwrap(),
                quantity: Decimal::from_str("0.00000001").unwrap(),
                raw_quantity: Decimal::from_str("0.00000001").unwrap(),
                quantity_unit: QuantityUnit::Base,
                side: Side::Buy,
            }),
        }
    }

    #[test]
    fn the_msg_id_starts_with_the_subject() {
        for event in crate::synthetic::synthetic_events(5, 18) {
            assert_eq!(subject_of_msg_id(&event.msg_id()), event.subject());
        }
    }

    #[test]
    fn subject_and_msg_id_are_deterministic() {
        let a = trade("12345");
        assert_eq!(a.subject(), "trade.binance_spot.spot.BTC-USDT");
        assert_eq!(a.msg_id(), "trade.binance_spot.spot.BTC-USDT:12345");
        let mut later = a.clone();
        later.recv_ts_ms += 5_000; // a re-receive after reconnect is the same fact
        assert_eq!(later.msg_id(), a.msg_id());
        assert_ne!(trade("12346").msg_id(), a.msg_id());
    }

    #[test]
    fn a_liquidation_has_one_id_whatever_the_scale_of_its_decimals() {
        let liquidation = |price: &str, qty: &str| Event {
            payload: Payload::Liquidation(Liquidation {
                side: Side::Sell,
                price: Decimal::from_str(price).unwrap(),
                quantity: Decimal::from_str(qty).unwrap(),
                raw_quantity: Decimal::from_str(qty).unwrap(),
                quantity_unit: QuantityUnit::Base,
            }),
            ..trade("1")
        };
        // As the venue sent it, and as Parquet / ClickHouse give it back (trailing zeros gone).
        let live = liquidation("1.46044260", "0.500");
        let stored = liquidation("1.4604426", "0.5");
        assert_eq!(live.msg_id(), stored.msg_id());
        assert_ne!(live.msg_id(), liquidation("1.4604427", "0.5").msg_id());
    }

    #[test]
    fn messages_from_before_the_unit_columns_still_decode() {
        let old = r#"{"exchange":"okx_spot","market_type":"spot","symbol":"BTC-USDT","ts_ms":1,"recv_ts_ms":2,"payload":{"trade":{"trade_id":"9","price":"1.5","quantity":"0.25","side":"buy"}}}"#;
        let e: Event = serde_json::from_str(old).unwrap();
        let Payload::Trade(t) = e.payload else {
            panic!()
        };
        assert_eq!(
            (t.raw_quantity, t.quantity_unit),
            (Decimal::from_str("0.25").unwrap(), QuantityUnit::Base)
        );
        let old_funding = r#"{"exchange":"okx_derivatives","market_type":"perpetual","symbol":"BTC-USDT","ts_ms":1,"recv_ts_ms":2,"payload":{"funding_rate":{"funding_rate":"0.0001","funding_time_ms":3,"next_funding_time_ms":null,"mark_price":null,"index_price":null}}}"#;
        let e: Event = serde_json::from_str(old_funding).unwrap();
        let Payload::FundingRate(f) = e.payload else {
            panic!()
        };
        assert_eq!(f.funding_rate, Some(Decimal::from_str("0.0001").unwrap()));
        assert_eq!(f.next_funding_rate, None);
    }

    #[test]
    fn decimals_survive_json_exactly() {
        let e = trade("1");
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"42219.90\""), "{json}");
        assert!(json.contains("\"0.00000001\""), "{json}");
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }
}
