//! Wire-level tests of the exchange simulator with a plain WebSocket/HTTP client.

mod binance;
mod clock;
mod common;
mod deribit;
mod faults;
mod gate;
mod mexc;
mod okx;
