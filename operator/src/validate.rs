//! The CRD's schema and CEL rules, repeated as a pure function.
//!
//! The apiserver enforces the schema on admission; this copy lets the reconciler explain a bad spec
//! in status (objects created before a rule existed, or clusters without CEL) and lets tests prove
//! samples valid without an apiserver. Tests check both agree on the same inputs.

use crate::crd::offers::offers_message;
use crate::crd::{
    CollectorSetSpec, DataTypeName, EndpointsSpec, ExchangeSpec, GROUP_NAME_PATTERN, JobsSpec,
    MAX_SHARDS, OrderBookSpec, REST_URL_PATTERN, SignalsSpec, StreamLimitsSpec, Venue,
    WORK_VOLUME_SIZE_PATTERN, WS_URL_PATTERN,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One violated rule: the field path (as in the CRD) and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// True for the collector's normalized symbol form (`^[A-Z0-9]+-[A-Z0-9]+(-[A-Z0-9]+)*$`).
pub fn is_symbol(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    s.len() <= 40
        && parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// True for a DNS-label fragment (`GROUP_NAME_PATTERN`).
pub fn is_group_name(s: &str) -> bool {
    debug_assert_eq!(GROUP_NAME_PATTERN, "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 20
        && inner(&b[0])
        && inner(&b[b.len() - 1])
        && b.iter().all(|c| inner(c) || *c == b'-')
}

/// Every violated rule, in field order; empty when the spec is valid.
pub fn validate(spec: &CollectorSetSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut fail = |field: String, message: &str| {
        errors.push(FieldError {
            field,
            message: message.to_owned(),
        })
    };

    if spec.exchanges.is_empty() || spec.exchanges.len() > 9 {
        fail("spec.exchanges".into(), "list 1 to 9 venues");
    }
    let mut venues = BTreeSet::new();
    let mut declared: BTreeMap<Venue, BTreeSet<&str>> = BTreeMap::new();
    for (i, ex) in spec.exchanges.iter().enumerate() {
        let at = |f: &str| format!("spec.exchanges[{i}].{f}");
        if !venues.insert(ex.venue) {
            fail(at("venue"), "each venue may be listed only once");
        }
        if ex.symbols.is_empty() || ex.symbols.len() > 200 {
            fail(at("symbols"), "list 1 to 200 symbols");
        }
        let mut seen = BTreeSet::new();
        for s in &ex.symbols {
            if !is_symbol(s) {
                fail(
                    at("symbols"),
                    &format!("{s:?} is not BASE-QUOTE in upper case, e.g. BTC-USDT"),
                );
            }
            if !seen.insert(s.as_str()) {
                fail(at("symbols"), &format!("{s} is listed twice"));
            }
        }
        declared.entry(ex.venue).or_default().extend(seen);
        let types: BTreeSet<_> = ex.data_types.iter().collect();
        if ex.data_types.is_empty() {
            fail(at("dataTypes"), "list at least one data type");
        } else if types.len() != ex.data_types.len() {
            fail(at("dataTypes"), "a data type is listed twice");
        }
        if types.iter().any(|d| !ex.venue.offers().contains(d)) {
            fail(at("dataTypes"), &offers_message(ex.venue));
        }
        if let Some(ob) = &ex.orderbook {
            validate_orderbook(ob, &at("orderbook"), &mut fail);
            let tick_by_tick = ob.every_update == Some(true)
                || ob
                    .every_update_symbols
                    .as_ref()
                    .is_some_and(|s| !s.is_empty());
            if tick_by_tick && !ex.data_types.contains(&DataTypeName::Orderbooks) {
                fail(
                    at("orderbook.everyUpdate"),
                    "tick-by-tick books need orderbooks in dataTypes",
                );
            }
            for s in ob.every_update_symbols.iter().flatten() {
                if !ex.symbols.contains(s) {
                    fail(
                        at("orderbook.everyUpdateSymbols"),
                        &format!("{s} is not in this venue's symbols"),
                    );
                }
            }
        }
        if let Some(endpoints) = &ex.endpoints {
            validate_endpoints(endpoints, &at("endpoints"), &mut fail);
        }
        if let Some(signals) = &ex.signals {
            validate_signals(ex, signals, &at("signals"), &mut fail);
        }
    }

    let sharding = &spec.sharding;
    if !(1..=1000).contains(&sharding.max_symbols_per_shard) {
        fail(
            "spec.sharding.maxSymbolsPerShard".into(),
            "must be between 1 and 1000",
        );
    }
    let total: usize = spec.exchanges.iter().map(|e| e.symbols.len()).sum();
    if total as i64 > i64::from(MAX_SHARDS) * i64::from(sharding.max_symbols_per_shard) {
        fail(
            "spec".into(),
            "too many symbols for maxSymbolsPerShard: at most 64 shards are planned",
        );
    }
    if sharding.groups.len() > 8 {
        fail("spec.sharding.groups".into(), "at most 8 groups");
    }
    let mut group_names = BTreeSet::new();
    let mut grouped = BTreeSet::new();
    for (g, group) in sharding.groups.iter().enumerate() {
        let at = |f: &str| format!("spec.sharding.groups[{g}].{f}");
        if !is_group_name(&group.name) {
            fail(
                at("name"),
                "lower case letters, digits and '-', at most 20 characters",
            );
        }
        if !group_names.insert(group.name.as_str()) {
            fail("spec.sharding.groups".into(), "group names must be unique");
        }
        if group.members.is_empty() || group.members.len() > 9 {
            fail(at("members"), "list 1 to 9 members");
        }
        let member_venues: BTreeSet<_> = group.members.iter().map(|m| m.venue).collect();
        if member_venues.len() != group.members.len() {
            fail(
                at("members"),
                "each venue may be listed once per group: merge its symbols into one member",
            );
        }
        for (m, member) in group.members.iter().enumerate() {
            let symbols_at = format!("spec.sharding.groups[{g}].members[{m}].symbols");
            if member.symbols.is_empty() || member.symbols.len() > 16 {
                fail(symbols_at.clone(), "list 1 to 16 symbols");
            }
            for s in &member.symbols {
                let is_declared = declared
                    .get(&member.venue)
                    .is_some_and(|d| d.contains(s.as_str()));
                if !is_declared {
                    fail(
                        "spec".into(),
                        "sharding.groups may only name symbols declared under exchanges for the same venue",
                    );
                }
                if !grouped.insert((member.venue, s.as_str())) {
                    fail(
                        symbols_at.clone(),
                        &format!(
                            "{}/{s} is already in a group: a venue's symbol may be in only one sharding group",
                            member.venue.as_str()
                        ),
                    );
                }
            }
        }
    }

    if !(1..=3).contains(&spec.replicas_per_shard) {
        fail(
            "spec.replicasPerShard".into(),
            "must be between 1 and 3 (one active, the rest standby)",
        );
    }
    if !(1..=10).contains(&spec.sink.replicas) {
        fail("spec.sink.replicas".into(), "must be between 1 and 10");
    }
    if !(spec.nats.url.starts_with("nats://") || spec.nats.url.starts_with("tls://")) {
        fail("spec.nats.url".into(), "must start with nats:// or tls://");
    }
    for (name, limits) in [
        ("marketDataStream", &spec.nats.market_data_stream),
        ("orderbookStream", &spec.nats.orderbook_stream),
    ] {
        if let Some(limits) = limits {
            validate_stream(limits, &format!("spec.nats.{name}"), &mut fail);
        }
    }
    let http = |url: &str| url.starts_with("http://") || url.starts_with("https://");
    if spec.clickhouse.as_ref().is_some_and(|ch| !http(&ch.url)) {
        fail(
            "spec.clickhouse.url".into(),
            "must start with http:// or https://",
        );
    }
    for (name, batch) in spec.sink.batching.entries() {
        if batch.max_rows < 1 || batch.max_wait_ms < 1 {
            fail(
                format!("spec.sink.batching.{name}"),
                "maxRows and maxWaitMs must be at least 1",
            );
        }
    }
    if let Some(report) = &spec.report {
        if spec.clickhouse.is_none() {
            fail(
                "spec.report".into(),
                "the report reads ClickHouse: set spec.clickhouse",
            );
        }
        validate_schedule(&report.schedule, &report.window, "spec.report", &mut fail);
        for name in report.criteria.keys() {
            let known = marketprism_model::DataType::parse(name)
                .filter(|d| *d != marketprism_model::DataType::Gaps);
            if known.is_none() {
                let allowed: Vec<&str> = marketprism_model::DataType::ALL
                    .iter()
                    .filter(|d| **d != marketprism_model::DataType::Gaps)
                    .map(|d| d.as_str())
                    .collect();
                fail(
                    format!("spec.report.criteria.{name}"),
                    &format!("not a data type; allowed: {}", allowed.join(", ")),
                );
            }
        }
    }
    if let Some(jobs) = &spec.jobs {
        validate_jobs(spec, jobs, &mut fail);
    }
    errors
}

/// A cron schedule of 5 fields and a `--last` window, at `{at}.schedule` and `{at}.window`.
fn validate_schedule(schedule: &str, window: &str, at: &str, fail: &mut impl FnMut(String, &str)) {
    if schedule.split_whitespace().count() != 5 {
        fail(
            format!("{at}.schedule"),
            "a cron schedule of 5 fields, e.g. \"5 * * * *\"",
        );
    }
    if !is_window(window) {
        fail(format!("{at}.window"), "a number and s, m, h or d, e.g. 1h");
    }
}

/// `spec.jobs`: ClickHouse is what both kinds read (backfill also publishes to `spec.nats`, which
/// the schema always requires), schedules, windows and the work volume's size.
fn validate_jobs(spec: &CollectorSetSpec, jobs: &JobsSpec, fail: &mut impl FnMut(String, &str)) {
    if spec.clickhouse.is_none() {
        // The CEL rule's message, on the spec as the apiserver reports it.
        fail(
            "spec".into(),
            "spec.jobs verifies and backfills the set's ClickHouse tables: set spec.clickhouse",
        );
    }
    if let Some(verify) = &jobs.verify {
        validate_schedule(&verify.schedule, &verify.window, "spec.jobs.verify", fail);
    }
    if let Some(backfill) = &jobs.backfill {
        validate_schedule(
            &backfill.schedule,
            &backfill.window,
            "spec.jobs.backfill",
            fail,
        );
    }
    if !is_volume_size(&jobs.work_volume.size) {
        fail(
            "spec.jobs.workVolume.size".into(),
            "a whole number of Mi, Gi or Ti, e.g. 1Gi",
        );
    }
    if jobs
        .work_volume
        .storage_class_name
        .as_ref()
        .is_some_and(|c| c.is_empty() || c.len() > 253)
    {
        fail(
            "spec.jobs.workVolume.storageClassName".into(),
            "1 to 253 characters, or leave it out for the default class",
        );
    }
}

/// [`WORK_VOLUME_SIZE_PATTERN`]: `<1..999999><Mi|Gi|Ti>`.
fn is_volume_size(size: &str) -> bool {
    debug_assert_eq!(WORK_VOLUME_SIZE_PATTERN, "^[1-9][0-9]{0,5}(Mi|Gi|Ti)$");
    let (n, unit) = size.split_at(size.len().saturating_sub(2));
    matches!(unit, "Mi" | "Gi" | "Ti")
        && (1..=6).contains(&n.len())
        && !n.starts_with('0')
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// `<1..999999><s|m|h|d>`, as the report's `--last` takes it.
fn is_window(w: &str) -> bool {
    let (n, unit) = w.split_at(w.len().saturating_sub(1));
    matches!(unit, "s" | "m" | "h" | "d")
        && (1..=6).contains(&n.len())
        && !n.starts_with('0')
        && n.bytes().all(|b| b.is_ascii_digit())
}

fn validate_orderbook(ob: &OrderBookSpec, at: &str, fail: &mut impl FnMut(String, &str)) {
    if ob.depth.is_some_and(|d| !(1..=5000).contains(&d)) {
        fail(format!("{at}.depth"), "must be between 1 and 5000");
    }
    // The collector's defaults (20 levels of 400) apply to the unset side.
    if ob.snapshot_levels.unwrap_or(20) > ob.depth.unwrap_or(400) {
        fail(
            at.to_owned(),
            "snapshotLevels must not exceed depth (defaults: 20 levels, depth 400)",
        );
    }
    if ob.snapshot_levels.is_some_and(|l| l < 1) {
        fail(format!("{at}.snapshotLevels"), "must be at least 1");
    }
    if ob.snapshot_interval_ms.is_some_and(|ms| ms < 10) {
        fail(format!("{at}.snapshotIntervalMs"), "must be at least 10");
    }
}

fn validate_signals(
    ex: &ExchangeSpec,
    signals: &SignalsSpec,
    at: &str,
    fail: &mut impl FnMut(String, &str),
) {
    if signals.symbols.is_empty() {
        fail(
            format!("{at}.symbols"),
            "list at least one symbol, or leave signals out",
        );
    }
    for s in &signals.symbols {
        if !ex.symbols.contains(s) {
            fail(
                format!("{at}.symbols"),
                &format!("{s} is not in this venue's symbols; signals need its books and trades"),
            );
        }
    }
    for needed in [DataTypeName::Orderbooks, DataTypeName::Trades] {
        if !ex.data_types.contains(&needed) {
            fail(
                format!("{at}.symbols"),
                "signals are computed from orderbooks and trades: list both in dataTypes",
            );
        }
    }
    if let Some(w) = &signals.ofi_weights
        && (w.is_empty()
            || w.len() > 50
            || w.iter().any(|x| !x.is_finite() || *x < 0.0)
            || w.iter().all(|x| *x == 0.0))
    {
        fail(
            format!("{at}.ofiWeights"),
            "1 to 50 finite, non-negative weights, not all zero",
        );
    }
    if signals.z_window.is_some_and(|w| w < 10) {
        fail(format!("{at}.zWindow"), "must be at least 10");
    }
    if signals.max_silence_ms.is_some_and(|ms| ms < 0) {
        fail(
            format!("{at}.maxSilenceMs"),
            "must be 0 (gaps only) or more",
        );
    }
}

fn validate_endpoints(e: &EndpointsSpec, at: &str, fail: &mut impl FnMut(String, &str)) {
    debug_assert_eq!(
        (WS_URL_PATTERN, REST_URL_PATTERN),
        ("^wss?://", "^https?://")
    );
    for (field, url, schemes) in [
        ("wsUrl", &e.ws_url, ["ws://", "wss://"]),
        ("restUrl", &e.rest_url, ["http://", "https://"]),
    ] {
        let Some(url) = url else { continue };
        if !schemes.iter().any(|s| url.starts_with(s)) {
            fail(
                format!("{at}.{field}"),
                &format!("must start with {} or {}", schemes[0], schemes[1]),
            );
        } else if url.len() > 512 {
            fail(format!("{at}.{field}"), "at most 512 characters");
        }
    }
}

fn validate_stream(s: &StreamLimitsSpec, at: &str, fail: &mut impl FnMut(String, &str)) {
    if s.max_age_s.is_some_and(|a| a < 300) {
        fail(format!("{at}.maxAgeS"), "must be at least 300");
    }
    if let (Some(window), Some(age)) = (s.duplicate_window_s, s.max_age_s)
        && window > age
    {
        fail(at.to_owned(), "duplicateWindowS must not exceed maxAgeS");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{GroupMember, ShardGroup};
    use crate::fixtures::{exchange, spec, symbols};

    fn with_endpoints(ws_url: Option<&str>, rest_url: Option<&str>) -> Vec<FieldError> {
        let mut s = spec(vec![exchange(Venue::BinanceSpot, symbols(2))], 10);
        s.exchanges[0].endpoints = Some(EndpointsSpec {
            ws_url: ws_url.map(Into::into),
            rest_url: rest_url.map(Into::into),
        });
        validate(&s)
    }

    #[test]
    fn data_types_a_venue_does_not_offer_are_refused_with_what_it_offers() {
        let mut s = spec(vec![exchange(Venue::BinanceSpot, symbols(2))], 10);
        s.exchanges[0].data_types = vec![DataTypeName::Trades, DataTypeName::FundingRates];
        let errors = validate(&s);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.exchanges[0].dataTypes");
        assert!(
            errors[0]
                .message
                .contains("binance_spot offers only [orderbooks, trades]"),
            "{}",
            errors[0]
        );
        s.exchanges[0].venue = Venue::BinanceDerivatives;
        assert_eq!(validate(&s), []);
    }

    #[test]
    fn tick_by_tick_symbols_must_be_listed() {
        let mut s = spec(vec![exchange(Venue::BinanceSpot, symbols(2))], 10);
        s.exchanges[0].orderbook = Some(OrderBookSpec {
            every_update_symbols: Some(vec!["S0-USDT".into(), "S9-USDT".into()]),
            ..OrderBookSpec::default()
        });
        let errors = validate(&s);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].field,
            "spec.exchanges[0].orderbook.everyUpdateSymbols"
        );
        assert!(errors[0].to_string().contains("S9-USDT"), "{}", errors[0]);
        s.exchanges[0]
            .orderbook
            .as_mut()
            .unwrap()
            .every_update_symbols = Some(vec!["S0-USDT".into()]);
        s.exchanges[0].data_types = vec![DataTypeName::Trades];
        let errors = validate(&s);
        assert_eq!(
            errors[0].field, "spec.exchanges[0].orderbook.everyUpdate",
            "{errors:?}"
        );
    }

    #[test]
    fn signals_need_listed_symbols_books_and_trades() {
        let mut s = spec(vec![exchange(Venue::BinanceDerivatives, symbols(2))], 10);
        s.exchanges[0].signals = Some(SignalsSpec {
            symbols: vec!["S0-USDT".into()],
            ..SignalsSpec::default()
        });
        assert_eq!(validate(&s), []);
        s.exchanges[0].signals.as_mut().unwrap().symbols = vec!["S9-USDT".into()];
        let errors = validate(&s);
        assert_eq!(errors[0].field, "spec.exchanges[0].signals.symbols");
        assert!(
            errors[0].message.contains("S9-USDT is not in"),
            "{}",
            errors[0]
        );
        s.exchanges[0].signals.as_mut().unwrap().symbols = vec!["S0-USDT".into()];
        s.exchanges[0].data_types = vec![DataTypeName::Orderbooks];
        let errors = validate(&s);
        assert!(
            errors[0].message.contains("orderbooks and trades"),
            "{}",
            errors[0]
        );
        s.exchanges[0].data_types = vec![DataTypeName::Orderbooks, DataTypeName::Trades];
        s.exchanges[0].signals.as_mut().unwrap().z_window = Some(5);
        assert_eq!(validate(&s)[0].field, "spec.exchanges[0].signals.zWindow");
    }

    #[test]
    fn a_symbol_in_two_groups_is_refused() {
        let mut s = spec(vec![exchange(Venue::OkxSpot, symbols(4))], 10);
        let group = |name: &str, symbol: &str| ShardGroup {
            name: name.into(),
            members: vec![GroupMember {
                venue: Venue::OkxSpot,
                symbols: vec![symbol.into()],
            }],
        };
        s.sharding.groups = vec![group("a", "S1-USDT"), group("b", "S2-USDT")];
        assert_eq!(validate(&s), []);
        s.sharding.groups[1] = group("b", "S1-USDT");
        let errors = validate(&s);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].field,
            "spec.sharding.groups[1].members[0].symbols"
        );
        assert!(
            errors[0]
                .message
                .contains("okx_spot/S1-USDT is already in a group")
        );
    }

    #[test]
    fn endpoint_overrides_with_the_right_schemes_are_valid() {
        assert_eq!(
            with_endpoints(Some("ws://sim:9200/binance_spot"), Some("http://sim:9200")),
            []
        );
        assert_eq!(
            with_endpoints(Some("wss://x.example"), Some("https://x.example")),
            []
        );
        assert_eq!(with_endpoints(None, None), []);
    }

    #[test]
    fn endpoint_overrides_with_a_wrong_scheme_name_the_field() {
        let errors = with_endpoints(Some("http://sim:9200"), Some("ws://sim:9200"));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.exchanges[0].endpoints.wsUrl",
                "spec.exchanges[0].endpoints.restUrl"
            ]
        );
        assert!(errors[0].message.contains("ws://"), "{}", errors[0]);
        let long = format!("ws://{}", "a".repeat(600));
        assert_eq!(with_endpoints(Some(&long), None).len(), 1);
    }
}
