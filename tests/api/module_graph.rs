//! The layering holds at every level: inside each folder of a crate's `src/` (the
//! crate root included), no module imports a sibling that imports it back, directly
//! or through others. A folder's modules are its files and subfolders (`mod.rs` is
//! the folder itself, not one of them); a file depends on a sibling when it names a
//! path into it (`super::x`, `crate::a::x`, `use super::{x::Y, ..}` groups), or names
//! an item the folder's `mod.rs` imports from it (`super::Y` after `pub use x::Y`).
//! Comments are not read, nor test modules (from `#[cfg(test)]` on: their `super`
//! is the file itself). Run alone with `cargo test --locked --test api module_graph`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One folder's modules -> the sibling modules each one imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// A module's path from its crate root (`["graphql", "fanout"]`).
type ModulePath = Vec<String>;

/// The crates whose folders are checked: the gateway and the simulator.
const CRATE_ROOTS: [&str; 2] = ["src", "simulator/src"];

#[test]
fn no_module_imports_a_sibling_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut folders = 0;
    let mut cycles = Vec::new();
    for crate_root in CRATE_ROOTS.map(|dir| root.join(dir)) {
        assert!(
            crate_root.is_dir(),
            "{} is not readable",
            crate_root.display()
        );
        let sources = read_crate(&crate_root);
        for (folder, graph) in folder_graphs(&sources) {
            folders += 1;
            if let Some(cycle) = find_cycle(&graph) {
                let folder = crate_root.join(folder.join("/"));
                let folder = folder.strip_prefix(root).unwrap_or(&folder).display();
                cycles.push(format!("{folder}: {}", cycle.join(" -> ")));
            }
        }
    }
    assert!(folders > 10, "too few folders found, is src/ readable?");
    assert_eq!(cycles, Vec::<String>::new(), "import cycles");
}

#[test]
fn the_checker_finds_a_cycle_through_a_use_group() {
    let sources = sources([
        ("a.rs", "use crate::{b::Thing, c};"),
        ("b.rs", "fn f() { crate::c::g() }"),
        ("c.rs", "use crate::{\n    x::{self, Y},\n    a::Z,\n};"),
        ("x.rs", ""),
    ]);
    let graphs = folder_graphs(&sources);
    let top = &graphs[&Vec::new()];
    assert_eq!(top["c"], ["a", "x"].map(str::to_owned).into());
    assert_eq!(
        find_cycle(top).map(|cycle| cycle.join(" -> ")),
        Some("a -> b -> c -> a".to_owned())
    );
}

#[test]
fn the_checker_finds_a_cycle_between_files_of_a_folder() {
    let sources = sources([
        (
            "graphql/mod.rs",
            "mod fanout;\nmod share;\npub use fanout::{Hold, Other};\nuse crate::poller::X;",
        ),
        ("graphql/fanout.rs", "use super::subscription::Place;\n"),
        (
            "graphql/subscription.rs",
            "// super::fanout in a comment is not an import\nuse super::share::pay;",
        ),
        (
            "graphql/share.rs",
            "use super::Hold;\n#[cfg(test)]\nmod tests { use super::super::query; }",
        ),
        (
            "graphql/compiled/plan.rs",
            "use super::super::query::Q;\nuse crate::graphql::types::T;",
        ),
        ("graphql/query.rs", "use super::compiled::Plan;"),
        ("graphql/types.rs", ""),
        ("poller/mod.rs", "use crate::graphql::Hold;"),
    ]);
    let graphs = folder_graphs(&sources);
    let graphql = &graphs[&vec!["graphql".to_owned()]];
    assert_eq!(graphql["share"], ["fanout"].map(str::to_owned).into());
    assert_eq!(
        graphql["compiled"],
        ["query", "types"].map(str::to_owned).into()
    );
    assert_eq!(
        find_cycle(graphql).map(|cycle| cycle.join(" -> ")),
        Some("compiled -> query -> compiled".to_owned())
    );
    let without_query: Graph = graphql
        .iter()
        .filter(|(module, _)| *module != "query")
        .map(|(module, imports)| (module.clone(), imports.clone()))
        .collect();
    assert_eq!(
        find_cycle(&without_query).map(|cycle| cycle.join(" -> ")),
        Some("fanout -> subscription -> share -> fanout".to_owned())
    );
    // Across folders the edge counts at the top: poller imports graphql (and the
    // item it names is graphql's, not a sibling of poller).
    assert_eq!(
        graphs[&Vec::new()]["poller"],
        ["graphql"].map(str::to_owned).into()
    );
}

/// Made-up files (path under `src/` -> text) for the checker's own tests.
fn sources<const N: usize>(files: [(&str, &str); N]) -> BTreeMap<ModulePath, String> {
    files
        .into_iter()
        .map(|(file, text)| (module_path(Path::new(file)), text.to_owned()))
        .collect()
}

/// Every module of the crate rooted at `crate_root` -> its source (the crate root
/// itself is the empty path; a binary's `main.rs` is another crate and left out).
fn read_crate(crate_root: &Path) -> BTreeMap<ModulePath, String> {
    rust_files(crate_root)
        .into_iter()
        .filter(|file| {
            file.strip_prefix(crate_root)
                .is_ok_and(|f| f != Path::new("main.rs"))
        })
        .map(|file| {
            let source = std::fs::read_to_string(&file).expect("a readable source file");
            let relative = file.strip_prefix(crate_root).expect("a file of the crate");
            (module_path(relative), source)
        })
        .collect()
}

