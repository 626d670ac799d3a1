//! Gate.io venue (API v4): `gate_spot` (spot pairs) and `gate_derivatives` (USDT-settled perpetual
//! contracts): instrument lists, frame parser, plans and server time.
//!
//! Sources (Gate API v4 documentation; checked 2026-11 through public copies of the docs, tardis-node,
//! cryptofeed and the recorded frames in `shared/fixtures/recorded/gate_spot/`):
//! - WebSocket: spot `wss://api.gateio.ws/ws/v4/`, USDT futures `wss://fx-ws.gateio.ws/v4/ws/usdt`.
//!   Request `{"time":<s>,"id":<int>,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT"]}`;
//!   the answer echoes `id` and `channel` with `"result":{"status":"success"}`, or carries
//!   `"error":{"code":<int>,"message":".."}` with `"result":{"status":"fail"}` (code 2 = invalid
//!   argument, e.g. `unknown currency pair: LUNARLENS_USDT`; one bad pair fails the whole request, so
//!   each request here carries one instrument). The echo of `id` and the error frame are as ccxt's Gate
//!   WebSocket client records them (its `handleErrorMessage`, which also notes the id must fit an int32).
//! - Application keep-alive: `{"time":<s>,"channel":"spot.ping"}` (`futures.ping`) answered by
//!   `{"channel":"spot.pong",..}`; the docs' demo pings every 10 s.
//! - Data: `spot.trades`, `spot.order_book_update`, `futures.trades`, `futures.order_book_update`,
//!   `futures.tickers` (funding rate, mark/index price, `total_size` = open interest in contracts),
//!   `futures.public_liquidates` (public liquidation orders, aggregated per contract per second).
//! - REST: `GET /api/v4/spot/currency_pairs`, `/api/v4/futures/usdt/contracts`,
//!   `/api/v4/spot/order_book?currency_pair=..&limit=..&with_id=true`,
//!   `/api/v4/futures/usdt/order_book?contract=..&limit=..&with_id=true`, `/api/v4/spot/time`;
//!   public endpoints allow 200 requests / 10 s per endpoint and IP (APIv4 docs, "Frequency limit
//!   rule"). Spot `order_book` answers `current`/`update` in ms; futures in seconds with a fraction.
//!   The docs name no maximum `limit`; 100 levels are asked for (an assumption kept modest).
//! - Book continuity (both product lines): buffer updates, fetch the snapshot with `id`; drop updates
//!   with `u < id + 1`; the first applied must satisfy `U <= id + 1 <= u`; then each `U == previous u + 1`.

pub mod instruments;
pub mod parse;
pub mod plan;
pub mod time;
