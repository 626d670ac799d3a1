//! REST pollers for slow data (open interest, long/short ratios). A poller never dies: every failure
//! (network, 429/418 bans, bad bodies) is counted, honoured through the venue's limiter, and backed off.

use super::connection::backoff::{backoff, jitter};
use super::parse::ParseResult;
use super::plan::{PollKind, PollPlan};
use super::rate_limit::RateLimiter;
use super::{binance, okx};
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::{BadFrame, EventsDropped, RestFailed};
use crate::internal_events::frames::{FrameMeter, UNATTRIBUTED};
use crate::internal_events::observe::StreamMeter;
use marketprism_model::{Event, Gap, GapCause, Payload, now_ms};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Parse one poll reply into events.
pub(crate) fn parse_poll(plan: &PollPlan, body: &str, recv_ts_ms: i64) -> ParseResult<Vec<Event>> {
    let table = plan.instruments.load();
    match &plan.kind {
        PollKind::BinanceOpenInterest => {
            binance::parse::parse_open_interest(&table, body, recv_ts_ms).map(|e| vec![e])
        }
        PollKind::BinanceRatio(kind) => {
            binance::parse::parse_long_short(&table, body, *kind, &plan.period, recv_ts_ms)
        }
        PollKind::OkxOpenInterest => okx::parse::parse_rest_open_interest(&table, body, recv_ts_ms),
        PollKind::OkxRatio(kind, symbol) => okx::parse::parse_rubik_ratio(
            body,
            symbol,
            plan.market_type,
            *kind,
            &plan.period,
            recv_ts_ms,
        ),
    }
}

/// Rows newer than `newest_ms`, oldest first (history endpoints return up to 30–100 rows each time).
pub fn fresh(mut events: Vec<Event>, newest_ms: Option<i64>) -> Vec<Event> {
    events.retain(|e| newest_ms.is_none_or(|n| e.ts_ms > n));
    events.sort_by_key(|e| e.ts_ms);
    events
}

/// The Gap a poll outage leaves, decided when polling recovers. A point-in-time value (open interest)
/// missed every sample of the outage; a history endpoint (long/short ratios) lost data only when the
/// rows it returns no longer reach back to the newest row seen before the outage.
pub(crate) fn outage_gap(
    plan: &PollPlan,
    down_since_ms: i64,
    now_ms: i64,
    detail: &str,
    returned: &[Event],
    newest_before: Option<i64>,
) -> Option<Event> {
    let history_covers = match plan.kind {
        PollKind::BinanceOpenInterest | PollKind::OkxOpenInterest => false,
        PollKind::BinanceRatio(_) | PollKind::OkxRatio(..) => {
            newest_before.is_none_or(|n| returned.iter().any(|e| e.ts_ms <= n))
        }
    };
    if history_covers {
        return None;
    }
    Some(Event {
        exchange: plan.exchange,
        market_type: plan.market_type,
        symbol: plan.symbol.clone(),
        ts_ms: down_since_ms,
        recv_ts_ms: now_ms,
        payload: Payload::Gap(Gap {
            data_type: plan.data_type,
            start_ms: down_since_ms,
            end_ms: now_ms,
            cause: GapCause::Disconnect,
            detail: format!("REST polls failed: {detail}"),
        }),
    })
}

/// Count one response body in `marketprism_exchange_frames_received_total` (its data type, or
/// `unattributed` when it did not parse); the parse result passes through.
fn counted<T>(frames: &mut FrameMeter, plan: &PollPlan, r: ParseResult<T>) -> ParseResult<T> {
    frames.frame(match r {
        Ok(_) => plan.data_type.as_str(),
        Err(_) => UNATTRIBUTED,
    });
    r
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
    // Polled rows move their stream's last-event time; history rows are minutes old by design, so
    // they stay out of the latency histogram.
    let stream = crate::plan::Stream {
        data_type: plan.data_type,
        symbol: plan.symbol.clone(),
        market_type: plan.market_type,
        max_silence: None,
    };
    let meter = StreamMeter::new(plan.exchange, &[stream]);
    let mut frames = FrameMeter::new(plan.exchange);
    // Start of the current outage and its last error, until a poll succeeds again.
    let mut outage: Option<(i64, String)> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = limiter.acquire(plan.weight) => {}
        }
        let failure: Option<(Option<u16>, String)> = match http.get(&plan.url).send().await {
            Ok(resp) if resp.status().is_success() => match resp.text().await {
                Ok(body) => match counted(&mut frames, &plan, parse_poll(&plan, &body, now_ms())) {
                    Ok(events) => {
                        if let Some((since, detail)) = outage.take()
                            && let Some(gap) =
                                outage_gap(&plan, since, now_ms(), &detail, &events, newest)
                            && tx.send(gap).await.is_err()
                        {
                            return;
                        }
                        let events = fresh(events, newest);
                        for e in events {
                            newest = Some(newest.map_or(e.ts_ms, |n| n.max(e.ts_ms)));
                            meter.observe(&e, false);
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
                limiter.honour_rejection(status, resp.headers());
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
                let since = outage.as_ref().map_or_else(now_ms, |(since, _)| *since);
                outage = Some((since, format!("{status:?} {detail}")));
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
    use marketprism_model::{Decimal, Exchange, MarketType, Symbol, Trade};

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
                raw_quantity: Decimal::ONE,
                quantity_unit: marketprism_model::QuantityUnit::Base,
                side: marketprism_model::Side::Buy,
            }),
        }
    }

    fn plan(kind: PollKind) -> PollPlan {
        PollPlan {
            exchange: Exchange::OkxDerivatives,
            kind,
            url: "http://x".into(),
            weight: 1,
            period: "5m".into(),
            data_type: marketprism_model::DataType::OpenInterests,
            symbol: Symbol::new("BTC-USDT").unwrap(),
            market_type: MarketType::Perpetual,
            instruments: crate::test_support::simulator_instruments(Exchange::OkxDerivatives),
        }
    }

    #[test]
    fn a_poll_outage_is_a_gap_unless_the_history_reaches_back() {
        let oi = plan(PollKind::OkxOpenInterest);
        let gap = outage_gap(&oi, 1_000, 9_000, "503", &[ev(9_000)], Some(500)).unwrap();
        let Payload::Gap(g) = &gap.payload else {
            panic!("not a gap: {gap:?}")
        };
        assert_eq!(
            (g.start_ms, g.end_ms, g.cause),
            (1_000, 9_000, GapCause::Disconnect)
        );
        assert_eq!(g.data_type, marketprism_model::DataType::OpenInterests);
        assert!(g.detail.contains("503"));

        let ratio = plan(PollKind::BinanceRatio(
            binance::parse::RatioKind::TopPositions,
        ));
        assert!(
            outage_gap(
                &ratio,
                1_000,
                9_000,
                "503",
                &[ev(400), ev(8_000)],
                Some(500)
            )
            .is_none(),
            "history overlaps the last row seen: nothing lost"
        );
        assert!(
            outage_gap(
                &ratio,
                1_000,
                9_000,
                "503",
                &[ev(7_000), ev(8_000)],
                Some(500)
            )
            .is_some(),
            "history starts after the last row seen: a hole"
        );
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
