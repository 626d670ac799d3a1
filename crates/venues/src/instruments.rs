//! Loading each product line's instrument list from the venue (at start, then on a timer) and the
//! report of configured symbols the venue does not list. Pure pieces ([`listing_urls`], [`parse_listing`],
//! [`refused_gaps`]) and the thin async shells ([`load`], [`refresh`]).

use super::connection::backoff::{backoff, jitter};
use super::parse::ParseResult;
use super::plan::base_urls;
use super::rate_limit::RateLimiter;
use super::{binance, deribit, gate, mexc, okx};
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::{
    BadFrame, InstrumentRowsSkipped, InstrumentsLoaded, RestFailed, SymbolUnlisted,
};
use marketprism_config::ExchangeConfig;
use marketprism_model::instruments::{InstrumentTable, Instruments};
use marketprism_model::{
    DataType, Event, Exchange, Gap, GapCause, MarketType, Payload, Symbol, now_ms,
};
use marketprism_telemetry::ReadinessGuard;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The rows of a list read one by one (`rows`: the list's JSON array, each row as the venue sent it):
/// `row` maps a row to `Some(instrument)`, `None` for a row left out by design (not trading), or an
/// error. A row that cannot be read or mapped (a name that is no `BASE-QUOTE`, like a pair named in
/// Chinese characters, or an unknown contract kind) is left out, logged and counted
/// (`marketprism_exchange_instrument_rows_skipped_total`): one odd listing never takes a product line
/// offline. A list none of whose rows maps is the list's error (its shape changed).
pub(crate) fn each_row<'a>(
    exchange: Exchange,
    rows: &[&'a serde_json::value::RawValue],
    mut row: impl FnMut(&'a str) -> ParseResult<Option<marketprism_model::instruments::Instrument>>,
) -> ParseResult<Vec<marketprism_model::instruments::Instrument>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut skipped = Vec::new();
    for raw in rows {
        match row(raw.get()) {
            Ok(Some(i)) => out.push(i),
            Ok(None) => {}
            Err(e) => skipped.push(e),
        }
    }
    if let Some(first) = skipped.first() {
        if out.is_empty() {
            return Err(first.clone());
        }
        InstrumentRowsSkipped {
            exchange,
            count: skipped.len(),
            first: &first.to_string(),
        }
        .emit();
    }
    Ok(out)
}

/// The list endpoints of a product line (OKX derivatives needs one per instType).
pub(crate) fn listing_urls(exchange: Exchange, rest: &str) -> Vec<String> {
    match exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => {
            binance::instruments::listing_urls(exchange, rest)
        }
        Exchange::OkxSpot | Exchange::OkxDerivatives => {
            okx::instruments::listing_urls(exchange, rest)
        }
        Exchange::DeribitDerivatives => deribit::instruments::listing_urls(rest),
        Exchange::GateSpot | Exchange::GateDerivatives => {
            gate::instruments::listing_urls(exchange, rest)
        }
        Exchange::MexcSpot | Exchange::MexcDerivatives => {
            mexc::instruments::listing_urls(exchange, rest)
        }
    }
}

/// One list body → instruments, by the venue's own parser.
pub fn parse_listing(
    exchange: Exchange,
    body: &str,
) -> ParseResult<Vec<marketprism_model::instruments::Instrument>> {
    match exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => {
            binance::instruments::parse_listing(exchange, body)
        }
        Exchange::OkxSpot | Exchange::OkxDerivatives => {
            okx::instruments::parse_listing(exchange, body)
        }
        Exchange::DeribitDerivatives => deribit::instruments::parse_listing(body),
        Exchange::GateSpot | Exchange::GateDerivatives => {
            gate::instruments::parse_listing(exchange, body)
        }
        Exchange::MexcSpot | Exchange::MexcDerivatives => {
            mexc::instruments::parse_listing(exchange, body)
        }
    }
}

