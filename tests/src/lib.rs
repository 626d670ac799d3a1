//! Shared helpers of the integration tests in `tests/tests/`.
#![forbid(unsafe_code)]

pub mod jobs;
pub mod kube_fake;
pub mod logs;
pub mod pipeline;
pub mod process;
pub mod report_data;
pub mod servers;
pub mod store_capture;
