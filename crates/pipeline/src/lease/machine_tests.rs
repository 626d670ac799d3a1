use super::*;

const D: Duration = Duration::from_secs(15);

fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

fn lease(holder: Option<&str>, version: &str) -> Observed {
    Observed {
        holder: holder.map(str::to_owned),
        version: version.to_owned(),
        duration_s: Some(15),
    }
}

#[test]
fn acquires_a_free_lease_and_renews_every_third_of_the_duration() {
    let t0 = Instant::now();
    let mut a = LeaseMachine::new("a", D);
    assert_eq!(a.next_step(t0), Step::Wait, "nothing observed yet");
    assert!(!a.may_publish(t0));
    a.observe(lease(None, "1"), t0);
    assert_eq!(
        a.next_step(t0),
        Step::Acquire {
            version: "1".into()
        }
    );
    a.write_succeeded(t0, "2".into(), t0 + s(0.1));
    assert!(a.may_publish(t0 + s(0.1)));
    assert_eq!(a.role(t0 + s(0.1)), Role::Active);
    assert_eq!(a.next_step(t0 + s(4.9)), Step::Wait, "renewed recently");
    assert_eq!(
        a.next_step(t0 + s(5.0)),
        Step::Renew {
            version: "2".into()
        }
    );
}

#[test]
fn of_two_contenders_exactly_one_wins_and_the_other_stands_by() {
    let t0 = Instant::now();
    let (mut a, mut b) = (LeaseMachine::new("a", D), LeaseMachine::new("b", D));
    a.observe(lease(None, "1"), t0);
    b.observe(lease(None, "1"), t0);
    assert_eq!(
        a.next_step(t0),
        Step::Acquire {
            version: "1".into()
        }
    );
    assert_eq!(
        b.next_step(t0),
        Step::Acquire {
            version: "1".into()
        }
    );
    // The API server accepts a's update of version 1 and rejects b's (409 Conflict).
    a.write_succeeded(t0, "2".into(), t0 + s(0.1));
    b.write_conflicted();
    assert!(!b.may_publish(t0 + s(0.1)));
    assert_eq!(b.next_step(t0 + s(0.1)), Step::Wait, "re-read first");
    b.observe(lease(Some("a"), "2"), t0 + s(0.2));
    assert_eq!(b.next_step(t0 + s(0.2)), Step::Standby);
    assert_eq!(b.role(t0 + s(0.2)), Role::Standby);
    assert!(a.may_publish(t0 + s(0.2)) && !b.may_publish(t0 + s(0.2)));
}

#[test]
fn standby_takes_over_only_after_a_full_duration_without_change() {
    let t0 = Instant::now();
    let mut b = LeaseMachine::new("b", D);
    b.observe(lease(Some("a"), "7"), t0);
    // a renews at 5 s: the version changes, the expiry clock restarts.
    b.observe(lease(Some("a"), "8"), t0 + s(5.0));
    b.observe(lease(Some("a"), "8"), t0 + s(19.9));
    assert_eq!(b.next_step(t0 + s(19.9)), Step::Standby);
    assert_eq!(
        b.next_step(t0 + s(20.0)),
        Step::Acquire {
            version: "8".into()
        }
    );
    b.write_succeeded(t0 + s(20.0), "9".into(), t0 + s(20.1));
    assert!(b.may_publish(t0 + s(20.1)));
}

#[test]
fn a_released_lease_is_taken_at_once() {
    let t0 = Instant::now();
    let mut b = LeaseMachine::new("b", D);
    b.observe(lease(Some("a"), "3"), t0);
    b.observe(lease(Some(""), "4"), t0 + s(1.0));
    assert_eq!(
        b.next_step(t0 + s(1.0)),
        Step::Acquire {
            version: "4".into()
        }
    );
}

