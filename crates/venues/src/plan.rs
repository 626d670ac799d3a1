//! What to connect to and what to ask for, decided purely from an [`ExchangeConfig`] and the venue's
//! instrument list: WebSocket connection plans (URL, subscribe frames and the acks they need, keep-alive,
//! streams carried, books) and REST poll plans. The async shells only execute them. A configured symbol
//! the list does not have is planned nowhere (it is reported by [`super::instruments::refused_gaps`]).

use super::keepalive::KeepAlivePolicy;
use super::parse::{ParseResult, Parsed};
use super::{binance, deribit, gate, mexc, okx};
use crate::book::{BookSnapshot, SyncRule};
use marketprism_config::{ExchangeConfig, OrderBookConfig};
use marketprism_model::instruments::{Instrument, Instruments};
use marketprism_model::{DataType, Exchange, MarketType, Symbol};
use std::sync::Arc;
use std::time::Duration;

/// One frame to send after connecting and the ack ids that prove it was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub frame: String,
    pub acks: Vec<String>,
    /// The planned streams this request alone subscribes, where each request carries its own (Gate,
    /// MEXC contracts): a refused or unanswered request ends exactly these. Empty where one request
    /// subscribes a batch whose refusals name their args (Binance, OKX, Deribit).
    pub streams: Vec<Stream>,
}

/// One data stream a connection carries: its gaps and staleness are tracked per stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stream {
    pub data_type: DataType,
    pub symbol: Symbol,
    pub market_type: MarketType,
    /// Longest normal silence; `None` for streams that may legitimately stay quiet (trades, liquidations).
    pub max_silence: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookPlan {
    pub rule: SyncRule,
    pub symbols: Vec<Symbol>,
    pub config: OrderBookConfig,
}

