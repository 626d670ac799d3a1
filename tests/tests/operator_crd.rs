//! The committed CRD and RBAC files match the code, and every sample is valid by both the Rust
//! rules and the CRD's own CEL rules (evaluated client-side, as the apiserver would).

use kube::CustomResourceExt;
use marketprism_operator::crd::{CollectorSet, crd_yaml};
use marketprism_operator::validate::validate;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn samples() -> Vec<(PathBuf, String)> {
    let dir = root().join("config/samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Evaluate the CRD's `x-kubernetes-validations` on a raw object (schema defaults applied first).
fn cel_errors(object: &Value) -> Vec<String> {
    let crd = CollectorSet::crd();
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    match kube::core::cel::Validator::new().validate(&schema, object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// The apiserver's structural-schema rules: every node has a `type` (or is int-or-string /
/// preserve-unknown-fields), no `$ref`, and no logical junctors that could change the shape.
fn assert_structural(node: &Value, at: &str) {
    let Some(obj) = node.as_object() else { return };
    for banned in ["$ref", "anyOf", "oneOf", "allOf", "not", "definitions"] {
        assert!(
            !obj.contains_key(banned),
            "{at}: {banned} is not structural"
        );
    }
    let exempt = obj.contains_key("x-kubernetes-int-or-string")
        || obj.contains_key("x-kubernetes-preserve-unknown-fields");
    assert!(exempt || obj.contains_key("type"), "{at}: no type");
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        assert_eq!(
            obj.get("type").and_then(Value::as_str),
            Some("object"),
            "{at}"
        );
        for (name, child) in props {
            assert_structural(child, &format!("{at}.{name}"));
        }
    }
    if let Some(items) = obj.get("items") {
        assert_eq!(
            obj.get("type").and_then(Value::as_str),
            Some("array"),
            "{at}"
        );
        assert_structural(items, &format!("{at}[]"));
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        assert_structural(extra, &format!("{at}{{}}"));
    }
}

const DRIFT: &str = "run `cargo run -p marketprism-operator --bin crdgen -- --write`";

#[test]
fn committed_crd_matches_the_rust_types() {
    assert!(
        read("crds/collectorset.yaml") == crd_yaml(),
        "crds/collectorset.yaml drifted: {DRIFT}"
    );
}

#[test]
fn committed_rbac_matches_the_rules_in_code() {
    for (path, yaml) in marketprism_operator::rbac::rbac_files() {
        assert!(read(path) == yaml, "{path} drifted: {DRIFT}");
    }
}

#[test]
fn crd_is_namespaced_with_status_and_a_free_short_name() {
    let crd = CollectorSet::crd();
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["mpcs".to_owned()]));
    let v = &crd.spec.versions[0];
    assert!(v.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<_> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for c in ["Exchanges", "Shards", "Ready", "Age"] {
        assert!(columns.contains(&c), "{c} column");
    }
    let yaml = crd_yaml();
    assert!(yaml.contains("pattern: ^[A-Z0-9]+-[A-Z0-9]+(-[A-Z0-9]+)*$"));
    let schema = serde_json::to_value(
        v.schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    assert_structural(&schema, "openAPIV3Schema");
    for word in ["password:", "token:"] {
        assert!(
            !yaml.contains(word),
            "credentials never inline in the spec ({word})"
        );
    }
}

#[test]
fn every_sample_is_valid() {
    let samples = samples();
    assert!(samples.len() >= 2, "a minimal and a full sample");
    for (path, text) in samples {
        let set: CollectorSet =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let errors = validate(&set.spec);
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        let raw: Value = serde_yaml::from_str(&text).unwrap();
        let cel = cel_errors(&raw);
        assert!(cel.is_empty(), "{}: {cel:?}", path.display());
        // Round trip: what the operator writes back is still valid.
        assert!(cel_errors(&serde_json::to_value(&set).unwrap()).is_empty());
    }
}

/// Each case breaks one cross-field rule; the Rust rules and the CEL rules must both reject it.
#[test]
fn rust_rules_and_cel_rules_reject_the_same_specs() {
    let full =
        std::fs::read_to_string(root().join("config/samples/collectorset-full.yaml")).unwrap();
    let base: Value = serde_yaml::from_str(&full).unwrap();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 10] = [
        ("duplicate symbol", |v| {
            v["spec"]["exchanges"][0]["symbols"][1] = "BTC-USDT".into()
        }),
        ("duplicate venue", |v| {
            v["spec"]["exchanges"][1]["venue"] = "binance_spot".into()
        }),
        ("duplicate data type", |v| {
            v["spec"]["exchanges"][2]["dataTypes"] = serde_json::json!(["trades", "trades"])
        }),
        ("group names an undeclared symbol", |v| {
            v["spec"]["sharding"]["groups"][0]["members"][0]["symbols"][0] = "PEPE-USDT".into()
        }),
        ("group names a symbol of another venue", |v| {
            v["spec"]["sharding"]["groups"][0]["members"][0]["venue"] = "deribit_derivatives".into()
        }),
        ("snapshot levels above depth", |v| {
            v["spec"]["exchanges"][0]["orderbook"]["snapshotLevels"] = 2000.into()
        }),
        ("tick-by-tick symbol not collected", |v| {
            v["spec"]["exchanges"][0]["orderbook"]["everyUpdateSymbols"] =
                serde_json::json!(["PEPE-USDT"])
        }),
        ("duplicate window above max age", |v| {
            v["spec"]["nats"]["orderbookStream"]["duplicateWindowS"] = 90000.into()
        }),
        ("scheduled jobs without clickhouse", |v| {
            v["spec"].as_object_mut().unwrap().remove("clickhouse");
        }),
        ("more than 64 shards", |v| {
            v["spec"]["sharding"]["maxSymbolsPerShard"] = 1.into();
            let many: Vec<String> = (0..70).map(|i| format!("C{i}-USDT")).collect();
            v["spec"]["exchanges"][0]["symbols"] = serde_json::json!(many);
        }),
    ];
    for (what, edit) in cases {
        let mut v = base.clone();
        edit(&mut v);
        assert!(!cel_errors(&v).is_empty(), "CEL accepted: {what}");
        let set: CollectorSet = serde_json::from_value(v).unwrap();
        assert!(
            !validate(&set.spec).is_empty(),
            "Rust rules accepted: {what}"
        );
    }
    let mut long_name = base.clone();
    long_name["metadata"]["name"] = "x".repeat(41).into();
    assert!(!cel_errors(&long_name).is_empty(), "name length rule");
}

/// Apply `edit` to the full sample; return the CEL messages and the Rust rule messages.
fn refusals(edit: impl FnOnce(&mut Value)) -> (Vec<String>, Vec<String>) {
    let full = read("config/samples/collectorset-full.yaml");
    let mut v: Value = serde_yaml::from_str(&full).unwrap();
    edit(&mut v);
    let cel = cel_errors(&v);
    let set: CollectorSet = serde_json::from_value(v).unwrap();
    let rust = validate(&set.spec)
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    (cel, rust)
}

#[test]
fn the_same_symbol_in_two_groups_is_refused_by_cel_with_what_to_change() {
    let (cel, rust) = refusals(|v| {
        v["spec"]["sharding"]["groups"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "eth", "members": [
                {"venue": "okx_derivatives", "symbols": ["ETH-USDT", "BTC-USDT"]}]}));
    });
    assert!(
        cel.iter().any(|e| e.contains(
            "a venue's symbol may be in only one sharding group: remove it from all groups but one"
        )),
        "{cel:?}"
    );
    assert!(
        rust.iter()
            .any(|e| e.contains("okx_derivatives/BTC-USDT is already in a group")),
        "{rust:?}"
    );
    // The same symbol of another venue is another unit: allowed.
    let (cel, rust) = refusals(|v| {
        v["spec"]["sharding"]["groups"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "okx-spot", "members": [
                {"venue": "okx_spot", "symbols": ["BTC-USDT"]}]}));
    });
    assert!(cel.is_empty() && rust.is_empty(), "{cel:?} {rust:?}");
}