/// `graphql/fanout.rs` is `["graphql", "fanout"]`; `graphql/mod.rs` and `lib.rs` are
/// their folder's module.
fn module_path(relative: &Path) -> ModulePath {
    let mut path: ModulePath = relative
        .with_extension("")
        .iter()
        .map(|segment| segment.to_string_lossy().into_owned())
        .collect();
    if path
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        path.pop();
    }
    path
}

/// For every folder (a module with children), the import graph of its children.
fn folder_graphs(sources: &BTreeMap<ModulePath, String>) -> BTreeMap<ModulePath, Graph> {
    let mut children: BTreeMap<ModulePath, BTreeSet<String>> = BTreeMap::new();
    for module in sources.keys().filter(|module| !module.is_empty()) {
        for depth in 0..module.len() {
            children
                .entry(module[..depth].to_vec())
                .or_default()
                .insert(module[depth].clone());
        }
    }
    let reexports: BTreeMap<&ModulePath, BTreeMap<String, String>> = children
        .iter()
        .map(|(folder, kids)| {
            let source = sources.get(folder).map_or("", String::as_str);
            (folder, imported_names(source, kids))
        })
        .collect();
    let mut graphs = BTreeMap::new();
    for (folder, kids) in &children {
        let mut graph: Graph = kids
            .iter()
            .map(|kid| (kid.clone(), BTreeSet::new()))
            .collect();
        for (module, source) in sources {
            let Some(kid) = module
                .strip_prefix(folder.as_slice())
                .and_then(|rest| rest.first())
            else {
                continue;
            };
            for path in absolute_paths(module, source) {
                let Some(named) = path
                    .strip_prefix(folder.as_slice())
                    .and_then(|rest| rest.first())
                else {
                    continue;
                };
                let sibling = match reexports[folder].get(named) {
                    Some(source_kid) => source_kid,
                    None if kids.contains(named) => named,
                    None => continue,
                };
                if sibling != kid {
                    graph
                        .entry(kid.clone())
                        .or_default()
                        .insert(sibling.clone());
                }
            }
        }
        graphs.insert(folder.clone(), graph);
    }
    graphs
}

/// Names a folder's own file imports from its children (`use x::{A, B as C}`:
/// `A -> x`, `C -> x`): a sibling naming `super::A` depends on `x`.
fn imported_names(source: &str, kids: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in code(source).lines() {
        let line = line.trim_start();
        let Some(at) = line.find("use ") else {
            continue;
        };
        if !(at == 0 || line.starts_with("pub")) {
            continue;
        }
        for path in expand(&line[at + "use ".len()..]) {
            let path: Vec<&str> = path
                .iter()
                .map(String::as_str)
                .skip_while(|s| *s == "self")
                .collect();
            if let ([kid, .., _], Some(name)) = (path.as_slice(), path.last())
                && kids.contains(*kid)
            {
                let name = name.strip_prefix("as ").unwrap_or(name);
                names.insert(name.to_owned(), (*kid).to_owned());
            }
        }
    }
    names
}

/// Every `crate::..` and `super::..` path `module`'s code names, from its crate root.
fn absolute_paths(module: &ModulePath, source: &str) -> Vec<ModulePath> {
    let code = code(source);
    let mut paths = Vec::new();
    for (at, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
            continue;
        }
        let is_crate = code[at..].starts_with("crate::");
        for relative in expand(&code[at..]) {
            let mut path = if is_crate { Vec::new() } else { module.clone() };
            for segment in relative {
                match segment.as_str() {
                    "crate" => {}
                    "super" => {
                        path.pop();
                    }
                    "self" | "*" => {}
                    alias if alias.starts_with("as ") => {}
                    _ => path.push(segment),
                }
            }
            paths.push(path);
        }
    }
    paths
}

/// `source` without comments and without its test module.
fn code(source: &str) -> String {
    let end = source
        .match_indices("#[cfg(test)]")
        .find(|(at, attribute)| {
            source[at + attribute.len()..]
                .trim_start()
                .starts_with("mod ")
        })
        .map_or(source.len(), |(at, _)| at);
    source[..end]
        .lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a path expression at the start of `text` names, its groups expanded:
/// `a::{b::C, d}` -> `[a, b, C]`, `[a, d]`.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let name = identifier(rest);
        if name.is_empty() {
            break;
        }
        prefix.push(name.to_owned());
        rest = &rest[name.len()..];
        let Some(after) = rest.strip_prefix("::") else {
            break;
        };
        rest = after;
        if let Some(group) = rest.strip_prefix('{') {
            return group_items(group)
                .into_iter()
                .flat_map(expand)
                .map(|tail| prefix.iter().cloned().chain(tail).collect())
                .collect();
        }
        if rest.starts_with('*') {
            prefix.push("*".to_owned());
            break;
        }
    }
    if let Some(alias) = rest.trim_start().strip_prefix("as ") {
        prefix.push(format!("as {}", identifier(alias.trim_start())));
    }
    vec![prefix]
}

/// The top-level items of a `{..}` group, up to its closing brace.
fn group_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (at, character) in group.char_indices() {
        match character {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return match path.extension() {
            Some(ext) if ext == "rs" => vec![path.to_owned()],
            _ => Vec::new(),
        };
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).expect("a readable directory") {
        files.extend(rust_files(&entry.expect("a directory entry").path()));
    }
    files
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
