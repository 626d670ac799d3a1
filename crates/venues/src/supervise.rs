//! Supervision of the connector tasks: a panic inside a connection or poller is a bug, but it must
//! neither end collection silently nor take the process down. It is logged with its message, counted
//! (`marketprism_task_panics_total`), recorded as one `crashed` gap per stream of the task (from the
//! panic to the restart), and the task is started again after a backoff.

use super::plan::Stream;
use crate::connection::gap_events;
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::TaskPanicked;
use marketprism_model::{Event, Exchange, GapCause, now_ms};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Restart delay after the `n`th consecutive panic: 1 s doubling to 60 s.
pub(crate) fn restart_delay(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// The text of a panic payload (`panic!("...")` gives `&str` or `String`).
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "non-text panic payload".to_owned(),
        },
    }
}

/// What a supervised task is, for logs and gap rows.
pub(crate) struct TaskIdentity {
    pub exchange: Exchange,
    pub name: String,
    pub streams: Vec<Stream>,
}

/// Run `make()` until it returns or `shutdown`; restart it after every panic (see the module doc).
pub(crate) async fn supervise<F, Fut>(
    task: TaskIdentity,
    tx: mpsc::Sender<Event>,
    shutdown: CancellationToken,
    make: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut consecutive = 0u32;
    loop {
        // Aborted with this supervisor, so a stopped connector set leaves no orphan behind.
        let handle = AbortOnDropHandle::new(tokio::spawn(make()));
        let started = tokio::time::Instant::now();
        let payload = match handle.await {
            Ok(()) => return,
            Err(e) if e.is_panic() => e.into_panic(),
            Err(_) => return,
        };
        // A task that ran a while before failing starts the backoff over.
        if started.elapsed() > Duration::from_secs(300) {
            consecutive = 0;
        }
        consecutive += 1;
        let message = panic_message(payload);
        let delay = restart_delay(consecutive);
        TaskPanicked {
            exchange: task.exchange,
            task: &task.name,
            message: &message,
            restart_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }
        .emit();
        let start_ms = now_ms();
        let stopping = tokio::select! {
            () = tokio::time::sleep(delay) => false,
            () = shutdown.cancelled() => true,
        };
        let detail = format!("task {} panicked: {message}", task.name);
        for gap in gap_events(
            task.exchange,
            &task.streams,
            start_ms,
            now_ms(),
            GapCause::Crashed,
            &detail,
        ) {
            if tx.send(gap).await.is_err() {
                return;
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::{DataType, MarketType, Payload, Symbol};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn restart_delay_doubles_to_a_minute() {
        let d: Vec<u64> = (1..=9).map(|n| restart_delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_recorded_as_crashed_gaps_and_restarted() {
        let runs = Arc::new(AtomicU32::new(0));
        let (tx, mut rx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let stream = |d| Stream {
            data_type: d,
            symbol: Symbol::new("BTC-USDT").unwrap(),
            market_type: MarketType::Spot,
            max_silence: None,
        };
        let task = TaskIdentity {
            exchange: Exchange::BinanceSpot,
            name: "binance_spot/ws".into(),
            streams: vec![stream(DataType::Trades), stream(DataType::Orderbooks)],
        };
        let counter = runs.clone();
        let sup = tokio::spawn(supervise(task, tx, shutdown.clone(), move || {
            let counter = counter.clone();
            async move {
                // The first run panics, the second runs until cancelled.
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("index out of bounds in a parser");
                }
                std::future::pending::<()>().await;
            }
        }));
        let mut gaps = Vec::new();
        for _ in 0..2 {
            gaps.push(rx.recv().await.expect("a gap per stream"));
        }
        for (g, d) in gaps.iter().zip([DataType::Trades, DataType::Orderbooks]) {
            let Payload::Gap(gap) = &g.payload else {
                panic!("not a gap: {g:?}")
            };
            assert_eq!((gap.data_type, gap.cause), (d, GapCause::Crashed));
            assert_eq!(
                gap.detail,
                "task binance_spot/ws panicked: index out of bounds in a parser"
            );
            assert!(gap.end_ms >= gap.start_ms);
        }
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "restarted once, and the restart keeps running"
        );
        shutdown.cancel();
        sup.abort();
        assert!(rx.try_recv().is_err(), "no further gaps");
    }
}
