//! Streams that refuse publishes: at their limits (`discard: new`, see [`super::streams`]) or out of
//! server storage. Their events wait here, apart from the other stream's, which keeps flowing, and
//! one probe per pause finds out when the stream takes publishes again. Pure: time is passed in.
//!
//! A stream is `Open` (publish), `Full` (hold everything until `until`), or `Probing` (one event may
//! go; the others wait until an ack says stored).

use marketprism_model::DataType;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Index of the stream a data type goes to: 0 = MARKET_DATA, 1 = ORDERBOOK_SNAP.
pub(crate) fn stream_index(data_type: DataType) -> usize {
    usize::from(data_type == DataType::Orderbooks)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Full { until: Instant },
    Probing { sent: bool },
}

#[derive(Debug)]
struct Hold<T> {
    state: State,
    reason: String,
    queue: VecDeque<T>,
}

/// Where an arriving event goes (see [`Holds::admission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// To the shared buffer of events to send.
    Pending,
    /// To its refusing stream's hold.
    Hold,
    /// Nowhere: counted with this reason and recorded as an overflow gap.
    Drop(&'static str),
}

/// Per stream: its state and the events held for it, oldest first.
#[derive(Debug)]
pub struct Holds<T> {
    streams: [Hold<T>; 2],
}

impl<T> Default for Holds<T> {
    fn default() -> Self {
        let open = || Hold {
            state: State::Open,
            reason: String::new(),
            queue: VecDeque::new(),
        };
        Holds {
            streams: [open(), open()],
        }
    }
}

impl<T> Holds<T> {
    /// May events of `stream` be sent now?
    pub fn is_open(&self, stream: usize) -> bool {
        self.streams[stream].state == State::Open
    }

    pub fn all_open(&self) -> bool {
        (0..2).all(|s| self.is_open(s))
    }