impl BookPlan {
    /// The books of one connection (`None` when it carries none), with the venue's order-book settings.
    pub fn of(rule: SyncRule, symbols: Vec<Symbol>, config: &ExchangeConfig) -> Option<BookPlan> {
        (!symbols.is_empty()).then(|| BookPlan {
            rule,
            symbols,
            config: config.orderbook.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WsPlan {
    pub venue: Venue,
    /// `binance_derivatives/market`: for logs and the readiness component.
    pub name: String,
    pub url: String,
    pub rest_url: String,
    pub requests: Vec<Request>,
    /// Pause between subscribe frames (Binance counts inbound control frames: 5/s on spot).
    pub request_spacing: Duration,
    pub keepalive: KeepAlivePolicy,
    pub streams: Vec<Stream>,
    pub book: Option<BookPlan>,
    pub subscribe_timeout: Duration,
    pub rotate_after: Duration,
    /// The product line's instrument list (shared, refreshed in place).
    pub instruments: Instruments,
}

impl WsPlan {
    /// Parse one frame with the current instrument list.
    pub fn parse(&self, text: &str, recv_ts_ms: i64) -> ParseResult<Parsed> {
        self.venue.parse(&self.instruments.load(), text, recv_ts_ms)
    }

    /// Parse one binary frame with the current instrument list.
    pub fn parse_binary(&self, bytes: &[u8], recv_ts_ms: i64) -> ParseResult<Parsed> {
        self.venue
            .parse_binary(&self.instruments.load(), bytes, recv_ts_ms)
    }

    /// The venue's name for a planned symbol.
    pub fn venue_symbol(&self, symbol: &Symbol) -> Option<String> {
        self.instruments
            .load()
            .by_symbol(symbol)
            .map(|i| i.venue_symbol.clone())
    }

    /// Frames that make the venue push a fresh in-stream snapshot of one book.
    pub fn resubscribe_book(&self, symbol: &Symbol, id: u64) -> Vec<String> {
        self.venue_symbol(symbol)
            .map(|v| self.venue.resubscribe_book(&v, id))
            .unwrap_or_default()
    }

    /// REST snapshot URL and its request weight.
    pub fn snapshot_request(
        &self,
        rest_url: &str,
        symbol: &Symbol,
        limit: u32,
    ) -> Option<(String, u32)> {
        self.venue
            .snapshot_request(rest_url, &self.venue_symbol(symbol)?, limit)
    }

    /// A REST snapshot of `symbol`'s book (Gate futures sizes are contracts of the listed instrument).
    pub fn parse_snapshot(&self, symbol: &Symbol, text: &str) -> ParseResult<BookSnapshot> {
        match self.venue {
            Venue::Gate(_) => {
                let table = self.instruments.load();
                gate::parse::parse_rest_book(text, table.by_symbol(symbol).map(|i| &**i))
            }
            v => v.parse_snapshot(text),
        }
    }
}

/// A venue's wire dialect: parser, keep-alive frames, book resubscription and REST snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Venue {
    Binance(Exchange),
    Okx(Exchange),
    Deribit,
    Gate(Exchange),
    /// MEXC spot (protobuf data) or contracts (JSON).
    Mexc(Exchange),
}

impl Venue {
    pub fn exchange(self) -> Exchange {
        match self {
            Venue::Binance(e) | Venue::Okx(e) | Venue::Gate(e) | Venue::Mexc(e) => e,
            Venue::Deribit => Exchange::DeribitDerivatives,
        }
    }

    pub fn parse(
        self,
        table: &marketprism_model::instruments::InstrumentTable,
        text: &str,
        recv_ts_ms: i64,
    ) -> ParseResult<Parsed> {
        match self {
            Venue::Binance(e) => binance::parse::parse_frame(table, e, text, recv_ts_ms),
            Venue::Okx(e) => okx::parse::parse_frame(table, e, text, recv_ts_ms),
            Venue::Deribit => deribit::parse::parse_frame(table, text, recv_ts_ms),
            Venue::Gate(e) => gate::parse::parse_frame(table, e, text, recv_ts_ms),
            Venue::Mexc(Exchange::MexcSpot) => mexc::parse::parse_text(text),
            Venue::Mexc(e) => mexc::futures::parse_frame(table, e, text, recv_ts_ms),
        }
    }

    /// One binary frame: MEXC spot's protobuf pushes. No other venue sends binary data frames, so
    /// for them it is a malformed frame.
    pub fn parse_binary(
        self,
        table: &marketprism_model::instruments::InstrumentTable,
        bytes: &[u8],
        recv_ts_ms: i64,
    ) -> ParseResult<Parsed> {
        match self {
            Venue::Mexc(Exchange::MexcSpot) => {
                mexc::parse::parse_binary(table, Exchange::MexcSpot, bytes, recv_ts_ms)
            }
            _ => Err(super::parse::ParseError::new(
                super::parse::ParseErrorReason::InvalidBinary,
                format!(
                    "binary frame of {} bytes: this venue sends text",
                    bytes.len()
                ),
            )),
        }
    }

    /// A planned request frame as sent now: Gate's requests carry their send time (`"time"`, seconds),
    /// which must be within 60 s of the server's (Gate v4 WebSocket docs, "Request"), so a reconnect
    /// or rotation hours later restamps it; other venues' frames go as planned.
    pub fn stamp_request(self, frame: &str) -> String {
        match self {
            Venue::Gate(_) => gate::plan::stamp_time(frame, marketprism_model::now_ms() / 1_000),
            _ => frame.to_owned(),
        }
    }

    /// Whether replies to subscribe requests name neither request nor instrument, so a refusal
    /// belongs to the oldest unanswered request (MEXC contracts: `rs.sub.deal`, `rs.error`).
    pub fn replies_in_order(self) -> bool {
        self == Venue::Mexc(Exchange::MexcDerivatives)
    }

    /// The client-sent keep-alive text: OKX `ping`, Gate `{"time":..,"channel":"spot.ping"}`, MEXC
    /// spot `{"method":"PING"}`, contracts `{"method":"ping"}`.
    pub fn ping_frame(self) -> String {
        match self {
            Venue::Gate(e) => gate::plan::ping_frame(e, marketprism_model::now_ms() / 1_000),
            Venue::Mexc(Exchange::MexcSpot) => r#"{"method":"PING"}"#.to_owned(),
            Venue::Mexc(_) => r#"{"method":"ping"}"#.to_owned(),
            _ => "ping".to_owned(),
        }
    }

    /// Deribit's answer to a `test_request`.
    pub fn test_reply(self, id: u64) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"public/test","params":{{}}}}"#)
    }

