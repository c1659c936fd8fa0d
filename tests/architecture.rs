//! Keeps docs/ARCHITECTURE.md true: its dependency table must list exactly the
//! `danas-*` normal dependencies of every crate's `Cargo.toml`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `danas-*` entries of a manifest's `[dependencies]` table.
fn manifest_deps(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().filter(|k| k.starts_with("danas-")).cloned().collect())
        .unwrap_or_default()
}

fn actual() -> Graph {
    let mut g = Graph::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        g.insert(name, manifest_deps(&dir.join("Cargo.toml")));
    }
    g.insert("xtask".into(), manifest_deps(&root().join("xtask/Cargo.toml")));
    g
}

/// Rows `| \`crate\` | \`dep\`, \`dep\` |` of the table after "depends on".
fn documented() -> Graph {
    let text = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let start = text.find("| crate | depends on |").expect("the dependency table");
    let mut g = Graph::new();
    for line in text[start..].lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let names = |cell: &str| -> BTreeSet<String> {
            cell.split(',').map(|n| n.trim().trim_matches('`').to_string()).filter(|n| !n.is_empty()).collect()
        };
        let krate = cells[0].trim_matches('`').to_string();
        g.insert(krate, names(cells.get(1).copied().unwrap_or("")));
    }
    g
}

#[test]
fn the_documented_dependency_graph_is_the_real_one() {
    assert_eq!(documented(), actual(), "docs/ARCHITECTURE.md's dependency table differs from the Cargo.toml files");
}

#[test]
fn only_the_trainer_depends_on_the_deep_learning_library() {
    let g = actual();
    for (krate, deps) in &g {
        let text = std::fs::read_to_string(if krate == "xtask" {
            root().join("xtask/Cargo.toml")
        } else {
            root().join("crates").join(krate).join("Cargo.toml")
        })
        .unwrap();
        let doc: toml::Table = text.parse().unwrap();
        let burn = doc.get("dependencies").and_then(|d| d.as_table()).is_some_and(|t| t.contains_key("burn"));
        assert_eq!(burn, krate == "danas-train", "{krate} depends on burn: {burn}");
        assert!(!deps.contains(krate), "{krate} depends on itself");
    }
}
