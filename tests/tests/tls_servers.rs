//! The path production takes to its servers: NATS over TLS (`tls://`) and ClickHouse over HTTPS, with
//! a private CA trusted through the collector's own `tls.ca_file` option, and the failures when it is not.
#![forbid(unsafe_code)]

use marketprism_config::Config;
use marketprism_config::tls::ClientTls;
use marketprism_model::synthetic::synthetic_events;
use marketprism_pipeline::publish::streams;
use marketprism_pipeline::sink::run_sink;
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use marketprism_telemetry::Health;
use marketprism_tests::pipeline::{Run, expected_counts};
use marketprism_tests::servers::tls_servers;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The trust store exactly as `run`/`sink` build it: YAML `tls.ca_file`, resolved by the config loader.
fn trust_from_config(ca_file: &str) -> ClientTls {
    let yaml = format!(
        "tls: {{ca_file: \"{ca_file}\"}}\noutputs: {{nats: {{url: \"tls://127.0.0.1:1\"}}}}\n"
    );
    let mut config = Config::from_yaml(&yaml).expect("valid yaml");
    config.validate().expect("valid config");
    config.resolve_tls().expect("the CA file loads");
    let tls = config.outputs.nats.expect("nats section").tls;
    assert_eq!(
        tls, config.tls.client,
        "every client shares one trust store"
    );
    tls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_lands_through_nats_tls_and_clickhouse_https() {
    let test = "every_type_lands_through_nats_tls_and_clickhouse_https";
    let Some(servers) = tls_servers(test) else {
        return;
    };
    let tls = trust_from_config(&servers.ca_file);
    let run = Run::new_with_tls(
        "pl_tls",
        &servers.nats_url,
        &servers.clickhouse_url,
        200,
        tls,
    )
    .await;
    let events = synthetic_events(23, 900);
    let expected = expected_counts(&events);

    let health = Health::new();
    let stop = CancellationToken::new();
    let sink = tokio::spawn(run_sink(run.sink.clone(), health.clone(), stop.clone()));
    let published = run.publish(events).await;
    assert_eq!((published.acked, published.dropped), (900, 0));
    run.wait_for_counts(&expected, Duration::from_secs(60))
        .await;
    assert!(health.is_ready(), "{:?}", health.snapshot());
    stop.cancel();
    sink.await.expect("sink task").expect("sink result");
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_whose_ca_is_not_trusted_are_refused_with_a_certificate_error() {
    let test = "servers_whose_ca_is_not_trusted_are_refused_with_a_certificate_error";
    let Some(servers) = tls_servers(test) else {
        return;
    };
    // Public roots only: the private CA is unknown, so both servers must be refused, never trusted.
    let mut config = Config::from_yaml(&format!(
        "outputs: {{nats: {{url: \"{}\"}}}}\nsink: {{clickhouse: {{url: \"{}\"}}}}\n",
        servers.nats_url, servers.clickhouse_url
    ))
    .unwrap();
    config.resolve_tls().unwrap();
    let sink = config.sink.expect("sink section");
    let err = clickhouse_client(&sink.clickhouse)
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
        .expect_err("an untrusted HTTPS server must be refused");
    let text = format!("{err:?}");
    assert!(
        text.contains("UnknownIssuer") || text.contains("certificate"),
        "the error names the certificate problem: {text}"
    );

    let nats = config.outputs.nats.expect("nats section");
    let client = streams::connect(&nats, "untrusted")
        .await
        .expect("connect returns at once and retries in the background");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !streams::is_connected(&client),
        "a TLS server with an unknown CA must not be connected"
    );

    // Trusting the CA through the same option makes the same URL work.
    let trusted = trust_from_config(&servers.ca_file);
    let mut ch = sink.clickhouse.clone();
    ch.tls = trusted;
    let one: u8 = clickhouse_client(&ch)
        .query("SELECT 1")
        .fetch_one()
        .await
        .expect("trusted HTTPS works");
    assert_eq!(one, 1);
}
