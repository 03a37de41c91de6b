//! The shape of the repository, checked: crates depend only on lower tiers,
//! the lower tiers build without DataFusion, no module imports form a
//! circle inside a crate, no crate holds more than 35% of the source lines,
//! and every module opens with a `//!` purpose line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates by tier, lowest first: a crate may depend on crates of
/// lower tiers only.
const TIERS: [&[&str]; 7] = [
    &["scheduler", "files"],
    &["tpch", "shuffle", "observe"],
    &["planner"],
    &["engine"],
    &["features", "connect"],
    &["benches", "conformance"],
    &["cli"],
];

/// Crates that must build without DataFusion (nor Ballista).
const WITHOUT_DATAFUSION: [&str; 4] = ["scheduler", "observe", "files", "tpch"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tier_of(name: &str) -> usize {
    TIERS
        .iter()
        .position(|t| t.contains(&name))
        .unwrap_or_else(|| panic!("crate {name} is in no tier of this test"))
}

/// The folder of a `fairway-*` package.
fn folder_of(package: &str) -> String {
    match package {
        "fairway" => "cli".to_string(),
        p => p
            .strip_prefix("fairway-")
            .expect("a fairway package")
            .to_string(),
    }
}

/// The dependency names of one `[section]` of a Cargo.toml.
fn dependencies(manifest: &str, section: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
            continue;
        }
        if inside && let Some((name, _)) = line.split_once('=') {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                names.push(name.to_string());
            }
        }
    }
    names
}

fn crates() -> Vec<String> {
    let root = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let members = root
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    members
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn crates_depend_only_on_lower_tiers() {
    let crates = crates();
    assert!(crates.len() >= 10, "{crates:?}");
    for name in &crates {
        let manifest = std::fs::read_to_string(workspace().join(name).join("Cargo.toml")).unwrap();
        for section in ["dependencies", "dev-dependencies"] {
            for dep in dependencies(&manifest, section) {
                if !dep.starts_with("fairway") {
                    continue;
                }
                let dep = folder_of(&dep);
                let allowed = tier_of(&dep) < tier_of(name);
                assert!(
                    allowed,
                    "{name} ({section}) depends on {dep}, which is not in a lower tier"
                );
            }
        }
    }
}

#[test]
fn the_lower_tiers_build_without_datafusion() {
    for name in WITHOUT_DATAFUSION {
        let manifest = std::fs::read_to_string(workspace().join(name).join("Cargo.toml")).unwrap();
        for dep in dependencies(&manifest, "dependencies") {
            assert!(
                !dep.starts_with("datafusion") && !dep.starts_with("ballista"),
                "{name} depends on {dep}"
            );
            if dep.starts_with("fairway") {
                assert!(
                    WITHOUT_DATAFUSION.contains(&folder_of(&dep).as_str()),
                    "{name} depends on {dep}, which may bring DataFusion"
                );
            }
        }
    }
}

/// The modules of a crate (`a`, `a::b`) and the crate modules each one's
/// code (outside comments and its tests) names as `crate::x` or `super::x`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut texts = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.first().is_some_and(|p| p == "bin") {
            continue;
        }
        if parts
            .last()
            .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
        {
            parts.pop();
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        texts.insert(parts.join("::"), code);
    }
    let names: BTreeSet<String> = texts.keys().filter(|k| !k.is_empty()).cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, code) in &texts {
        let mut deps = BTreeSet::new();
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p).to_string();
        for (prefix, base) in [("crate::", String::new()), ("super::", parent)] {
            for (i, _) in code.match_indices(prefix) {
                let path: String = code[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
                for k in (1..=segments.len()).rev() {
                    let name = segments[..k].join("::");
                    let candidate = if base.is_empty() {
                        name
                    } else {
                        format!("{base}::{name}")
                    };
                    if names.contains(&candidate) {
                        deps.insert(candidate);
                        break;
                    }
                }
            }
        }
        deps.retain(|d| d != module && !d.starts_with(&format!("{module}::")));
        graph.insert(module.clone(), deps);
    }
    graph
}

/// A circle of modules, if there is one (depth-first search).
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_circle_finder_finds_circles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_circle(&graph(&[("a", "b"), ("b", "c")])), None);
    let circle = find_circle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])).unwrap();
    assert_eq!(circle.first(), circle.last());
    assert_eq!(circle.len(), 4, "{circle:?}");
}

#[test]
fn no_module_imports_form_a_circle() {
    for name in crates() {
        let graph = module_graph(&workspace().join(&name).join("src"));
        assert!(
            graph.len() > 1 || name == "files" || name == "tpch",
            "{name}: {graph:?}"
        );
        if let Some(circle) = find_circle(&graph) {
            panic!(
                "{name}: modules import each other in a circle: {}",
                circle.join(" -> ")
            );
        }
    }
}

#[test]
fn no_crate_holds_more_than_35_percent_of_the_source_lines() {
    let mut lines = BTreeMap::new();
    for name in crates() {
        let mut files = Vec::new();
        rust_files(&workspace().join(&name), &mut files);
        let count: usize = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
            .sum();
        lines.insert(name, count);
    }
    let total: usize = lines.values().sum();
    for (name, count) in &lines {
        let share = 100.0 * *count as f64 / total as f64;
        assert!(
            share <= 35.0,
            "{name} holds {share:.1}% of {total} lines: {lines:?}"
        );
    }
}

#[test]
fn every_module_opens_with_a_purpose_line() {
    for name in crates() {
        let mut files = Vec::new();
        rust_files(&workspace().join(&name).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                text.trim_start().starts_with("//!"),
                "{} does not open with a //! line",
                file.display()
            );
        }
    }
}
