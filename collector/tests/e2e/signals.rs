//! The signals stage against the simulator: rows for the enabled symbol only, and a reset event
//! after a book resync (withheld diffs) and after a forced disconnect, with rows flowing again.

use crate::checks::assert_invariants;
use crate::common::{Rig, SPOT_TYPES, sim_config, venue_symbol};
use marketprism_config::SignalsSection;
use marketprism_model::Exchange::BinanceDerivatives;
use marketprism_model::{DataType, Event, Payload, Symbol, now_ms};
use marketprism_simulator::{Fault, Target};

const ON: &str = "BTC-USDT";

fn rows(events: &[Event], dt: DataType, symbol: &str) -> usize {
    events
        .iter()
        .filter(|e| e.data_type() == dt && e.symbol.as_str() == symbol)
        .count()
}

/// `reset` events of `symbol` with `reason`, received at or after `since_ms`.
fn resets(events: &[Event], symbol: &str, reason: &str, since_ms: i64) -> usize {
    events
        .iter()
        .filter(|e| e.symbol.as_str() == symbol && e.recv_ts_ms >= since_ms)
        .filter(|e| {
            matches!(&e.payload, Payload::SignalEvent(v)
                if v.event_type == "reset" && v.meta_json.contains(&format!("\"{reason}\"")))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_for_the_enabled_symbol_reset_on_resync_and_disconnect() {
    let ex = BinanceDerivatives;
    let types: &[DataType] = &SPOT_TYPES;
    let mut rig = Rig::start_with(sim_config(), &[(ex, types)], |c| {
        c.signals = Some(SignalsSection {
            symbols: vec![Symbol::new(ON).unwrap()],
            // The simulator's books can rest for seconds: resets come from gaps only.
            max_silence_ms: Some(0),
            ..SignalsSection::default()
        });
    })
    .await;
    rig.wait_streaming(ex, 0).await;
    rig.wait_for("OFI, CVD and event rows of the enabled symbol", |ev| {
        rows(ev, DataType::SignalOfi, ON) > 5
            && rows(ev, DataType::SignalCvd, ON) > 5
            && rows(ev, DataType::SignalEvents, ON) > 0
    })
    .await;

    // Withheld diffs: the book resyncs, and the state resets with it.
    let t0 = now_ms();
    rig.sim.inject(Fault::SequenceGap {
        target: Target::symbol(ex, &venue_symbol(ex, ON)),
        messages: 1,
    });
    rig.wait_for("a book_resync reset", |ev| {
        resets(ev, ON, "book_resync", t0) >= 1
    })
    .await;

    // A cut connection: a reconnect reset, then rows again from the new connection.
    let t1 = now_ms();
    assert!(rig.sim.inject(Fault::DropConnections(Target::venue(ex))) >= 1);
    rig.wait_for("a reconnect reset", |ev| {
        resets(ev, ON, "reconnect", t1) >= 1
    })
    .await;
    let n = rig.events.len();
    rig.wait_for("OFI and CVD rows after the reconnect", |ev| {
        rows(&ev[n..], DataType::SignalOfi, ON) > 0 && rows(&ev[n..], DataType::SignalCvd, ON) > 0
    })
    .await;

    let events = rig.stop().await;
    for dt in DataType::SIGNALS {
        assert_eq!(
            rows(&events, dt, "ETH-USDT"),
            0,
            "{dt} for a symbol without signals"
        );
    }
    // Signal rows are keyed by their input: no message id twice.
    let ids: std::collections::BTreeSet<String> = events
        .iter()
        .filter(|e| e.data_type().is_signal())
        .map(Event::msg_id)
        .collect();
    let total = events.iter().filter(|e| e.data_type().is_signal()).count();
    assert_eq!(ids.len(), total, "signal message ids are unique");
    assert_invariants(&events);
}
