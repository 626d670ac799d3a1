//! Least-privilege RBAC as data: the operator's ClusterRole and the per-shard collector Role.
//!
//! `crdgen --write` renders these to `operator/rbac/*.yaml` for the Helm chart; a test keeps the
//! files in sync and another pins each verb to the code path that needs it.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use kube::api::ObjectMeta;

/// Name of the operator's ClusterRole in the rendered YAML.
pub const OPERATOR_CLUSTER_ROLE: &str = "marketprism-operator";

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// Every verb the operator uses wherever CollectorSets may be, and nothing else. Why each one:
/// - `list`/`watch` on collectorsets and deployments: the controller's watches;
/// - `create`+`patch`: server-side apply (an apply that creates is authorized as `create`);
/// - `list`+`delete`: removing objects of shards no longer planned, found by label selector;
/// - `update` on collectorsets/finalizers: owner references with `blockOwnerDeletion`;
/// - `create`/`patch` on events: the event recorder (patch bumps a repeated event's series);
/// - cronjobs: apply and prune the optional data-quality report (`spec.report`) and scheduled jobs
///   (`spec.jobs`).
///
/// Leases, Secrets, Jobs, pods and PersistentVolumeClaims are not here: see [`operator_namespace_rules`].
pub fn operator_rules() -> Vec<PolicyRule> {
    let apply_and_prune = ["list", "create", "patch", "delete"];
    vec![
        rule(
            "marketprism.io",
            &["collectorsets"],
            &["get", "list", "watch"],
        ),
        rule("marketprism.io", &["collectorsets/status"], &["patch"]),
        rule("marketprism.io", &["collectorsets/finalizers"], &["update"]),
        rule(
            "",
            &["configmaps", "services", "serviceaccounts"],
            &apply_and_prune,
        ),
        rule(
            "apps",
            &["deployments"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        rule("policy", &["poddisruptionbudgets"], &apply_and_prune),
        rule(
            "rbac.authorization.k8s.io",
            &["roles", "rolebindings"],
            &apply_and_prune,
        ),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
        rule("batch", &["cronjobs"], &apply_and_prune),
    ]
}

/// What the operator needs only in the namespaces that hold CollectorSets (the chart grants it
/// there by Role, never cluster-wide, so not in `kube-system`):
/// - leases: apply (`create`/`patch`) and prune (`list`/`delete`) the shard Leases; `get`+`update`
///   are what lets it grant them to collectors in per-shard Roles (RBAC forbids granting verbs one
///   does not hold, unless `escalate`);
/// - secrets `get`: check that the credential Secrets a CollectorSet names exist and hold the keys
///   (never `list`/`watch`: it reads only the Secrets it is pointed at);
/// - jobs and pods `list`: the report's and the scheduled jobs' last finished Job and its pod's
///   termination message, in `status.report` and `status.jobs` (listed by label selector; nothing
///   is changed);
/// - persistentvolumeclaims: apply (`create`/`patch`) and prune (`list`/`delete`) the scheduled
///   jobs' work volume (`spec.jobs`); never `get`/`watch`/`update`, and only where CollectorSets
///   live, as it holds data.
///
/// The operator's own leader Lease is granted by name in its release namespace (chart template).
pub fn operator_namespace_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            "coordination.k8s.io",
            &["leases"],
            &["get", "list", "create", "update", "patch", "delete"],
        ),
        rule("", &["secrets"], &["get"]),
        rule("batch", &["jobs"], &["list"]),
        rule("", &["pods"], &["list"]),
        rule(
            "",
            &["persistentvolumeclaims"],
            &["list", "create", "patch", "delete"],
        ),
    ]
}

/// What a collector pod may do: read and renew its own shard Lease, nothing else.
pub fn collector_rules(lease_name: &str) -> Vec<PolicyRule> {
    let mut r = rule("coordination.k8s.io", &["leases"], &["get", "update"]);
    r.resource_names = Some(vec![lease_name.to_owned()]);
    vec![r]
}

pub fn operator_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(OPERATOR_CLUSTER_ROLE.into()),
            ..ObjectMeta::default()
        },
        rules: Some(operator_rules()),
        ..ClusterRole::default()
    }
}

/// The Role the chart creates in each namespace holding CollectorSets.
pub fn operator_namespace_role() -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some(OPERATOR_CLUSTER_ROLE.into()),
            ..ObjectMeta::default()
        },
        rules: Some(operator_namespace_rules()),
    }
}

/// The per-shard Role as a template (the operator creates one per shard with the real name).
pub fn collector_role_template() -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some("<collectorset>-<shard>".into()),
            ..ObjectMeta::default()
        },
        rules: Some(collector_rules("<collectorset>-<shard>")),
    }
}

