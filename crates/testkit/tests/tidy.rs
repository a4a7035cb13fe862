//! Tidy checks of the whole workspace, run by `cargo test`: the crate layering of
//! ARCHITECTURE.md, which crates may name which libraries, and file conventions.
//! A rule broken here is a design decision made silently; change the rule (and
//! ARCHITECTURE.md) on purpose instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Each crate and the workspace crates it may depend on (normal or build dependencies).
const LAYERS: &[(&str, &[&str])] = &[
    ("ocpay-core", &[]),
    ("ocpay-protocol", &[]),
    ("ocpay-store", &["ocpay-core"]),
    ("ocpay-settlement", &["ocpay-core", "ocpay-store"]),
    ("ocpay-server", &["ocpay-core", "ocpay-protocol", "ocpay-store", "ocpay-settlement"]),
    ("ocpay-sdk", &["ocpay-protocol"]),
    (
        "ocpay-cli",
        &[
            "ocpay-core",
            "ocpay-protocol",
            "ocpay-store",
            "ocpay-settlement",
            "ocpay-server",
            "ocpay-sdk",
            "ocpay-sftp",
            "ocpay-web",
        ],
    ),
    (
        "ocpay-testkit",
        &["ocpay-core", "ocpay-protocol", "ocpay-store", "ocpay-server", "ocpay-sdk", "ocpay-web"],
    ),
    ("ocpay-sftp", &["ocpay-core", "ocpay-store", "ocpay-settlement", "ocpay-server"]),
    ("ocpay-web", &["ocpay-core", "ocpay-protocol", "ocpay-store", "ocpay-settlement", "ocpay-server"]),
    // The fuzz targets reach the parsers of every crate that reads untrusted input.
    ("ocpay-fuzz", &["ocpay-core", "ocpay-protocol", "ocpay-settlement", "ocpay-server", "ocpay-sftp"]),
];

/// Libraries only some crates may name: SQL lives in the store; serving HTTP is the server's,
/// and the tools' that receive notifications (`ocpay listen`, the testkit's receiver).
const OWNED_LIBRARIES: &[(&str, &[&str])] = &[
    ("rusqlite", &["ocpay-store"]),
    ("sqlx", &["ocpay-store"]),
    ("postgres", &["ocpay-store"]),
    ("axum", &["ocpay-server", "ocpay-web", "ocpay-cli", "ocpay-testkit"]),
    ("hyper", &["ocpay-server"]),
    ("hyper-util", &["ocpay-server"]),
    // Crates record metrics through the `metrics` facade; only the server exports them.
    ("metrics-exporter-prometheus", &["ocpay-server"]),
    // SSH is the SFTP server's alone: the server crate must not carry it.
    ("russh", &["ocpay-sftp"]),
    ("russh-sftp", &["ocpay-sftp"]),
];

/// Libraries the pure crates must never name: no I/O, no async, no serialization in core.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "ocpay-core",
        &["tokio", "serde", "serde_json", "rusqlite", "sqlx", "postgres", "axum", "reqwest", "hyper"],
    ),
    ("ocpay-protocol", &["tokio", "rusqlite", "sqlx", "postgres", "axum", "reqwest", "hyper"]),
    ("ocpay-sdk", &["rusqlite", "sqlx", "postgres", "axum", "hyper"]),
];

struct Package {
    name: String,
    /// (dependency name, kind) with kind "normal", "dev" or "build".
    dependencies: Vec<(String, String)>,
    root: PathBuf,
}

fn workspace() -> Vec<Package> {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| Package {
            name: package["name"].as_str().unwrap().to_owned(),
            dependencies: package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|dependency| {
                    let kind = dependency["kind"].as_str().unwrap_or("normal").to_owned();
                    (dependency["name"].as_str().unwrap().to_owned(), kind)
                })
                .collect(),
            root: Path::new(package["manifest_path"].as_str().unwrap()).parent().unwrap().to_owned(),
        })
        .collect()
}

