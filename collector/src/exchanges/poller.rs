//! REST pollers for slow data (open interest, long/short ratios). A poller never dies: every failure
//! (network, 429/418 bans, bad bodies) is counted, honoured through the venue's limiter, and backed off.

use super::connection::backoff::{backoff, jitter};
use super::parse::ParseResult;
use super::plan::{PollKind, PollPlan};
use super::rate_limit::{RateLimiter, penalty};
use super::{binance, okx};
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::{BadFrame, EventsDropped, RestFailed};
use crate::model::{Event, now_ms};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Parse one poll reply into events.
pub fn parse_poll(plan: &PollPlan, body: &str, recv_ts_ms: i64) -> ParseResult<Vec<Event>> {
    match &plan.kind {
        PollKind::BinanceOpenInterest => {
            binance::parse::parse_open_interest(body, recv_ts_ms).map(|e| vec![e])
        }
        PollKind::BinanceRatio(kind) => {
            binance::parse::parse_long_short(body, *kind, &plan.period, recv_ts_ms)
        }
        PollKind::OkxOpenInterest => okx::parse::parse_rest_open_interest(body, recv_ts_ms),
        PollKind::OkxRatio(kind, symbol) => {
            okx::parse::parse_rubik_ratio(body, symbol, *kind, &plan.period, recv_ts_ms)
        }
    }
}

/// Rows newer than `newest_ms`, oldest first (history endpoints return up to 30–100 rows each time).
pub fn fresh(mut events: Vec<Event>, newest_ms: Option<i64>) -> Vec<Event> {
    events.retain(|e| newest_ms.is_none_or(|n| e.ts_ms > n));
    events.sort_by_key(|e| e.ts_ms);
    events
}

pub async fn run_poller(
    plan: PollPlan,
    every: Duration,
    http: reqwest::Client,
    limiter: RateLimiter,
    tx: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let mut newest: Option<i64> = None;
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = limiter.acquire(plan.weight) => {}
        }
        let failure: Option<(Option<u16>, String)> = match http.get(&plan.url).send().await {
            Ok(resp) if resp.status().is_success() => match resp.text().await {
                Ok(body) => match parse_poll(&plan, &body, now_ms()) {
                    Ok(events) => {
                        let events = fresh(events, newest);
                        for e in events {
                            newest = Some(newest.map_or(e.ts_ms, |n| n.max(e.ts_ms)));
                            if tx.send(e).await.is_err() {
                                EventsDropped {
                                    exchange: plan.exchange,
                                    count: 1,
                                }
                                .emit();
                                return;
                            }
                        }
                        None
                    }
                    Err(error) => {
                        BadFrame {
                            exchange: plan.exchange,
                            error: &error,
                            frame: &body,
                        }
                        .emit();
                        Some((Some(200), error.to_string()))
                    }
                },
                Err(e) => Some((None, e.to_string())),
            },
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if let Some(p) = penalty(status, retry.as_deref()) {
                    limiter.block_for(p);
                }
                Some((Some(status), resp.text().await.unwrap_or_default()))
            }
            Err(e) => Some((None, e.to_string())),
        };
        let wait = match failure {
            None => {
                failures = 0;
                every
            }
            Some((status, detail)) => {
                let wait = backoff(failures, jitter()).min(every.max(Duration::from_secs(1)));
                failures = failures.saturating_add(1);
                RestFailed {
                    exchange: plan.exchange,
                    endpoint: &plan.url,
                    status,
                    detail: &detail,
                    retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                }
                .emit();
                wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decimal, Exchange, MarketType, Payload, Symbol, Trade};

    fn ev(ts: i64) -> Event {
        Event {
            exchange: Exchange::OkxDerivatives,
            market_type: MarketType::Perpetual,
            symbol: Symbol::new("BTC-USDT").unwrap(),
            ts_ms: ts,
            recv_ts_ms: 0,
            payload: Payload::Trade(Trade {
                trade_id: ts.to_string(),
                price: Decimal::ONE,
                quantity: Decimal::ONE,
                side: crate::model::Side::Buy,
            }),
        }
    }

    #[test]
    fn only_rows_newer_than_the_last_poll_oldest_first() {
        let rows = vec![ev(30), ev(10), ev(20)];
        assert_eq!(
            fresh(rows.clone(), None)
                .iter()
                .map(|e| e.ts_ms)
                .collect::<Vec<_>>(),
            [10, 20, 30]
        );
        assert_eq!(
            fresh(rows, Some(20))
                .iter()
                .map(|e| e.ts_ms)
                .collect::<Vec<_>>(),
            [30]
        );
    }
}
