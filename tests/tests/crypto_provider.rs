//! One rustls crypto provider in the workspace (`ring`, see `crates/config/src/tls.rs`): the lock file
//! holds no aws-lc crate, so no feature can bring the second provider (and its panic) back unseen.
#![forbid(unsafe_code)]

#[test]
fn the_lock_file_has_ring_and_no_aws_lc() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("Cargo.lock at the workspace root");
    let packages: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert!(packages.contains(&"ring"), "ring is the provider");
    let aws: Vec<&&str> = packages
        .iter()
        .filter(|p| p.starts_with("aws-lc"))
        .collect();
    assert!(
        aws.is_empty(),
        "a dependency enables rustls' aws-lc-rs provider again: {aws:?} (see `cargo tree -i aws-lc-rs`)"
    );
}

#[test]
fn every_client_builder_works_without_a_preinstalled_provider() {
    // Building the clients must not panic in a process where nobody installed a provider first:
    // each builder installs `ring` itself.
    let tls = marketprism_config::tls::ClientTls::default();
    let _ = marketprism_venues::rest_client(&tls);
    let _ = tokio_tungstenite::Connector::Rustls(tls.rustls());
    let _ = marketprism_pipeline::store::clickhouse::clickhouse_client(
        &marketprism_config::ClickHouseConfig::default(),
    );
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
}
