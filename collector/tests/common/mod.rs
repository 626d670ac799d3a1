//! Shared helpers for the exchange tests: recorded fixtures copied from /work/shared/fixtures/recorded.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The messages of a fixture: one per line for `.jsonl`, the whole file for `.json`.
pub fn fixture_lines(rel: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    if rel.ends_with(".jsonl") {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        vec![text.trim().to_owned()]
    }
}

pub fn fixture(rel: &str) -> String {
    fixture_lines(rel).remove(0)
}

/// Every fixture file under a venue folder (relative paths), sorted.
pub fn fixtures_under(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let root = fixture_path("");
    let mut stack = vec![fixture_path(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
                out.push(
                    p.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}
