//! The dependency rules of ARCHITECTURE.md, read from the source: the store's modules
//! depend one way (no import cycle), its pure and Redis layers know no domain module,
//! and the session side reaches the store only through `service`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file's code outside its unit tests and comments.
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    let body = text.split("#[cfg(test)]").next().unwrap_or_default();
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level store modules each one names, by module: `crate::store::<m>`, or the
/// store reached through as many `super::` as the file is deep (`super::<m>` from
/// `store/x.rs` or `store/x/mod.rs`, `super::super::<m>` from `store/x/y.rs`, …).
fn store_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "mod" {
            continue; // the store itself: it wires every module
        }
        let deps = graph.entry(module.clone()).or_default();
        let code = code(&f);
        let levels = rel.components().count() - usize::from(rel.ends_with("mod.rs"));
        let up = "super::".repeat(levels);
        let found = ["crate::store::", up.as_str()]
            .into_iter()
            .flat_map(|s| code.match_indices(s).map(move |(i, _)| (i, i + s.len())));
        for (at, start) in found {
            // Part of a longer `super::` chain: a module above the store.
            if code[..at].ends_with("super::") {
                continue;
            }
            let name: String = code[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let is_module = root.join(format!("{name}.rs")).exists() || root.join(&name).is_dir();
            if is_module && name != module {
                deps.insert(name);
            }
        }
    }
    graph
}

#[test]
fn store_modules_have_no_import_cycle() {
    let graph = store_graph();
    assert!(
        graph.contains_key("submit") && graph.contains_key("receipts"),
        "{graph:?}"
    );
    // Depth-first search; a module met again on the current path closes a cycle.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|p| *p == m) {
            panic!("import cycle: {} -> {m}", path[at..].join(" -> "));
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn store_layers_below_the_domain_modules_know_none_of_them() {
    let graph = store_graph();
    let domain = ["submit", "expiry", "outcomes", "receipts", "ops", "limits"];
    for lower in ["model", "redis", "settings", "error"] {
        let deps = &graph[lower];
        let wrong: Vec<_> = deps
            .iter()
            .filter(|d| domain.contains(&d.as_str()))
            .collect();
        assert!(wrong.is_empty(), "store::{lower} depends on {wrong:?}");
    }
    assert!(
        !graph["model"].contains("redis"),
        "store::model does I/O through store::redis"
    );
}

#[test]
fn sessions_reach_the_store_only_through_service() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/session");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for f in files {
        assert!(
            !code(&f).contains("crate::store"),
            "{} imports the store",
            f.display()
        );
    }
}

#[test]
fn the_stores_background_tasks_take_narrow_handles_not_the_store() {
    // They borrow what they use (`Finisher`, `Releaser`, `HandOver`, `Claimer`,
    // `Subscriber`, the receipt workers' `Env`, `Renewal`); the store's shared `Inner`
    // would let them reach every other feature.
    // Every file of the modules that run them, so that a new one is covered too.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut files = vec![root.join("limits.rs")];
    for dir in ["expiry", "outcomes", "receipts"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "{files:?}");
    for f in files {
        let names_inner = code(&f)
            .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .any(|w| w == "Inner");
        assert!(!names_inner, "{} names the store's Inner", f.display());
    }
}
