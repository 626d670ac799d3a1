use super::*;
use crate::builders::{REPORT_COMPONENT, children};
use crate::crd::{ReportSpec, ReportThresholds, Venue};
use crate::fixtures::{collector_set, exchange, spec, symbols};
use crate::planner;

fn with_report(report: Option<ReportSpec>) -> crate::crd::CollectorSet {
    let mut s = spec(vec![exchange(Venue::BinanceDerivatives, symbols(3))], 10);
    s.report = report;
    collector_set("prod", s)
}

fn hourly() -> ReportSpec {
    ReportSpec {
        schedule: "5 * * * *".into(),
        window: "1h".into(),
        criteria: BTreeMap::from([(
            "trades".to_owned(),
            ReportThresholds {
                max_latency_p99_ms: Some(250.0),
                min_rows: Some(100),
                ..ReportThresholds::default()
            },
        )]),
    }
}

fn options() -> BuildOptions {
    BuildOptions {
        default_image: "marketprism/collector:1".into(),
        ..BuildOptions::default()
    }
}

#[test]
fn no_report_no_cron_job() {
    let set = with_report(None);
    let plan = planner::plan(&set.spec, &[]);
    let c = children(&set, &plan, &options()).unwrap();
    assert!(c.cron_jobs.is_empty());
    assert!(
        c.config_maps
            .iter()
            .all(|m| m.metadata.name.as_deref() != Some("prod-report"))
    );
}

#[test]
fn the_cron_job_runs_the_report_over_its_window_without_api_access() {
    let set = with_report(Some(hourly()));
    let plan = planner::plan(&set.spec, &[]);
    let c = children(&set, &plan, &options()).unwrap();
    assert_eq!(c.cron_jobs.len(), 1);
    let cj = &c.cron_jobs[0];
    assert_eq!(cj.metadata.name.as_deref(), Some("prod-report"));
    let labels = cj.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["app.kubernetes.io/component"], REPORT_COMPONENT);
    assert_eq!(labels["marketprism.io/collectorset"], "prod");
    let spec = cj.spec.as_ref().unwrap();
    assert_eq!(spec.schedule, "5 * * * *");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let job = spec.job_template.spec.as_ref().unwrap();
    assert_eq!(
        job.backoff_limit,
        Some(0),
        "a failing verdict is not retried"
    );
    // The Job's pods carry the selector the reconciler lists them by.
    let pod_labels = job
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(pod_labels["app.kubernetes.io/component"], REPORT_COMPONENT);
    let pod = job.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.service_account_name, None);
    let sc = pod.security_context.as_ref().unwrap();
    assert_eq!(sc.run_as_non_root, Some(true));
    let container = &pod.containers[0];
    assert_eq!(container.name, REPORT_CONTAINER);
    assert_eq!(container.image.as_deref(), Some("marketprism/collector:1"));
    let csc = container.security_context.as_ref().unwrap();
    assert_eq!(csc.read_only_root_filesystem, Some(true));
    let args = container.args.as_ref().unwrap().join(" ");
    assert!(
        args.starts_with("report --config /etc/marketprism/config.yaml --clickhouse --last 1h"),
        "{args}"
    );
    assert!(
        args.contains("--criteria /etc/marketprism/criteria.yaml"),
        "{args}"
    );
    assert!(args.contains("--summary /dev/termination-log"), "{args}");
    // Credentials only as Secret references, and only ClickHouse's.
    let env = container.env.as_ref().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "MARKETPRISM_CLICKHOUSE_USER",
            "MARKETPRISM_CLICKHOUSE_PASSWORD"
        ]
    );
    assert!(
        env.iter()
            .all(|e| e.value.is_none() && e.value_from.is_some())
    );
}

#[test]
fn the_config_map_holds_a_collector_config_and_the_criteria_file() {
    let set = with_report(Some(hourly()));
    let plan = planner::plan(&set.spec, &[]);
    let c = children(&set, &plan, &options()).unwrap();
    let cm = c
        .config_maps
        .iter()
        .find(|m| m.metadata.name.as_deref() == Some("prod-report"))
        .unwrap();
    let data = cm.data.as_ref().unwrap();
    // The collector's own parser takes the config, with the sink's ClickHouse section.
    let config = marketprism_config::Config::from_yaml(&data[CONFIG_KEY]).unwrap();
    config.validate().unwrap();
    // Every configured stream is listed, so the report judges one that wrote nothing.
    assert_eq!(config.exchanges.len(), 1);
    assert_eq!(config.exchanges[0].symbols.len(), 3);
    let ch = &config.sink.as_ref().unwrap().clickhouse;
    assert_eq!(
        (ch.url.as_str(), ch.hot_database.as_str()),
        ("http://clickhouse:8123", "marketprism_hot")
    );
    assert_eq!(ch.password, None, "credentials never rendered");
    let criteria: serde_yaml::Value = serde_yaml::from_str(&data[CRITERIA_KEY]).unwrap();
    assert_eq!(
        criteria["data_types"]["trades"]["max_latency_p99_ms"],
        serde_yaml::Value::from(250.0)
    );
    assert_eq!(
        criteria["data_types"]["trades"]["min_rows"],
        serde_yaml::Value::from(100)
    );
    assert!(
        criteria["data_types"]["trades"]
            .get("max_gap_ratio")
            .is_none(),
        "absent fields keep the default"
    );
}

#[test]
fn a_report_without_clickhouse_or_with_bad_fields_is_refused_naming_them() {
    let mut set = with_report(Some(hourly()));
    set.spec.clickhouse = None;
    let errors = crate::validate::validate(&set.spec);
    assert!(
        errors.iter().any(|e| e.field == "spec.report"),
        "{errors:?}"
    );
    let plan = planner::plan(&set.spec, &[]);
    assert!(
        children(&set, &plan, &options())
            .unwrap()
            .cron_jobs
            .is_empty()
    );

    let mut set = with_report(Some(hourly()));
    let report = set.spec.report.as_mut().unwrap();
    report.window = "0h".into();
    report.schedule = "hourly".into();
    report
        .criteria
        .insert("trade".into(), ReportThresholds::default());
    report
        .criteria
        .insert("gaps".into(), ReportThresholds::default());
    let fields: Vec<String> = crate::validate::validate(&set.spec)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "spec.report.schedule",
            "spec.report.window",
            "spec.report.criteria.gaps",
            "spec.report.criteria.trade"
        ]
    );
    set.spec.report.as_mut().unwrap().window = "15m".into();
    set.spec.report.as_mut().unwrap().schedule = "*/15 * * * *".into();
    set.spec.report.as_mut().unwrap().criteria.clear();
    assert_eq!(crate::validate::validate(&set.spec), []);
}
