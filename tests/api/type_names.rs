//! One name, one meaning: no type name (`struct`, `enum`, `trait`, `type`,
//! `union`) is declared at the top level of two files of `src/`, or twice in one,
//! so a reader who meets a name knows which thing it is. The one exception is
//! deliberate: `graphql::types::X` is the GraphQL view of `upstream::X` (see the
//! Vocabulary in `src/lib.rs`). Items inside test modules and functions (indented)
//! are local and not counted. Run alone with
//! `cargo test --locked --test api type_names`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Names declared in exactly these files on purpose: the GraphQL views of upstream types.
const VIEWS_OF_UPSTREAM_TYPES: [(&str, [&str; 2]); 3] = [
    ("Registration", ["graphql/types.rs", "upstream/model.rs"]),
    ("WorkflowError", ["graphql/types.rs", "upstream/model.rs"]),
    ("WorkflowState", ["graphql/types.rs", "upstream/model.rs"]),
];

/// Type name -> the files (relative to `src/`) declaring it, once per declaration.
type Declarations = BTreeMap<String, Vec<String>>;

#[test]
fn no_type_name_is_declared_twice_in_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut declarations = Declarations::new();
    for file in rust_files(&src) {
        let source = std::fs::read_to_string(&file).expect("a readable source file");
        let relative = file.strip_prefix(&src).expect("a file under src/");
        let relative = relative.to_string_lossy().replace('\\', "/");
        declare(&mut declarations, &relative, &source);
    }
    assert!(
        declarations.len() > 50,
        "too few type names found, is src/ readable? {declarations:?}"
    );
    assert_eq!(duplicates(&declarations), Vec::<String>::new());
}

#[test]
fn the_checker_finds_a_name_declared_twice_and_spares_the_views() {
    let mut declarations = Declarations::new();
    for (file, source) in [
        (
            "poller/feed.rs",
            "/// One event.\npub struct Delivery {\n}\n",
        ),
        (
            "graphql/fanout.rs",
            "pub trait Delivery: Send {}\nmod tests {\n    struct Local;\n}\n",
        ),
        ("graphql/types.rs", "pub(super) struct Registration(u8);"),
        (
            "upstream/model.rs",
            "pub struct Registration {}\nstruct Local;",
        ),
        ("a.rs", "pub(crate) enum Twice {}\ntype Twice = u8;"),
    ] {
        declare(&mut declarations, file, source);
    }
    assert_eq!(
        duplicates(&declarations),
        [
            "Delivery: graphql/fanout.rs, poller/feed.rs",
            "Twice: a.rs, a.rs",
        ]
    );
}

/// Records every top-level type declaration of `source` (the file `file`).
fn declare(declarations: &mut Declarations, file: &str, source: &str) {
    for line in source.lines() {
        if let Some(name) = declared_type(line) {
            declarations
                .entry(name.to_owned())
                .or_default()
                .push(file.to_owned());
        }
    }
}

/// The name a top-level line declares: `[pub[(..)] ]struct|enum|trait|type|union Name`.
fn declared_type(line: &str) -> Option<&str> {
    let rest = match line.strip_prefix("pub") {
        Some(rest) if rest.starts_with('(') => rest.split_once(") ")?.1,
        Some(rest) => rest.strip_prefix(' ')?,
        None => line,
    };
    let (keyword, rest) = rest.split_once(' ')?;
    if !["struct", "enum", "trait", "type", "union"].contains(&keyword) {
        return None;
    }
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|name| !name.is_empty())
}

/// `Name: file, file` for each name declared more than once, bar the allowed views.
fn duplicates(declarations: &Declarations) -> Vec<String> {
    let mut found = Vec::new();
    for (name, files) in declarations {
        let mut files: Vec<&str> = files.iter().map(String::as_str).collect();
        files.sort_unstable();
        let allowed = VIEWS_OF_UPSTREAM_TYPES
            .iter()
            .any(|(view, in_files)| view == name && files == in_files);
        if files.len() > 1 && !allowed {
            found.push(format!("{name}: {}", files.join(", ")));
        }
    }
    found
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