/// Fetch every list of the product line once: the table, or why not.
pub async fn fetch(
    config: &ExchangeConfig,
    http: &reqwest::Client,
    limiter: &RateLimiter,
) -> Result<InstrumentTable, (String, Option<u16>, String)> {
    let (_, rest) = base_urls(config);
    let mut all = Vec::new();
    for url in listing_urls(config.exchange, &rest) {
        // exchangeInfo weighs 20 on spot; every other list is cheap.
        limiter
            .acquire(if config.exchange == Exchange::BinanceSpot {
                20
            } else if config.exchange == Exchange::MexcSpot {
                10
            } else {
                1
            })
            .await;
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| (url.clone(), None, error_chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            limiter.honour_rejection(status.as_u16(), resp.headers());
            let body = resp.text().await.unwrap_or_default();
            return Err((url, Some(status.as_u16()), body));
        }
        let body = resp
            .text()
            .await
            .map_err(|e| (url.clone(), None, error_chain(&e)))?;
        match parse_listing(config.exchange, &body) {
            Ok(list) => all.extend(list),
            Err(error) => {
                BadFrame {
                    exchange: config.exchange,
                    error: &error,
                    frame: &body,
                }
                .emit();
                return Err((url, Some(status.as_u16()), error.to_string()));
            }
        }
    }
    Ok(InstrumentTable::new(all))
}

/// The first table: retried with backoff until the venue answers (nothing is collected by guesswork
/// meanwhile), or `None` at shutdown.
/// Each failure is the product line's not-ready reason (`ready`) until the list loads.
pub async fn load(
    config: &ExchangeConfig,
    http: &reqwest::Client,
    limiter: &RateLimiter,
    shutdown: &CancellationToken,
    ready: &ReadinessGuard,
) -> Option<InstrumentTable> {
    let mut attempt = 0;
    loop {
        let failure = tokio::select! {
            r = fetch(config, http, limiter) => match r {
                Ok(table) => {
                    InstrumentsLoaded { exchange: config.exchange, count: table.len() }.emit();
                    return Some(table);
                }
                Err(f) => f,
            },
            _ = shutdown.cancelled() => return None,
        };
        let wait = backoff(attempt, jitter());
        attempt += 1;
        let (url, status, detail) = failure;
        let code = status.map(|s| format!(" HTTP {s}")).unwrap_or_default();
        ready.not_ready(&format!("instrument list {url}:{code} {detail}"));
        RestFailed {
            exchange: config.exchange,
            endpoint: &url,
            status,
            detail: &detail,
            retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        }
        .emit();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
}

/// What a refresh found about the configured symbols: those the venue lists now but did not
/// before (to collect from now on, without a restart), those it listed before and no longer does
/// (no longer collected: their frames name an instrument the table does not have), and every one
/// it does not list now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relisted {
    pub added: Vec<Symbol>,
    /// Each with the market type it was listed under.
    pub removed: Vec<(Symbol, MarketType)>,
    pub unlisted: Vec<Symbol>,
}

/// Configured symbols listed in `new` but not in `old` (pure).
pub(crate) fn newly_listed(
    config: &ExchangeConfig,
    old: &InstrumentTable,
    new: &InstrumentTable,
) -> Relisted {
    let (_, unlisted) = new.resolve(&config.symbols);
    let added = config
        .symbols
        .iter()
        .filter(|s| old.by_symbol(s).is_none() && new.by_symbol(s).is_some())
        .cloned()
        .collect();
    let removed = config
        .symbols
        .iter()
        .filter(|s| new.by_symbol(s).is_none())
        .filter_map(|s| old.by_symbol(s).map(|i| (s.clone(), i.market_type)))
        .collect();
    Relisted {
        added,
        removed,
        unlisted: unlisted.into_iter().cloned().collect(),
    }
}

