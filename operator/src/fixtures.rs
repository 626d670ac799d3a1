//! Test fixtures shared by unit tests: specs and CollectorSets built in code.

use crate::crd::{
    ClickHouseCredentialsRef, ClickHouseSpec, CollectorSet, CollectorSetSpec, DataTypeName,
    ExchangeSpec, NatsCredentialsRef, NatsSpec, ShardingSpec, SinkSpec, Venue,
};
use kube::api::ObjectMeta;

/// `n` symbols `S0-USDT`, `S1-USDT`, ... on `venue`.
pub fn symbols(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("S{i}-USDT")).collect()
}

pub fn exchange(venue: Venue, symbols: Vec<String>) -> ExchangeSpec {
    ExchangeSpec {
        venue,
        symbols,
        data_types: vec![DataTypeName::Trades, DataTypeName::Orderbooks],
        orderbook: None,
        endpoints: None,
        signals: None,
    }
}

pub fn spec(exchanges: Vec<ExchangeSpec>, max_symbols_per_shard: i32) -> CollectorSetSpec {
    CollectorSetSpec {
        exchanges,
        sharding: ShardingSpec {
            max_symbols_per_shard,
            groups: Vec::new(),
        },
        replicas_per_shard: 2,
        nats: NatsSpec {
            url: "nats://nats.marketprism:4222".into(),
            credentials_secret_ref: Some(NatsCredentialsRef {
                name: "nats-creds".into(),
                user_key: "user".into(),
                password_key: "password".into(),
                token_key: "token".into(),
            }),
            market_data_stream: None,
            orderbook_stream: None,
            batch_linger_ms: None,
        },
        clickhouse: Some(ClickHouseSpec {
            url: "http://clickhouse:8123".into(),
            hot_database: "marketprism_hot".into(),
            cold_database: "marketprism_cold".into(),
            credentials_secret_ref: Some(ClickHouseCredentialsRef {
                name: "ch-creds".into(),
                user_key: "user".into(),
                password_key: "password".into(),
            }),
            create_schema: true,
        }),
        sink: SinkSpec::default(),
        image: None,
        image_pull_policy: None,
        resources: None,
        node_selector: None,
        tolerations: None,
        affinity: None,
        paused: false,
        report: None,
        jobs: None,
    }
}

/// A stored CollectorSet `name` in namespace `markets` with uid and generation set.
pub fn collector_set(name: &str, spec: CollectorSetSpec) -> CollectorSet {
    let mut cs = CollectorSet::new(name, spec);
    cs.metadata = ObjectMeta {
        name: Some(name.into()),
        namespace: Some("markets".into()),
        uid: Some("7c1e8a52-0000-4000-8000-000000000001".into()),
        generation: Some(3),
        resource_version: Some("100".into()),
        ..ObjectMeta::default()
    };
    cs
}
