//! `parquet check` of the real binary: a clean dataset passes (exit 0) with its counts; damaged files and
//! crash leftovers are listed, each with what to do (exit 1); a missing directory is named (exit 2).

use marketprism_model::synthetic::synthetic_events;
use marketprism_tests::jobs::{data_files, rows_per_table, write_dataset};
use marketprism_tests::process::collector_bin;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn check(root: &Path, json: bool) -> Output {
    let mut cmd = Command::new(collector_bin());
    cmd.args(["parquet", "check", "--dir"])
        .arg(root)
        .stdin(Stdio::null());
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_dataset_passes_and_damage_and_leftovers_are_listed_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let events = synthetic_events(7, 600);
    let per_table = rows_per_table(&events);
    write_dataset(root, events, 50).await;
    let files = data_files(root);

    let out = check(root, true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let clean = report(&out);
    assert_eq!(clean["total"]["rows"], 600, "{clean}");
    assert_eq!(clean["total"]["files"], files.len(), "{clean}");
    for (data_type, rows) in &per_table {
        assert_eq!(
            clean["per_data_type"][data_type.as_str()]["rows"],
            *rows,
            "{clean}"
        );
    }
    let text = check(root, false);
    assert_eq!(text.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&text.stdout).contains("clean"));

    // A file cut short (as a kill during a copy leaves it), a non-Parquet file, and leftovers.
    let part_dir = files[0].parent().unwrap().to_path_buf();
    let bytes = std::fs::read(&files[0]).unwrap();
    let truncated = part_dir.join("part-cut-0000000000.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = part_dir.join("part-garbage-0000000000.parquet");
    std::fs::write(&garbage, b"<html>not parquet</html>").unwrap();
    let temp = part_dir.join(".part-r-0000000099.parquet.tmp");
    std::fs::write(&temp, &bytes[..100]).unwrap();
    let intent = part_dir.join(".compaction-20260101T00-00.intent");
    std::fs::write(&intent, b"{}").unwrap();

    let out = check(root, true);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = report(&out);
    assert_eq!(r["total"]["rows"], 600, "the good files still counted: {r}");
    let damaged = r["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 2, "{r}");
    let find = |path: &Path| {
        damaged
            .iter()
            .find(|d| d["path"] == path.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not listed: {r}", path.display()))
            .clone()
    };
    let cut = find(&truncated);
    assert_eq!(cut["damage"], "truncated", "{cut}");
    let advice = cut["advice"].as_str().unwrap();
    assert!(
        advice.contains("mv '") && advice.contains("never acknowledged"),
        "{advice}"
    );
    assert!(advice.contains(truncated.to_str().unwrap()), "{advice}");
    assert_eq!(find(&garbage)["damage"], "not_parquet");
    let leftovers = r["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 2, "{r}");
    let kinds: Vec<&str> = leftovers
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["intent", "flush_temp"], "{r}");
    assert!(
        leftovers[0]["advice"]
            .as_str()
            .unwrap()
            .contains("parquet compact --dir"),
        "{r}"
    );
    assert!(
        leftovers[1]["advice"]
            .as_str()
            .unwrap()
            .contains("safe to delete"),
        "{r}"
    );

    // The text form lists each with its advice too.
    let text = check(root, false);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    for p in [&truncated, &garbage, &temp, &intent] {
        assert!(
            text.contains(p.to_str().unwrap()),
            "{} missing from:\n{text}",
            p.display()
        );
    }
    assert!(text.contains("2 damaged data files"), "{text}");
}

#[test]
fn a_missing_directory_cannot_be_checked_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dataset");
    let out = check(&missing, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    let out = Command::new(collector_bin())
        .args(["parquet", "compact", "--dir"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(missing.to_str().unwrap()));
}
