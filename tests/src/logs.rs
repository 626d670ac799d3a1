//! The components' logs in a test's captured output, so a failure in CI shows what the publisher,
//! sink or lease keeper did (connects, stalls, refusals) and not only the failed assertion.

/// Installs a subscriber writing marketprism's `info` and above (or `RUST_LOG`) to the test's
/// captured output; a second call in the same test binary does nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,marketprism=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}