    /// Events held, all streams.
    pub fn len(&self) -> usize {
        self.streams.iter().map(|h| h.queue.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where an event of `stream` goes, given `pending` events waiting to be sent. Each refusing
    /// stream holds its events apart within its own `capacity`, so a full stream never crowds out the
    /// other's; open streams share `pending`. `pushes_back`: connected with every stream open, so a
    /// full buffer stops intake instead (a batch may overshoot, nothing is dropped).
    pub fn admission(
        &self,
        stream: usize,
        pending: usize,
        capacity: usize,
        pushes_back: bool,
    ) -> Admission {
        let open = self.is_open(stream);
        let waiting = if open {
            pending
        } else {
            self.streams[stream].queue.len()
        };
        match (waiting >= capacity && !pushes_back, open) {
            (true, true) => Admission::Drop("buffer_full"),
            (true, false) => Admission::Drop("stream_refused"),
            (false, true) => Admission::Pending,
            (false, false) => Admission::Hold,
        }
    }

    /// May one event of `stream` be sent now? Open: yes; probing: the first asked, once.
    pub fn may_send(&mut self, stream: usize) -> bool {
        match &mut self.streams[stream].state {
            State::Open => true,
            State::Probing { sent } if !*sent => {
                *sent = true;
                true
            }
            _ => false,
        }
    }

    /// The probe of `stream` failed without an answer (timeout, disconnect): another may go.
    pub fn unsent(&mut self, stream: usize) {
        if let State::Probing { sent } = &mut self.streams[stream].state {
            *sent = false;
        }
    }

    /// Keep `item` for `stream` (not open) behind those already held.
    pub fn hold(&mut self, stream: usize, item: T) {
        self.streams[stream].queue.push_back(item);
    }

    /// Keep `item` for `stream` (not open) ahead of those already held: the next probe. For the
    /// gap rows that record drops, which must not wait behind a full hold (or die with it at exit).
    pub fn hold_first(&mut self, stream: usize, item: T) {
        self.streams[stream].queue.push_front(item);
    }

    /// The stream refused `item`: hold it first and the stream for `pause`. True when the stream
    /// was open until now (the caller logs and counts the transition once).
    pub fn refused(
        &mut self,
        stream: usize,
        item: T,
        reason: &str,
        now: Instant,
        pause: Duration,
    ) -> bool {
        let hold = &mut self.streams[stream];
        let was_open = hold.state == State::Open;
        hold.state = State::Full { until: now + pause };
        reason.clone_into(&mut hold.reason);
        hold.queue.push_front(item);
        was_open
    }

    /// A publish to `stream` was stored: a probing stream opens, and everything it held is returned
    /// (oldest first) to be sent again.
    pub fn stored(&mut self, stream: usize) -> Vec<T> {
        let hold = &mut self.streams[stream];
        if !matches!(hold.state, State::Probing { .. }) {
            return Vec::new();
        }
        hold.state = State::Open;
        hold.reason.clear();
        hold.queue.drain(..).collect()
    }

    /// For each full stream whose pause is over: its oldest held event, to send first (the probe).
    pub fn probes(&mut self, now: Instant) -> Vec<T> {
        let mut out = Vec::new();
        for hold in &mut self.streams {
            if let State::Full { until } = hold.state
                && now >= until
            {
                match hold.queue.pop_front() {
                    Some(probe) => {
                        hold.state = State::Probing { sent: false };
                        out.push(probe);
                    }
                    // Nothing to probe with: the next event finds out.
                    None => hold.state = State::Open,
                }
            }
        }
        out
    }

    /// `(stream index, refusal, events held)` of every stream not open.
    pub fn closed(&self) -> Vec<(usize, &str, usize)> {
        self.streams
            .iter()
            .enumerate()
            .filter(|(_, h)| h.state != State::Open)
            .map(|(i, h)| (i, h.reason.as_str(), h.queue.len()))
            .collect()
    }

    /// Everything held (at shutdown).
    pub fn drain(&mut self) -> Vec<T> {
        self.streams
            .iter_mut()
            .flat_map(|h| h.queue.drain(..).collect::<Vec<_>>())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_stream_drops_only_its_own_events_beyond_its_own_budget() {
        let (t0, pause) = (Instant::now(), Duration::from_secs(1));
        let mut h = Holds::default();
        assert_eq!(h.admission(0, 3, 3, true), Admission::Pending, "pushback");
        assert_eq!(h.admission(0, 3, 3, false), Admission::Drop("buffer_full"));
        h.refused(0, 'a', "maximum bytes exceeded", t0, pause);
        h.hold(0, 'b');
        h.hold(0, 'c');
        assert_eq!(
            h.admission(0, 0, 3, false),
            Admission::Drop("stream_refused")
        );
        // The other stream's budget is the shared buffer alone: three held events do not count.
        assert_eq!(h.admission(1, 2, 3, false), Admission::Pending);
        assert_eq!(h.admission(1, 3, 3, false), Admission::Drop("buffer_full"));
        assert_eq!(h.admission(0, 0, 4, false), Admission::Hold);
    }

    #[test]
    fn a_refusing_stream_holds_its_events_probes_once_per_pause_and_reopens_on_a_store() {
        let t0 = Instant::now();
        let pause = Duration::from_secs(1);
        let mut h = Holds::default();
        assert!(h.all_open());
        assert!(h.refused(0, 'a', "maximum bytes exceeded", t0, pause));
        assert!(
            !h.refused(0, 'b', "maximum bytes exceeded", t0, pause),
            "counted once"
        );
        h.hold(0, 'c');
        h.hold_first(0, 'g');
        assert_eq!(h.len(), 4);
        assert_eq!(h.streams[0].queue.pop_front(), Some('g'), "held first");
        assert!(
            !h.is_open(0) && h.is_open(1),
            "the other stream keeps flowing"
        );
        assert_eq!(h.closed(), vec![(0, "maximum bytes exceeded", 3)]);
        assert!(h.probes(t0 + Duration::from_millis(999)).is_empty());
        assert!(
            h.stored(0).is_empty(),
            "a late ack of an earlier publish opens nothing"
        );
        // Refused in-flight publishes go first: 'b' was refused last, so it is probed first.
        assert!(!h.may_send(0) && h.may_send(1));
        assert_eq!(h.probes(t0 + pause), vec!['b']);
        assert!(!h.is_open(0), "probing: the others still wait");
        assert!(h.may_send(0), "the probe goes");
        assert!(!h.may_send(0), "one probe at a time");
        h.unsent(0);
        assert!(
            h.may_send(0),
            "a probe lost without an answer is sent again"
        );
        assert!(
            h.probes(t0 + pause * 2).is_empty(),
            "no second probe while one is out"
        );
        h.refused(0, 'b', "maximum bytes exceeded", t0 + pause, pause);
        assert_eq!(h.probes(t0 + pause * 2), vec!['b']);
        assert_eq!(h.stored(0), vec!['a', 'c']);
        assert!(h.all_open() && h.is_empty());
    }

    #[test]
    fn orderbooks_have_a_stream_of_their_own() {
        assert_eq!(stream_index(DataType::Orderbooks), 1);
        assert_eq!(stream_index(DataType::Trades), 0);
        assert_eq!(stream_index(DataType::Gaps), 0);
    }
}
