//! The credential Secrets a CollectorSet references must exist and hold the keys it names.
//!
//! Pods reference Secret keys non-optionally, so a missing Secret or key would leave them in
//! `CreateContainerConfigError` with the reason only in pod events; and optional references (as
//! before) let them start without credentials and fail at the first NATS or ClickHouse call. The
//! reconciler checks first and reports `Degraded`/`MissingSecret` naming the Secret and the key.

use crate::builders::NatsAuth;
use crate::crd::CollectorSetSpec;
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use std::collections::BTreeSet;

/// What a referenced Secret looked like: absent, unreadable (RBAC), or its key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Missing,
    Forbidden,
    Keys(BTreeSet<String>),
}

/// The NATS keys to reference, or why the spec's Secret cannot work. Pure.
pub fn nats_auth(
    spec: &CollectorSetSpec,
    namespace: &str,
    found: &Found,
) -> std::result::Result<NatsAuth, String> {
    let Some(r) = &spec.nats.credentials_secret_ref else {
        return Ok(NatsAuth::default());
    };
    let keys = present(&r.name, namespace, found)?;
    let has = |k: &String| keys.contains(k);
    match (has(&r.user_key), has(&r.password_key), has(&r.token_key)) {
        // The collector prefers user+password when both kinds are present.
        (true, true, _) => Ok(NatsAuth {
            user_password: true,
            token: false,
        }),
        (false, false, true) => Ok(NatsAuth {
            user_password: false,
            token: true,
        }),
        (true, false, _) => Err(format!(
            "Secret {namespace}/{} has key {:?} but not {:?} (spec.nats.credentialsSecretRef.passwordKey)",
            r.name, r.user_key, r.password_key
        )),
        (false, true, _) => Err(format!(
            "Secret {namespace}/{} has key {:?} but not {:?} (spec.nats.credentialsSecretRef.userKey)",
            r.name, r.password_key, r.user_key
        )),
        (false, false, false) => Err(format!(
            "Secret {namespace}/{} has neither keys {:?}+{:?} nor {:?} (spec.nats.credentialsSecretRef)",
            r.name, r.user_key, r.password_key, r.token_key
        )),
    }
}

/// Why the ClickHouse Secret cannot work, if it cannot. Pure.
pub fn clickhouse_problem(
    spec: &CollectorSetSpec,
    namespace: &str,
    found: &Found,
) -> Option<String> {
    let r = spec.clickhouse.as_ref()?.credentials_secret_ref.as_ref()?;
    let keys = match present(&r.name, namespace, found) {
        Ok(keys) => keys,
        Err(problem) => return Some(problem),
    };
    let missing: Vec<String> = [(&r.user_key, "userKey"), (&r.password_key, "passwordKey")]
        .into_iter()
        .filter(|(k, _)| !keys.contains(*k))
        .map(|(k, field)| format!("{k:?} (spec.clickhouse.credentialsSecretRef.{field})"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "Secret {namespace}/{} has no key {}",
            r.name,
            missing.join(" and no key ")
        )
    })
}

fn present<'a>(
    name: &str,
    namespace: &str,
    found: &'a Found,
) -> std::result::Result<&'a BTreeSet<String>, String> {
    match found {
        Found::Keys(keys) => Ok(keys),
        Found::Missing => Err(format!(
            "Secret {namespace}/{name} not found: create it (kubectl -n {namespace} create secret generic {name} ...)"
        )),
        Found::Forbidden => Err(format!(
            "the operator may not read Secret {namespace}/{name}: add {namespace} to the chart's operator.collectorNamespaces"
        )),
    }
}

/// Look a Secret up; only its key names are kept.
async fn lookup(client: &Client, namespace: &str, name: &str) -> Result<Found> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(None) => Ok(Found::Missing),
        Ok(Some(secret)) => {
            let mut keys: BTreeSet<String> = secret.data.unwrap_or_default().into_keys().collect();
            keys.extend(secret.string_data.unwrap_or_default().into_keys());
            Ok(Found::Keys(keys))
        }
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(Found::Forbidden),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// Check every referenced Secret: the NATS keys to reference, or every problem found.
pub async fn check(
    client: &Client,
    namespace: &str,
    spec: &CollectorSetSpec,
) -> Result<std::result::Result<NatsAuth, Vec<String>>> {
    let mut problems = Vec::new();
    let mut auth = NatsAuth::default();
    if let Some(r) = &spec.nats.credentials_secret_ref {
        match nats_auth(spec, namespace, &lookup(client, namespace, &r.name).await?) {
            Ok(a) => auth = a,
            Err(p) => problems.push(p),
        }
    }
    let ch_ref = spec
        .clickhouse
        .as_ref()
        .and_then(|c| c.credentials_secret_ref.as_ref());
    if let Some(r) = ch_ref {
        let found = lookup(client, namespace, &r.name).await?;
        problems.extend(clickhouse_problem(spec, namespace, &found));
    }
    Ok(if problems.is_empty() {
        Ok(auth)
    } else {
        Err(problems)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Venue;
    use crate::fixtures::{exchange, spec, symbols};

    fn keys(k: &[&str]) -> Found {
        Found::Keys(k.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn nats_keys_decide_what_pods_reference() {
        let s = spec(vec![exchange(Venue::BinanceSpot, symbols(1))], 10);
        let up = nats_auth(&s, "m", &keys(&["user", "password", "token"])).unwrap();
        assert_eq!((up.user_password, up.token), (true, false));
        let token = nats_auth(&s, "m", &keys(&["token"])).unwrap();
        assert_eq!((token.user_password, token.token), (false, true));
        let half = nats_auth(&s, "m", &keys(&["user"])).unwrap_err();
        assert!(
            half.contains("Secret m/nats-creds has key \"user\" but not \"password\""),
            "{half}"
        );
        let none = nats_auth(&s, "m", &keys(&["other"])).unwrap_err();
        assert!(
            none.contains("neither keys \"user\"+\"password\" nor \"token\""),
            "{none}"
        );
        let missing = nats_auth(&s, "m", &Found::Missing).unwrap_err();
        assert!(
            missing.starts_with("Secret m/nats-creds not found"),
            "{missing}"
        );
        let forbidden = nats_auth(&s, "m", &Found::Forbidden).unwrap_err();
        assert!(
            forbidden.contains("operator.collectorNamespaces"),
            "{forbidden}"
        );
    }

    #[test]
    fn clickhouse_needs_both_keys() {
        let s = spec(vec![exchange(Venue::BinanceSpot, symbols(1))], 10);
        assert_eq!(
            clickhouse_problem(&s, "m", &keys(&["user", "password"])),
            None
        );
        let p = clickhouse_problem(&s, "m", &keys(&["user"])).unwrap();
        assert_eq!(
            p,
            "Secret m/ch-creds has no key \"password\" (spec.clickhouse.credentialsSecretRef.passwordKey)"
        );
    }
}