/// Re-fetch the list every `every` and swap it in (contract values and tick sizes change; a failed
/// refresh keeps the current table and is counted). Configured symbols the venue starts listing
/// are sent on `relisted`, so the product line starts collecting them.
pub async fn refresh(
    config: ExchangeConfig,
    instruments: Instruments,
    every: Duration,
    http: reqwest::Client,
    limiter: RateLimiter,
    shutdown: CancellationToken,
    relisted: tokio::sync::mpsc::Sender<Relisted>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        match fetch(&config, &http, &limiter).await {
            Ok(table) => {
                let old = instruments.load();
                InstrumentsLoaded {
                    exchange: config.exchange,
                    count: table.len(),
                }
                .emit();
                let change = newly_listed(&config, &old, &table);
                instruments.store(table);
                if !change.added.is_empty() || !change.removed.is_empty() {
                    if !change.added.is_empty() {
                        tracing::info!(exchange = %config.exchange, symbols = ?change.added, "the venue now lists configured symbols: collecting them");
                    }
                    if relisted.send(change).await.is_err() {
                        return;
                    }
                }
            }
            Err((url, status, detail)) => RestFailed {
                exchange: config.exchange,
                endpoint: &url,
                status,
                detail: &detail,
                retry_in_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            }
            .emit(),
        }
    }
}

/// The configured data types this venue collects per instrument (DVOL is per index, not instrument).
fn served_types(config: &ExchangeConfig) -> Vec<DataType> {
    config
        .data_types
        .iter()
        .copied()
        .filter(|&d| d != DataType::VolatilityIndices && super::plan::offered(config.exchange, d))
        .collect()
}

/// For every configured symbol the venue does not list: a log line and counter, and one `refused`
/// gap per configured stream of it, so the run's per-stream account shows what was never collected.
pub(crate) fn refused_gaps(config: &ExchangeConfig, table: &InstrumentTable) -> Vec<Event> {
    let (_, unlisted) = table.resolve(&config.symbols);
    if unlisted.is_empty() {
        return Vec::new();
    }
    let types = served_types(config);
    let now = now_ms();
    let mut out = Vec::new();
    for symbol in unlisted {
        SymbolUnlisted {
            exchange: config.exchange,
            symbol: symbol.as_str(),
            listed: table.len(),
        }
        .emit();
        for &data_type in &types {
            out.push(refused_gap(config.exchange, symbol, data_type, now));
        }
    }
    out
}

/// For every collected symbol a refresh found gone from the venue's list: a log line and counter,
/// and one `refused` gap per configured stream of it, open from now (nothing of it is collected
/// any more; if the venue lists it again, a later refresh starts collecting it again).
pub(crate) fn delisted_gaps(
    config: &ExchangeConfig,
    removed: &[(Symbol, MarketType)],
    listed: usize,
) -> Vec<Event> {
    let types = served_types(config);
    let now = now_ms();
    let mut out = Vec::new();
    for (symbol, market_type) in removed {
        SymbolUnlisted {
            exchange: config.exchange,
            symbol: symbol.as_str(),
            listed,
        }
        .emit();
        for &data_type in &types {
            let detail = format!(
                "{symbol} left {}'s instrument list: no longer collected",
                config.exchange
            );
            out.push(gap(
                config.exchange,
                *market_type,
                symbol,
                data_type,
                now,
                detail,
            ));
        }
    }
    out
}

fn refused_gap(exchange: Exchange, symbol: &Symbol, data_type: DataType, now: i64) -> Event {
    let detail = format!("{symbol} is not in {exchange}'s instrument list: never collected");
    gap(
        exchange,
        default_market(exchange),
        symbol,
        data_type,
        now,
        detail,
    )
}

fn gap(
    exchange: Exchange,
    market_type: MarketType,
    symbol: &Symbol,
    data_type: DataType,
    now: i64,
    detail: String,
) -> Event {
    Event {
        exchange,
        market_type,
        symbol: symbol.clone(),
        ts_ms: now,
        recv_ts_ms: now,
        payload: Payload::Gap(Gap {
            data_type,
            start_ms: now,
            end_ms: now,
            cause: GapCause::Refused,
            detail,
        }),
    }
}