#[test]
fn a_venue_twice_in_one_group_or_a_symbol_twice_in_a_member_is_refused() {
    let (cel, rust) = refusals(|v| {
        v["spec"]["sharding"]["groups"][0]["members"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"venue": "binance_spot", "symbols": ["ETH-USDT"]}));
    });
    assert!(
        cel.iter()
            .any(|e| e.contains("each venue may be listed once per group")),
        "{cel:?}"
    );
    assert!(!rust.is_empty());
    let (cel, rust) = refusals(|v| {
        v["spec"]["sharding"]["groups"][0]["members"][0]["symbols"] =
            serde_json::json!(["BTC-USDT", "BTC-USDT"]);
    });
    assert!(
        cel.iter().any(|e| e.contains("a symbol is listed twice")),
        "{cel:?}"
    );
    assert!(!rust.is_empty());
}

#[test]
fn data_types_a_venue_does_not_offer_are_refused_by_cel_naming_what_it_offers() {
    for (venue_index, data_type, message) in [
        (
            0,
            "funding_rates",
            "binance_spot offers only [orderbooks, trades]: remove the other data types from dataTypes",
        ),
        (
            0,
            "volatility_indices",
            "binance_spot offers only [orderbooks, trades]",
        ),
        (
            2,
            "liquidations",
            "okx_spot offers only [orderbooks, trades]",
        ),
        (
            1,
            "volatility_indices",
            "binance_derivatives offers only [orderbooks, trades, funding_rates, open_interests, liquidations, lsr_top_positions, lsr_all_accounts]",
        ),
        (
            4,
            "funding_rates",
            "deribit_derivatives offers only [orderbooks, trades, volatility_indices]",
        ),
    ] {
        let (cel, rust) = refusals(|v| {
            v["spec"]["exchanges"][venue_index]["dataTypes"]
                .as_array_mut()
                .unwrap()
                .push(data_type.into());
        });
        assert!(
            cel.iter().any(|e| e.contains(message)),
            "{data_type} on exchange {venue_index}: {cel:?}"
        );
        assert!(
            rust.iter().any(|e| e.contains(message)),
            "{data_type}: {rust:?}"
        );
    }
    // Everything each venue offers is accepted.
    let (cel, rust) = refusals(|v| {
        for (i, (_, offered)) in marketprism_operator::crd::offers::OFFERS.iter().enumerate() {
            let names: Vec<&str> = offered.iter().map(|d| d.as_str()).collect();
            v["spec"]["exchanges"][i]["venue"] = marketprism_operator::crd::offers::OFFERS[i]
                .0
                .as_str()
                .into();
            v["spec"]["exchanges"][i]["dataTypes"] = serde_json::json!(names);
        }
    });
    assert!(cel.is_empty() && rust.is_empty(), "{cel:?} {rust:?}");
}

