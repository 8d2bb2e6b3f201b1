//! Fixtures shared by the integration tests.
#![allow(dead_code)]

pub mod fake_api;
pub mod http_get;
pub mod nginx;
pub mod process;
pub mod reachability;
pub mod stub_api_server;
pub mod test_was;

use std::path::{Path, PathBuf};

use webtoon_operator::api::{ValidatedStack, WebtoonStack};
use webtoon_operator::manifest::{parse_stacks, validated};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file in `examples/` ending in `.yaml`, sorted.
pub fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "examples/ holds the three documented examples"
    );
    files
}

/// The stacks of one manifest file.
pub fn stacks_in(path: &Path) -> Vec<WebtoonStack> {
    let text = std::fs::read_to_string(path).expect("example is readable");
    parse_stacks(&path.display().to_string(), &text).expect("example parses")
}

/// A validated stack from inline YAML.
pub fn stack_from_yaml(yaml: &str) -> ValidatedStack {
    let stacks = parse_stacks("inline", yaml).expect("fixture parses");
    validated(&stacks[0]).expect("fixture is valid")
}

/// A fresh temporary directory under the target directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `target/test-tmp/<name>-<pid>`.
    pub fn new(name: &str) -> Self {
        let dir = root()
            .join("target/test-tmp")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
