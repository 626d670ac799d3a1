//! The MEXC spot push messages as `prost` structs, written by hand from the venue's published schema
//! (`proto/*.proto` beside this file, from github.com/mexcdevelop/websocket-proto): same message
//! names, field names (snake_case) and tags, so the wire format is the venue's. No build script and
//! no `protoc`: only the messages marketprism subscribes to are declared; any other field or `oneof`
//! body on the wire is skipped by the decoder as unknown (protobuf's forward compatibility), so a body
//! we did not ask for decodes with `body: None`.
//!
//! Wire shapes (proto3): strings are length-delimited (wire type 2), `int32`/`int64` varints (wire
//! type 0); the `oneof body` tags (313, 314) take two-byte varint keys.

/// `PushDataV3ApiWrapper`: the envelope of every binary data frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushDataV3ApiWrapper {
    /// `spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT`.
    #[prost(string, tag = "1")]
    pub channel: String,
    /// `BTCUSDT`.
    #[prost(string, optional, tag = "3")]
    pub symbol: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub symbol_id: Option<String>,
    /// Message creation time, UTC ms.
    #[prost(int64, optional, tag = "5")]
    pub create_time: Option<i64>,
    /// Push time, UTC ms (the "event time" of the docs).
    #[prost(int64, optional, tag = "6")]
    pub send_time: Option<i64>,
    #[prost(oneof = "Body", tags = "313, 314")]
    pub body: Option<Body>,
}

/// The `oneof body` variants marketprism subscribes to.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// Tag 313, `spot@public.aggre.depth.v3.api.pb@…`.
    #[prost(message, tag = "313")]
    PublicAggreDepths(PublicAggreDepthsV3Api),
    /// Tag 314, `spot@public.aggre.deals.v3.api.pb@…`.
    #[prost(message, tag = "314")]
    PublicAggreDeals(PublicAggreDealsV3Api),
}

/// `PublicAggreDepthsV3Api`: changed levels between two book versions (inclusive).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PublicAggreDepthsV3Api {
    #[prost(message, repeated, tag = "1")]
    pub asks: Vec<PublicAggreDepthV3ApiItem>,
    #[prost(message, repeated, tag = "2")]
    pub bids: Vec<PublicAggreDepthV3ApiItem>,
    #[prost(string, tag = "3")]
    pub event_type: String,
    /// Decimal text of an integer version.
    #[prost(string, tag = "4")]
    pub from_version: String,
    /// Decimal text of an integer version.
    #[prost(string, tag = "5")]
    pub to_version: String,
}

/// One level: price and the absolute quantity at it (`"0"` removes the level).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PublicAggreDepthV3ApiItem {
    #[prost(string, tag = "1")]
    pub price: String,
    #[prost(string, tag = "2")]
    pub quantity: String,
}

/// `PublicAggreDealsV3Api`: the trades of one push window.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PublicAggreDealsV3Api {
    #[prost(message, repeated, tag = "1")]
    pub deals: Vec<PublicAggreDealsV3ApiItem>,
    #[prost(string, tag = "2")]
    pub event_type: String,
}

/// One trade.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PublicAggreDealsV3ApiItem {
    #[prost(string, tag = "1")]
    pub price: String,
    /// Base-asset quantity.
    #[prost(string, tag = "2")]
    pub quantity: String,
    /// 1: buy (taker bought), 2: sell.
    #[prost(int32, tag = "3")]
    pub trade_type: i32,
    /// Trade time, UTC ms.
    #[prost(int64, tag = "4")]
    pub time: i64,
    /// The venue's trade id (newer schema revision; empty when not sent).
    #[prost(string, tag = "5")]
    pub trade_id: String,
}
