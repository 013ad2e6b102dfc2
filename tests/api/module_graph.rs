//! The layering holds: no top-level module of the library imports a module that
//! imports it back, directly or through others. Reads `src/` and collects every
//! `crate::X` path (including `use crate::{X, Y::..}` groups) per top-level module,
//! then looks for a cycle in that graph. Run alone with
//! `cargo test --locked --test api module_graph`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        graph.len() > 5,
        "too few modules found, is src/ readable? {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_checker_finds_a_cycle_through_a_use_group() {
    let mut graph = Graph::new();
    for (from, source) in [
        ("a", "use crate::{b::Thing, c};"),
        ("b", "fn f() { crate::c::g() }"),
        ("c", "use crate::{\n    x::{self, Y},\n    a::Z,\n};"),
    ] {
        graph.insert(from.to_owned(), imported_modules(source));
    }
    assert_eq!(graph["c"], ["a", "x"].map(str::to_owned).into());
    assert_eq!(
        find_cycle(&graph).map(|cycle| cycle.join(" -> ")),
        Some("a -> b -> c -> a".to_owned())
    );
}

/// Top-level module (file stem or folder name under `src/`) -> modules it names.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(src).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        let Some(name) = module_name(&path) else {
            continue;
        };
        let mut imports = BTreeSet::new();
        for file in rust_files(&path) {
            let source = std::fs::read_to_string(&file).expect("a readable source file");
            imports.extend(imported_modules(&source));
        }
        imports.remove(&name);
        graph.insert(name, imports);
    }
    graph
}

/// `src/x.rs` or `src/x/` is module `x`; the crate roots are not modules.
fn module_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?.to_owned();
    let is_module = path.is_dir() || path.extension().is_some_and(|ext| ext == "rs");
    (is_module && !["lib", "main", "bin"].contains(&stem.as_str())).then_some(stem)
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).expect("a readable directory") {
        files.extend(rust_files(&entry.expect("a directory entry").path()));
    }
    files
}

/// The first segment after every `crate::`, and each first segment of a
/// `crate::{..}` group.
fn imported_modules(source: &str) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for (at, _) in source.match_indices("crate::") {
        let rest = &source[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            modules.extend(group_heads(group));
        } else {
            modules.insert(identifier(rest).to_owned());
        }
    }
    modules.remove("");
    modules
}

/// The first identifier of each item of a `{..}` group, up to its closing brace.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (at, character) in group.char_indices() {
        match character {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && (c.is_alphanumeric() || c == '_') => {
                heads.push(identifier(&group[at..]).to_owned());
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// A path `a -> .. -> a` if the graph has one (depth-first, in name order).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit<'a>(
        graph: &'a Graph,
        node: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| *seen == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(graph, node, &mut Vec::new(), &mut done))
}
