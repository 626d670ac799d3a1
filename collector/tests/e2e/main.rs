//! End-to-end: the real connectors against the in-process exchange simulator, for every fault it can
//! inject. Each test asserts what the collector makes observable: events, gap events, books, counters.

mod bench;
mod books;
mod checks;
mod common;
mod coverage;
mod faults;
mod faults_binance;
mod faults_deribit;
mod faults_gate;
mod faults_mexc;
mod faults_okx;
mod instruments;
mod metrics;
mod signals;
mod streams;
mod streams_books;
