//! The collector's side of the shard lock (a `coordination.k8s.io/v1` Lease per shard).
//!
//! Warm standby: every pod of a shard runs the connectors (connected, books in sync); only the Lease
//! holder publishes (`may_publish`), the others drop their events (counted as fenced), ready to take
//! over when the holder releases the Lease or it expires. A takeover ([`Takeover`]) becomes a
//! `handover` gap per instrument and data type (see `crate::output`).
//! [`machine`] decides (pure, clock injected), [`shell`] talks to the API server and fences on time.
//! Readiness component `lease` is ready when active or a healthy standby; the gauge
//! `marketprism_lease_active` is 1 only on the pod that may publish.

pub mod fence;
pub mod machine;
pub mod shell;

pub use fence::Fence;
pub use machine::{LeaseMachine, Observed, Role, Step};
pub use shell::{
    NOT_READY_ANNOTATION, Signals, Takeover, not_ready_annotation, run_lease, run_lease_reporting,
    run_lease_with, takeover_of,
};