    /// Frames that make the venue push a fresh in-stream snapshot of one book (`venue_symbol` as listed).
    pub fn resubscribe_book(self, venue_symbol: &str, id: u64) -> Vec<String> {
        match self {
            Venue::Okx(_) => {
                let arg = format!(r#"{{"channel":"books","instId":"{venue_symbol}"}}"#);
                vec![
                    format!(r#"{{"id":"u{id}","op":"unsubscribe","args":[{arg}]}}"#),
                    format!(r#"{{"id":"s{id}","op":"subscribe","args":[{arg}]}}"#),
                ]
            }
            Venue::Deribit => {
                let ch = deribit::plan::book_channel(venue_symbol);
                vec![
                    format!(
                        r#"{{"jsonrpc":"2.0","id":{id},"method":"public/unsubscribe","params":{{"channels":["{ch}"]}}}}"#
                    ),
                    format!(
                        r#"{{"jsonrpc":"2.0","id":{},"method":"public/subscribe","params":{{"channels":["{ch}"]}}}}"#,
                        id + 1
                    ),
                ]
            }
            Venue::Binance(_) | Venue::Gate(_) | Venue::Mexc(_) => Vec::new(),
        }
    }

    /// REST snapshot URL and its request weight (`venue_symbol` as listed).
    pub fn snapshot_request(
        self,
        rest_url: &str,
        venue_symbol: &str,
        limit: u32,
    ) -> Option<(String, u32)> {
        match self {
            Venue::Binance(Exchange::BinanceSpot) => {
                let weight = match limit {
                    0..=100 => 5,
                    101..=500 => 25,
                    501..=1000 => 50,
                    _ => 250,
                };
                Some((
                    format!("{rest_url}/api/v3/depth?symbol={venue_symbol}&limit={limit}"),
                    weight,
                ))
            }
            Venue::Binance(_) => {
                let limit = limit.min(1000);
                let weight = match limit {
                    0..=50 => 2,
                    51..=100 => 5,
                    101..=500 => 10,
                    _ => 20,
                };
                Some((
                    format!("{rest_url}/fapi/v1/depth?symbol={venue_symbol}&limit={limit}"),
                    weight,
                ))
            }
            Venue::Okx(_) => Some((
                format!("{rest_url}/api/v5/market/books?instId={venue_symbol}&sz=400"),
                1,
            )),
            Venue::Deribit => None,
            // Public endpoints: 200 requests / 10 s per endpoint; depth at most 100 levels.
            Venue::Gate(Exchange::GateSpot) => Some((
                format!(
                    "{rest_url}/api/v4/spot/order_book?currency_pair={venue_symbol}&limit={}&with_id=true",
                    limit.clamp(1, 100)
                ),
                1,
            )),
            Venue::Gate(_) => Some((
                format!(
                    "{rest_url}/api/v4/futures/usdt/order_book?contract={venue_symbol}&limit={}&with_id=true",
                    limit.clamp(1, 100)
                ),
                1,
            )),
            Venue::Mexc(Exchange::MexcSpot) => Some((
                format!(
                    "{rest_url}/api/v3/depth?symbol={venue_symbol}&limit={}",
                    limit.min(5000)
                ),
                1,
            )),
            Venue::Mexc(_) => Some((
                format!(
                    "{rest_url}/api/v1/contract/depth/{venue_symbol}?limit={}",
                    limit.min(1000)
                ),
                1,
            )),
        }
    }

    pub fn parse_snapshot(self, text: &str) -> ParseResult<BookSnapshot> {
        match self {
            Venue::Okx(_) => okx::parse::parse_rest_books(text),
            Venue::Gate(_) => gate::parse::parse_rest_book(text, None),
            Venue::Mexc(Exchange::MexcSpot) => mexc::parse::parse_depth_snapshot(text),
            Venue::Mexc(_) => mexc::futures::parse_depth_snapshot(text),
            _ => binance::parse::parse_depth_snapshot(text),
        }
    }
}

/// What a REST poller fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollKind {
    BinanceOpenInterest,
    BinanceRatio(binance::parse::RatioKind),
    OkxOpenInterest,
    OkxRatio(okx::parse::RatioKind, Symbol),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PollPlan {
    pub exchange: Exchange,
    pub kind: PollKind,
    pub url: String,
    pub weight: u32,
    pub period: String,
    pub data_type: DataType,
    pub symbol: Symbol,
    pub market_type: MarketType,
    /// The product line's instrument list, for parsing replies.
    pub instruments: Instruments,
}

/// The venue's 2026 production base URLs (ws, rest), overridable per [`marketprism_config::EndpointsConfig`].
pub fn base_urls(config: &ExchangeConfig) -> (String, String) {
    let (ws, rest) = match config.exchange {
        Exchange::BinanceSpot => ("wss://stream.binance.com:9443", "https://api.binance.com"),
        Exchange::BinanceDerivatives => ("wss://fstream.binance.com", "https://fapi.binance.com"),
        Exchange::OkxSpot | Exchange::OkxDerivatives => {
            ("wss://ws.okx.com:8443", "https://www.okx.com")
        }
        Exchange::DeribitDerivatives => ("wss://www.deribit.com", "https://www.deribit.com"),
        Exchange::GateSpot => ("wss://api.gateio.ws", "https://api.gateio.ws"),
        Exchange::GateDerivatives => ("wss://fx-ws.gateio.ws", "https://api.gateio.ws"),
        Exchange::MexcSpot => ("wss://wbs-api.mexc.com", "https://api.mexc.com"),
        Exchange::MexcDerivatives => ("wss://contract.mexc.com", "https://contract.mexc.com"),
    };
    let pick =
        |o: &Option<String>, d: &str| o.as_deref().unwrap_or(d).trim_end_matches('/').to_owned();
    (
        pick(&config.endpoints.ws_url, ws),
        pick(&config.endpoints.rest_url, rest),
    )
}

/// WebSocket plans for one configured exchange; only symbols `instruments` lists are planned.
pub fn ws_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<WsPlan> {
    match config.exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => {
            binance::plan::ws_plans(config, instruments)
        }
        Exchange::OkxSpot | Exchange::OkxDerivatives => okx::plan::ws_plans(config, instruments),
        Exchange::DeribitDerivatives => deribit::plan::ws_plans(config, instruments),
        Exchange::GateSpot | Exchange::GateDerivatives => gate::plan::ws_plans(config, instruments),
        Exchange::MexcSpot | Exchange::MexcDerivatives => mexc::plan::ws_plans(config, instruments),
    }
}

/// REST poll plans for one configured exchange; only symbols `instruments` lists are planned.
pub fn poll_plans(config: &ExchangeConfig, instruments: &Instruments) -> Vec<PollPlan> {
    match config.exchange {
        Exchange::BinanceDerivatives => binance::plan::poll_plans(config, instruments),
        Exchange::OkxDerivatives => okx::plan::poll_plans(config, instruments),
        _ => Vec::new(),
    }
}

/// The configured symbols the venue lists, as its instruments, in config order.
pub(crate) fn listed_instruments(
    config: &ExchangeConfig,
    instruments: &Instruments,
) -> Vec<Arc<Instrument>> {
    instruments.load().resolve(&config.symbols).0
}

/// One PollPlan per (data type, listed instrument) the venue polls: `endpoint(data_type, instrument,
/// rest_base, period)` names the poll kind, URL and limiter weight, or `None` for a data type the venue
/// streams instead.
pub(crate) fn poll_plans_from(
    config: &ExchangeConfig,
    instruments: &Instruments,
    endpoint: impl Fn(DataType, &Instrument, &str, &str) -> Option<(PollKind, String, u32)>,
) -> Vec<PollPlan> {
    let (_, rest) = base_urls(config);
    let period = &config.lsr_period;
    let listed = listed_instruments(config, instruments);
    let mut out = Vec::new();
    for &data_type in &config.data_types {
        for inst in &listed {
            let Some((kind, url, weight)) = endpoint(data_type, inst, &rest, period) else {
                continue;
            };
            out.push(PollPlan {
                exchange: config.exchange,
                kind,
                url,
                weight,
                period: period.clone(),
                data_type,
                symbol: inst.symbol.clone(),
                market_type: inst.market_type,
                instruments: instruments.clone(),
            });
        }
    }
    out
}

/// Whether the product line offers `data_type` at all (the venue plans route exactly these).
pub fn offered(exchange: Exchange, data_type: DataType) -> bool {
    use DataType::*;
    match exchange {
        Exchange::BinanceSpot | Exchange::OkxSpot => matches!(data_type, Trades | Orderbooks),
        Exchange::BinanceDerivatives | Exchange::OkxDerivatives => {
            !matches!(data_type, VolatilityIndices | Gaps)
        }
        Exchange::DeribitDerivatives => {
            matches!(data_type, Trades | Orderbooks | VolatilityIndices)
        }
        Exchange::GateSpot => matches!(data_type, Trades | Orderbooks),
        // futures.trades, futures.order_book_update, futures.tickers (funding, open interest),
        // futures.public_liquidates; Gate publishes no long/short ratio stream.
        Exchange::GateDerivatives => matches!(
            data_type,
            Trades | Orderbooks | FundingRates | OpenInterests | Liquidations
        ),
        Exchange::MexcSpot => matches!(data_type, Trades | Orderbooks),
        Exchange::MexcDerivatives => {
            matches!(
                data_type,
                Trades | Orderbooks | FundingRates | OpenInterests
            )
        }
    }
}

/// Data types this venue cannot deliver (logged once at start, never silently dropped).
pub fn unsupported(config: &ExchangeConfig) -> Vec<DataType> {
    config
        .data_types
        .iter()
        .copied()
        .filter(|&d| !offered(config.exchange, d))
        .collect()
}

/// Common fields of a plan from the config.
pub(crate) fn plan_defaults(config: &ExchangeConfig) -> (Duration, Duration) {
    (
        Duration::from_secs(config.subscribe_timeout_s),
        Duration::from_secs(config.rotate_after_s),
    )
}