#[test]
fn holder_stops_publishing_before_anyone_can_take_over_when_renewals_fail() {
    let t0 = Instant::now();
    let (mut a, mut b) = (LeaseMachine::new("a", D), LeaseMachine::new("b", D));
    a.observe(lease(None, "1"), t0);
    // a's write is slow: started at t0, acknowledged 2 s later; b sees it right after the commit.
    a.write_succeeded(t0, "2".into(), t0 + s(2.0));
    b.observe(lease(Some("a"), "2"), t0 + s(2.0));
    // Every renewal of a fails from now on (API unreachable for a only).
    let mut t = t0 + s(2.0);
    let mut b_first_acquire = None;
    let mut a_last_publish = None;
    while t < t0 + s(40.0) {
        if a.may_publish(t) {
            a_last_publish = Some(t);
        }
        b.observe(lease(Some("a"), "2"), t);
        if b_first_acquire.is_none() && matches!(b.next_step(t), Step::Acquire { .. }) {
            b_first_acquire = Some(t);
        }
        t += s(0.05);
    }
    let (a_last, b_first) = (a_last_publish.unwrap(), b_first_acquire.unwrap());
    assert!(
        a_last < t0 + s(12.0),
        "fenced at started + duration - margin"
    );
    assert!(
        b_first >= t0 + s(17.0),
        "takeover a full duration after observing the write"
    );
    assert!(a_last < b_first, "no overlap");
    assert_eq!(
        a.role(t0 + s(30.0)),
        Role::Unknown,
        "a lapsed holder is not ready"
    );
}

#[test]
fn a_failed_renewal_followed_by_a_success_keeps_the_hold() {
    let t0 = Instant::now();
    let mut a = LeaseMachine::new("a", D);
    a.observe(lease(None, "1"), t0);
    a.write_succeeded(t0, "2".into(), t0);
    // The renewal at 5 s fails (no call to write_succeeded); still within the deadline.
    assert!(a.may_publish(t0 + s(9.0)));
    assert_eq!(
        a.next_step(t0 + s(9.0)),
        Step::Renew {
            version: "2".into()
        }
    );
    a.write_succeeded(t0 + s(10.0), "3".into(), t0 + s(10.2));
    assert!(
        a.may_publish(t0 + s(21.0)),
        "deadline moved with the renewal"
    );
    assert!(!a.may_publish(t0 + s(22.0)));
}

#[test]
fn losing_the_lease_to_someone_else_stops_publishing_immediately() {
    let t0 = Instant::now();
    let mut a = LeaseMachine::new("a", D);
    a.observe(lease(None, "1"), t0);
    a.write_succeeded(t0, "2".into(), t0);
    // An operator or a human rewrote the Lease to another holder.
    a.observe(lease(Some("b"), "3"), t0 + s(1.0));
    assert!(!a.may_publish(t0 + s(1.0)));
    assert_eq!(a.role(t0 + s(1.0)), Role::Standby);
}

#[test]
fn clock_skew_cannot_create_a_second_holder() {
    // Nothing in `Observed` carries wall time: a holder whose clock is an hour behind (or ahead)
    // renews by changing the resourceVersion, and that is all a contender looks at.
    let t0 = Instant::now();
    let mut b = LeaseMachine::new("b", D);
    for i in 0..20u32 {
        let t = t0 + s(f64::from(i) * 5.0);
        b.observe(lease(Some("skewed-a"), &i.to_string()), t);
        assert_eq!(b.next_step(t + s(4.9)), Step::Standby, "at renewal {i}");
    }
}

#[test]
fn the_longer_of_local_and_lease_duration_is_waited() {
    let t0 = Instant::now();
    let mut b = LeaseMachine::new("b", D);
    let mut long = lease(Some("a"), "5");
    long.duration_s = Some(60);
    b.observe(long, t0);
    assert_eq!(b.next_step(t0 + s(59.0)), Step::Standby);
    assert_eq!(
        b.next_step(t0 + s(60.0)),
        Step::Acquire {
            version: "5".into()
        }
    );
}

#[test]
fn a_standby_that_cannot_read_is_not_ready() {
    let t0 = Instant::now();
    let mut b = LeaseMachine::new("b", D);
    b.observe(lease(Some("a"), "5"), t0);
    assert_eq!(b.role(t0 + s(14.0)), Role::Standby);
    assert_eq!(b.role(t0 + s(15.0)), Role::Unknown);
    b.released();
    assert!(!b.may_publish(t0));
}
