//! The real servers and engines the test run provides (`tests/run.sh` exports their addresses).
//!
//! A test that needs one calls e.g. [`clickhouse_url`]: `None` means "skip", after printing why.
//! Under CI (`CI` set) or with `MARKETPRISM_REQUIRE_SERVERS` set, a missing server is a failure instead,
//! so a misconfigured run can never pass by skipping everything.

/// `MARKETPRISM_TEST_NATS_URL`: a NATS 2.10+ server with JetStream.
pub const NATS_URL: &str = "MARKETPRISM_TEST_NATS_URL";
/// `MARKETPRISM_TEST_CLICKHOUSE_URL`: `http://127.0.0.1:PORT` of a ClickHouse 18.16 server.
pub const CLICKHOUSE_URL: &str = "MARKETPRISM_TEST_CLICKHOUSE_URL";
/// `MARKETPRISM_TEST_PYTHON`: a Python with chdb-core 26.9 installed.
pub const PYTHON: &str = "MARKETPRISM_TEST_PYTHON";
/// `MARKETPRISM_TEST_CHDB_EXEC`: path of `tests/engine/chdb_exec.py`.
pub const CHDB_EXEC: &str = "MARKETPRISM_TEST_CHDB_EXEC";

/// True when a missing server must fail the test rather than skip it.
pub fn servers_required() -> bool {
    ["CI", "MARKETPRISM_REQUIRE_SERVERS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The value of `var`, or `None` (skip, reason printed), or a panic when servers are required.
pub fn env_or_skip(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if servers_required() => {
            panic!(
                "{test}: {var} is not set, and CI/MARKETPRISM_REQUIRE_SERVERS requires it (run tests/run.sh)"
            )
        }
        _ => {
            eprintln!("SKIPPED {test}: {var} is not set (run tests/run.sh to provide the servers)");
            None
        }
    }
}

pub fn clickhouse_url(test: &str) -> Option<String> {
    env_or_skip(CLICKHOUSE_URL, test)
}

pub fn nats_url(test: &str) -> Option<String> {
    env_or_skip(NATS_URL, test)
}

/// `MARKETPRISM_TEST_NATS_TLS_URL`, `MARKETPRISM_TEST_CLICKHOUSE_HTTPS_URL`, `MARKETPRISM_TEST_TLS_CA_FILE`:
/// a TLS-only NATS server, ClickHouse's HTTPS port, and the private CA (PEM) both certificates chain to.
pub struct TlsServers {
    pub nats_url: String,
    pub clickhouse_url: String,
    pub ca_file: String,
}

pub fn tls_servers(test: &str) -> Option<TlsServers> {
    Some(TlsServers {
        nats_url: env_or_skip("MARKETPRISM_TEST_NATS_TLS_URL", test)?,
        clickhouse_url: env_or_skip("MARKETPRISM_TEST_CLICKHOUSE_HTTPS_URL", test)?,
        ca_file: env_or_skip("MARKETPRISM_TEST_TLS_CA_FILE", test)?,
    })
}

/// (python, chdb_exec.py) for the modern-engine check.
pub fn chdb(test: &str) -> Option<(String, String)> {
    Some((env_or_skip(PYTHON, test)?, env_or_skip(CHDB_EXEC, test)?))
}

/// A name no other test run uses, for databases, streams and directories: `{prefix}_{pid}_{n}`.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
