//! MEXC venue: spot (`mexc_spot`, protobuf pushes) and USDT-margined perpetual contracts
//! (`mexc_derivatives`, JSON): instrument lists, frame parsers, plans and server time.
//!
//! Facts relied on, and where they come from:
//! - Spot WebSocket `wss://wbs-api.mexc.com/ws`: JSON control frames (`SUBSCRIPTION`, ack
//!   `{"id":0,"code":0,"msg":<channel>}`, `{"method":"PING"}` → `{"id":0,"code":0,"msg":"PONG"}`), binary
//!   protobuf data (`PushDataV3ApiWrapper`), at most 30 subscriptions per connection, 24 h connection
//!   lifetime, disconnect after one minute without data: MEXC Spot V3 docs, "Websocket Market Streams".
//! - The protobuf schema: github.com/mexcdevelop/websocket-proto (transcribed in `proto/`, decoded by
//!   the hand-written structs of [`pb`]).
//! - Spot book sync (docs, "How to Properly Maintain a Local Copy of the Order Book"): snapshot
//!   `GET /api/v3/depth?symbol=…&limit=5000` (`lastUpdateId`); refetch if `lastUpdateId` < the first
//!   buffered `fromVersion`; drop updates with `toVersion <= lastUpdateId`; the first remaining one
//!   must have `fromVersion <= lastUpdateId + 1`; then `fromVersion == previous toVersion + 1` (also
//!   barter-rs PR #244). A refusal reads `Not Subscribed successfully! [channel]. Reason： …`
//!   (captured from the live feed by public client code).
//! - Contracts `wss://contract.mexc.com/edge`: `sub.deal`/`sub.depth`/`sub.funding.rate`/`sub.ticker`,
//!   acks `{"channel":"rs.sub.<m>","data":"success"}`, errors `{"channel":"rs.error","data":…}`,
//!   `{"method":"ping"}` → `{"channel":"pong","data":ms}`, disconnect after 1 min without a ping
//!   (10-20 s recommended); depth increments carry `version`, each `version == previous + 1`, snapshot
//!   `GET /api/v1/contract/depth/{symbol}` with `version`: MEXC Futures docs, "WebSocket API" and
//!   "How is depth information maintained". Incremental depth is merged by default; `compress:false`
//!   asks for unmerged increments.
//! - Contract sizes: `GET /api/v1/contract/detail` `contractSize` (base per contract); trade `v`, depth
//!   sizes and ticker `holdVol` are contracts. Trades and open interest are stored in base units
//!   (contracts × contractSize), raw contracts beside; books keep contracts, as OKX books do.
//! - Liquidations: MEXC publishes no public liquidation channel (none in the public channel list),
//!   so `mexc_derivatives` does not offer them.
//! - Server time: spot `GET /api/v3/time`, contracts `GET /api/v1/contract/ping`.

pub mod futures;
pub mod instruments;
pub mod parse;
pub mod pb;
pub mod plan;
pub mod time;
