//! The one rule every job kind applies to `--parquet`: the **dataset root** is the directory that
//! holds the `date=YYYY-MM-DD` partitions, exactly the Parquet output's `dir`
//! (`<dir>/date=…/exchange=…/data_type=…/part-….parquet`). A path inside a dataset
//! (`data/demo/date=2026-11-30`) or above one (`data/` holding `demo/date=…`) is refused with a
//! message naming the root it should be, instead of planning nothing. The root is canonicalized, so
//! `--parquet x/`, `--parquet x` and `--parquet ./x` are the same job (the same default work
//! directory).

use super::{Error, Result, io_error};
use std::path::{Path, PathBuf};

/// The path components of the layout below the root.
const LAYOUT: [&str; 3] = ["date=", "exchange=", "data_type="];

fn is_layout(name: &str) -> bool {
    LAYOUT.iter().any(|p| name.starts_with(p))
}

/// Whether `dir` holds a `date=…` directory.
fn holds_partitions(dir: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        if entry.file_name().to_string_lossy().starts_with("date=")
            && entry.file_type().is_ok_and(|t| t.is_dir())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Directories below `dir` (at most `depth` levels, hidden ones skipped) that hold `date=…`
/// partitions, sorted.
fn roots_below(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        if holds_partitions(&sub).unwrap_or(false) {
            out.push(sub);
        } else {
            roots_below(&sub, depth - 1, out);
        }
    }
}

/// `path` as a dataset root (see the module): canonical, an existing directory holding `date=…`
/// partitions. The error names `path` and, for a path inside or above a dataset, the root expected.
pub fn dataset_root(path: &Path) -> Result<PathBuf> {
    let root = std::fs::canonicalize(path).map_err(io_error("open the Parquet dataset", path))?;
    if !root.is_dir() {
        return Err(Error::Other(format!(
            "--parquet {}: not a directory; the dataset root is the directory holding the date=YYYY-MM-DD partitions",
            path.display()
        )));
    }
    let parts: Vec<&std::ffi::OsStr> = root.iter().collect();
    if let Some(i) = parts.iter().position(|c| is_layout(&c.to_string_lossy())) {
        let expected: PathBuf = parts[..i].iter().collect();
        return Err(Error::Other(format!(
            "--parquet {}: inside a dataset; the dataset root is the directory holding the date=YYYY-MM-DD partitions: expected {}",
            path.display(),
            expected.display()
        )));
    }
    if holds_partitions(&root)? {
        return Ok(root);
    }
    let mut below = Vec::new();
    roots_below(&root, 3, &mut below);
    Err(Error::Other(match below.as_slice() {
        [] => format!(
            "--parquet {}: no date=YYYY-MM-DD partition in it (an empty or wrong dataset directory); the dataset root is the directory holding them",
            path.display()
        ),
        [one, ..] => format!(
            "--parquet {}: above the dataset root; the dataset root is the directory holding the date=YYYY-MM-DD partitions: expected {}{}",
            path.display(),
            one.display(),
            if below.len() > 1 {
                format!(" (or one of {} others)", below.len() - 1)
            } else {
                String::new()
            }
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_holds_the_date_partitions_and_other_paths_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let root = base.join("data/demo");
        let leaf = root.join("date=2026-11-30/exchange=okx_spot/data_type=trades");
        std::fs::create_dir_all(&leaf).unwrap();
        assert_eq!(dataset_root(&root).unwrap(), root);
        // `x/` and `x/./` are the same root.
        let slash = PathBuf::from(format!("{}/", root.display()));
        assert_eq!(dataset_root(&slash).unwrap(), root);
        assert_eq!(dataset_root(&root.join(".")).unwrap(), root);
        for inside in [root.join("date=2026-11-30"), leaf.clone()] {
            let e = dataset_root(&inside).unwrap_err().to_string();
            assert!(e.contains(&inside.display().to_string()), "{e}");
            assert!(e.contains(&format!("expected {}", root.display())), "{e}");
        }
        let above = base.join("data");
        let e = dataset_root(&above).unwrap_err().to_string();
        assert!(e.contains("above the dataset root"), "{e}");
        assert!(e.contains(&format!("expected {}", root.display())), "{e}");
        let empty = base.join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = dataset_root(&empty).unwrap_err().to_string();
        assert!(e.contains("no date=") && e.contains("empty"), "{e}");
        let missing = base.join("missing");
        let e = dataset_root(&missing).unwrap_err().to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
    }
}
