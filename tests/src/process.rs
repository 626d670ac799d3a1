//! The real binaries, for tests that run them as processes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The collector binary: `MARKETPRISM_TEST_COLLECTOR_BIN`, else the one in this target directory when it is
/// newer than every collector source (as after `cargo test --workspace`), else built now.
pub fn collector_bin() -> PathBuf {
    if let Ok(path) = std::env::var("MARKETPRISM_TEST_COLLECTOR_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<this test> → target/<profile>/marketprism-collector
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = profile_dir.join("marketprism-collector");
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../collector");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    if built.is_some_and(|b| newest_mtime(&sources) <= b) {
        return bin;
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "-p",
            "marketprism-collector",
            "--bin",
            "marketprism-collector",
        ])
        .arg("--target-dir")
        .arg(profile_dir.parent().unwrap())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building marketprism-collector failed");
    bin
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(newest)
        };
        newest = newest.max(t);
    }
    newest
}