/// `(relative path, YAML)` for every committed RBAC file.
pub fn rbac_files() -> Vec<(&'static str, String)> {
    let header = "# Generated by `cargo run -p marketprism-operator --bin crdgen -- --write`; do not edit.\n";
    let to_yaml = |v: serde_yaml::Result<String>| {
        format!("{header}{}", v.expect("RBAC objects always serialize"))
    };
    vec![
        (
            "operator/rbac/operator-clusterrole.yaml",
            to_yaml(serde_yaml::to_string(&operator_cluster_role())),
        ),
        (
            "operator/rbac/operator-namespace-role.yaml",
            to_yaml(serde_yaml::to_string(&operator_namespace_role())),
        ),
        (
            "operator/rbac/collector-role.yaml",
            to_yaml(serde_yaml::to_string(&collector_role_template())),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn verbs(rules: &[PolicyRule], group: &str, resource: &str) -> BTreeSet<String> {
        rules
            .iter()
            .filter(|r| r.api_groups.as_deref() == Some(&[group.to_owned()][..]))
            .filter(|r| {
                r.resources
                    .as_ref()
                    .is_some_and(|rs| rs.iter().any(|x| x == resource))
            })
            .flat_map(|r| r.verbs.iter().cloned())
            .collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn operator_has_exactly_the_verbs_it_uses() {
        let r = operator_rules();
        assert_eq!(
            verbs(&r, "marketprism.io", "collectorsets"),
            set(&["get", "list", "watch"])
        );
        assert_eq!(
            verbs(&r, "marketprism.io", "collectorsets/status"),
            set(&["patch"])
        );
        assert_eq!(
            verbs(&r, "apps", "deployments"),
            set(&["list", "watch", "create", "patch", "delete"])
        );
        for core in ["configmaps", "services", "serviceaccounts"] {
            assert_eq!(
                verbs(&r, "", core),
                set(&["list", "create", "patch", "delete"])
            );
        }
        assert_eq!(
            verbs(&r, "events.k8s.io", "events"),
            set(&["create", "patch"])
        );
        assert!(
            verbs(&r, "", "secrets").is_empty(),
            "no Secret access cluster-wide"
        );
        assert!(
            verbs(&r, "coordination.k8s.io", "leases").is_empty(),
            "no Lease access cluster-wide (kube-system holds the control plane's)"
        );
        let ns = operator_namespace_rules();
        assert_eq!(verbs(&ns, "", "secrets"), set(&["get"]), "never list/watch");
        assert_eq!(
            verbs(&ns, "coordination.k8s.io", "leases"),
            set(&["get", "list", "create", "update", "patch", "delete"])
        );
        assert!(
            verbs(&r, "", "pods").is_empty(),
            "no pod access cluster-wide"
        );
        assert_eq!(
            verbs(&r, "batch", "cronjobs"),
            set(&["list", "create", "patch", "delete"])
        );
        assert!(
            verbs(&r, "batch", "jobs").is_empty(),
            "Jobs are the CronJob's, never the operator's"
        );
        assert_eq!(
            verbs(&ns, "", "pods"),
            set(&["list"]),
            "the report's termination message only"
        );
        assert_eq!(verbs(&ns, "batch", "jobs"), set(&["list"]));
        assert!(
            verbs(&r, "", "persistentvolumeclaims").is_empty(),
            "no volume access cluster-wide"
        );
        assert_eq!(
            verbs(&ns, "", "persistentvolumeclaims"),
            set(&["list", "create", "patch", "delete"]),
            "the jobs' work volume: apply and prune only"
        );
        let all: BTreeSet<String> = r.iter().flat_map(|r| r.verbs.clone()).collect();
        for forbidden in ["*", "escalate", "bind", "impersonate", "deletecollection"] {
            assert!(!all.contains(forbidden), "{forbidden} granted");
        }
        assert!(
            r.iter().all(|r| r
                .resources
                .as_ref()
                .is_some_and(|rs| !rs.contains(&"*".into()))),
            "no wildcard resources"
        );
    }

    #[test]
    fn operator_holds_what_it_grants_collectors() {
        // RBAC forbids granting verbs one does not hold (without `escalate`).
        let held = verbs(&operator_namespace_rules(), "coordination.k8s.io", "leases");
        for r in collector_rules("x") {
            for v in &r.verbs {
                assert!(held.contains(v), "operator cannot grant {v}");
            }
        }
    }

    #[test]
    fn collector_may_only_get_and_update_its_own_lease() {
        let r = collector_rules("prod-s3");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].resource_names, Some(vec!["prod-s3".to_owned()]));
        assert_eq!(
            verbs(&r, "coordination.k8s.io", "leases"),
            set(&["get", "update"])
        );
    }
}