#[test]
fn crates_depend_only_downwards() {
    let layers: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let packages = workspace();
    assert_eq!(packages.len(), LAYERS.len(), "every workspace crate has a layer in LAYERS");
    for package in &packages {
        let allowed =
            layers.get(package.name.as_str()).unwrap_or_else(|| panic!("{} has no layer", package.name));
        for (dependency, kind) in &package.dependencies {
            if !dependency.starts_with("ocpay-") || kind == "dev" {
                continue;
            }
            assert!(
                allowed.contains(&dependency.as_str()),
                "{} must not depend on {dependency}",
                package.name
            );
        }
    }
}

#[test]
fn the_testkit_is_only_a_dev_dependency() {
    for package in workspace() {
        for (dependency, kind) in &package.dependencies {
            if dependency == "ocpay-testkit" {
                assert_eq!(kind, "dev", "{} depends on the testkit outside its tests", package.name);
            }
        }
    }
}

#[test]
fn libraries_stay_in_their_crate() {
    for package in workspace() {
        for (dependency, kind) in &package.dependencies {
            if kind == "dev" {
                continue;
            }
            for (library, owners) in OWNED_LIBRARIES {
                if dependency == library {
                    assert!(
                        owners.contains(&package.name.as_str()),
                        "only {owners:?} may depend on {library}"
                    );
                }
            }
            for (crate_name, forbidden) in FORBIDDEN {
                if &package.name == crate_name {
                    assert!(
                        !forbidden.contains(&dependency.as_str()),
                        "{crate_name} must not depend on {dependency}"
                    );
                }
            }
        }
    }
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_file_says_what_it_is_for_and_sql_stays_literal() {
    let mut files = Vec::new();
    for package in workspace() {
        rust_files(&package.root, &mut files);
    }
    assert!(files.len() > 20, "found the sources");
    let sql = ["SELECT ", "INSERT ", "UPDATE ", "DELETE "];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a //! comment saying what it is for",
            file.display()
        );
        // SQL is literal text with bound parameters; text spliced into it is an injection
        // waiting to happen.
        for (number, line) in text.lines().enumerate() {
            let builds_sql =
                line.contains(concat!("format", "!(")) && sql.iter().any(|keyword| line.contains(keyword));
            assert!(!builds_sql, "{}:{} formats SQL text", file.display(), number + 1);
        }
    }
}

/// The only reasons a test may be ignored, each with what its name must contain, so that
/// `scripts/test` can run the ones whose prerequisite this machine has by that word.
const PREREQUISITES: &[(&str, &str)] = &[
    ("needs PostgreSQL: scripts/test runs it", "postgres"),
    ("needs Chromium: scripts/test runs it", "chromium"),
    ("needs the official Python SDK: scripts/test runs it", "python_sdk"),
    ("needs OpenSSH's sftp client: scripts/test runs it", "openssh"),
    ("needs a host name that resolves only to loopback: scripts/test runs it", "loopback_name"),
];

#[test]
fn tests_are_ignored_only_for_a_prerequisite_named_in_them() {
    let mut files = Vec::new();
    for package in workspace() {
        rust_files(&package.root, &mut files);
    }
    let mut ignored = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (number, line) in lines.iter().enumerate() {
            let Some(reason) = line.trim().strip_prefix("#[ignore") else { continue };
            let place = format!("{}:{}", file.display(), number + 1);
            let reason = reason.trim_start_matches([' ', '=']).trim_end_matches(']').trim_matches('"');
            let Some((_, word)) = PREREQUISITES.iter().find(|(known, _)| *known == reason) else {
                panic!("{place}: a test is ignored only for a prerequisite of {PREREQUISITES:?}");
            };
            let function = lines[number..].iter().find(|line| line.contains("fn ")).expect("the test");
            assert!(function.contains(word), "{place}: the test's name must contain {word:?}: {function}");
            ignored += 1;
        }
    }
    assert!(ignored > 10, "found the ignored tests");
}