#[test]
fn no_enum_offers_null_as_a_choice() {
    fn walk(node: &Value, at: &str, found: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::Array(choices)) = map.get("enum")
                    && choices.iter().any(Value::is_null)
                {
                    found.push(at.to_owned());
                }
                for (k, v) in map {
                    walk(v, &format!("{at}.{k}"), found);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, at, found)),
            _ => {}
        }
    }
    let crd: Value = serde_yaml::from_str(&crd_yaml()).unwrap();
    let mut found = Vec::new();
    walk(&crd, "crd", &mut found);
    assert!(found.is_empty(), "enums listing null: {found:?}");
    let yaml = crd_yaml();
    let policy = &yaml[yaml.find("imagePullPolicy:").unwrap()..];
    assert!(policy.contains("- Never\n"), "the three policies remain");
    // And the apiserver still refuses anything else.
    let mut sample: Value =
        serde_yaml::from_str(&read("config/samples/collectorset-minimal.yaml")).unwrap();
    sample["spec"]["imagePullPolicy"] = "Sometimes".into();
    assert!(serde_json::from_value::<CollectorSet>(sample).is_err());
}

/// Every CEL rule's estimated cost (kube-cel's static estimate from the schema's maxItems and
/// maxLength bounds) stays under the apiserver's per-rule budget, so the CRD applies.
#[test]
fn every_cel_rule_stays_within_the_cost_budget() {
    use kube::core::cel::{WarningKind, compile_schema, estimate_rule_cost};
    fn walk(node: &Value, at: &str, out: &mut Vec<String>, rules: &mut usize) {
        let Some(map) = node.as_object() else { return };
        if let Some(Value::Array(validations)) = map.get("x-kubernetes-validations") {
            let compiled = compile_schema(node);
            for v in validations {
                let rule = v["rule"].as_str().unwrap();
                *rules += 1;
                for w in estimate_rule_cost(rule, &compiled) {
                    // MissingBounds is the estimator not following `self.a.b` paths to their
                    // bounds; it then assumes 1000 items, so passing the budget anyway is safe.
                    if w.kind == WarningKind::CostExceeded {
                        out.push(format!("{at}: {rule}: {}", w.message));
                    }
                }
            }
        }
        for (k, v) in map {
            if k == "properties" {
                for (name, child) in v.as_object().unwrap() {
                    walk(child, &format!("{at}.{name}"), out, rules);
                }
            } else if k == "items" {
                walk(v, &format!("{at}[]"), out, rules);
            }
        }
    }
    let crd = CollectorSet::crd();
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let (mut problems, mut rules) = (Vec::new(), 0);
    walk(&schema, "", &mut problems, &mut rules);
    assert!(rules >= 15, "the rules were found: {rules}");
    assert!(problems.is_empty(), "{problems:#?}");
}
