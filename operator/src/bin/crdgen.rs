//! `crdgen`: print the CollectorSet CRD, or with `--write` write it and the RBAC files into the repo.
//!
//! `cargo run -p marketprism-operator --bin crdgen -- --write` from anywhere in the workspace.
use anyhow::Context;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let crd = marketprism_operator::crd::crd_yaml();
    if std::env::args().nth(1).as_deref() != Some("--write") {
        print!("{crd}");
        return Ok(());
    }
    // The workspace root is the operator crate's parent.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // The chart ships its own copy (Helm installs `crds/` of the chart); a chart test compares them.
    let mut files = vec![
        ("crds/collectorset.yaml", crd.clone()),
        ("charts/marketprism/crds/collectorset.yaml", crd),
    ];
    files.extend(marketprism_operator::rbac::rbac_files());
    for (path, text) in files {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