/// The market type an unlisted symbol is reported under (it has none: the product line's main one).
fn default_market(exchange: Exchange) -> MarketType {
    match exchange {
        Exchange::BinanceSpot | Exchange::OkxSpot => MarketType::Spot,
        Exchange::MexcSpot => MarketType::Spot,
        _ => MarketType::Perpetual,
    }
}

/// An error with its sources (`reqwest`'s own text omits the cause: TLS, refused, reset).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_config::Config;

    #[test]
    fn an_unlisted_symbol_is_one_refused_gap_per_configured_stream() {
        let yaml = "exchanges:\n  - exchange: binance_spot\n    symbols: [BNB-USD, BN-BUSD]\n    data_types: [trades, orderbooks, funding_rates]\n";
        let c = Config::from_yaml(yaml).unwrap().exchanges.remove(0);
        let table = crate::test_support::simulator_instruments(Exchange::BinanceSpot).load();
        let gaps = refused_gaps(&c, &table);
        let got: Vec<_> = gaps
            .iter()
            .map(|e| match &e.payload {
                Payload::Gap(g) => (e.symbol.as_str(), g.data_type, g.cause),
                _ => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                ("BN-BUSD", DataType::Trades, GapCause::Refused),
                ("BN-BUSD", DataType::Orderbooks, GapCause::Refused)
            ],
            "spot offers no funding rates: no gap for a stream that would not exist"
        );
        assert!(refused_gaps(&c, &InstrumentTable::default()).len() == 4);
    }

    #[test]
    fn a_collected_symbol_gone_from_the_list_is_one_refused_gap_per_stream_under_its_market() {
        let yaml = "exchanges:\n  - exchange: binance_derivatives\n    symbols: [BTC-USDT, SOL-USDT]\n    data_types: [trades, funding_rates]\n";
        let c = Config::from_yaml(yaml).unwrap().exchanges.remove(0);
        let old = crate::test_support::simulator_instruments(Exchange::BinanceDerivatives).load();
        let sol = Symbol::new("SOL-USDT").unwrap();
        let new = InstrumentTable::new(
            c.symbols
                .iter()
                .filter(|s| **s != sol)
                .filter_map(|s| old.by_symbol(s))
                .map(|i| (**i).clone()),
        );
        let change = newly_listed(&c, &old, &new);
        assert_eq!(change.added, Vec::<Symbol>::new());
        assert_eq!(change.removed, vec![(sol.clone(), MarketType::Perpetual)]);
        assert_eq!(change.unlisted, vec![sol.clone()]);
        assert_eq!(
            newly_listed(&c, &new, &old).removed,
            vec![],
            "listed again: nothing removed"
        );
        let gaps = delisted_gaps(&c, &change.removed, new.len());
        let got: Vec<_> = gaps
            .iter()
            .map(|e| match &e.payload {
                Payload::Gap(g) => (
                    e.symbol.as_str(),
                    e.market_type,
                    g.data_type,
                    g.cause,
                    g.detail.contains("left"),
                ),
                _ => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "SOL-USDT",
                    MarketType::Perpetual,
                    DataType::Trades,
                    GapCause::Refused,
                    true
                ),
                (
                    "SOL-USDT",
                    MarketType::Perpetual,
                    DataType::FundingRates,
                    GapCause::Refused,
                    true
                )
            ]
        );
    }

    #[test]
    fn every_listing_url_names_the_venue_path() {
        assert_eq!(
            listing_urls(Exchange::OkxDerivatives, "https://www.okx.com"),
            [
                "https://www.okx.com/api/v5/public/instruments?instType=SWAP",
                "https://www.okx.com/api/v5/public/instruments?instType=FUTURES"
            ]
        );
        assert_eq!(
            listing_urls(Exchange::BinanceSpot, "https://api.binance.com"),
            ["https://api.binance.com/api/v3/exchangeInfo"]
        );
        assert_eq!(
            listing_urls(Exchange::DeribitDerivatives, "https://www.deribit.com"),
            ["https://www.deribit.com/api/v2/public/get_instruments?currency=any&expired=false"]
        );
    }
}
