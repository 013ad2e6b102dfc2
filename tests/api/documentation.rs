//! The documentation a newcomer reads stays true to the code and to itself: every
//! setting is documented in `docs/settings.md`, every relative link and `#anchor` in
//! `README.md`, `BENCHMARKS.md`, `CHANGELOG.md` and `docs/*.md` leads somewhere, and the README stays
//! a first read. Run alone with `cargo test --locked --test api documentation`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Most lines the README may have: past it, what it says belongs in `docs/`.
const README_MAX_LINES: usize = 300;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_settings_page_documents_every_gateway_setting() {
    use clap::CommandFactory;
    let settings = std::fs::read_to_string(root().join("docs/settings.md")).unwrap();
    let command = registrar_gateway::cli::Cli::command();
    for arg in command.get_arguments() {
        let Some(long) = arg
            .get_long()
            .filter(|long| !["help", "version"].contains(long))
        else {
            continue;
        };
        assert!(
            settings.contains(&format!("`--{long}`")),
            "docs/settings.md does not document --{long}"
        );
        if let Some(env) = arg.get_env() {
            let env = env.to_str().unwrap();
            assert!(
                settings.contains(&format!("`{env}`")),
                "docs/settings.md does not document {env}"
            );
        }
    }
}

#[test]
fn the_readme_stays_a_first_read() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move sections into docs/"
    );
}

#[test]
fn every_relative_link_and_anchor_in_the_documentation_resolves() {
    let mut pages: Vec<PathBuf> = [
        "README.md",
        "BENCHMARKS.md",
        "CHANGELOG.md",
        "examples/README.md",
    ]
    .map(|page| root().join(page))
    .into();
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    in_docs.sort();
    assert!(in_docs.len() >= 9, "too few pages in docs/: {in_docs:?}");
    pages.extend(in_docs);

    let mut anchors: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for target in links(&text) {
            if let Err(why) = resolve(page, &target, &mut anchors) {
                let page = page.strip_prefix(root()).unwrap().display();
                broken.push(format!("{page}: ({target}) {why}"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_reader_finds_links_and_slugs_headings_like_github() {
    let text = "# The `watch` command: exit codes\n\
                See [a](docs/a.md#x-y) and ![b](b.png), `[not](a-link.md)`.\n\
                ```sh\n# not a heading [nor](a-link.md)\n```\n\
                ## Again\n## Again\n";
    assert_eq!(links(text), ["docs/a.md#x-y", "b.png"]);
    let slugs = headings(text);
    assert!(slugs.contains("the-watch-command-exit-codes"), "{slugs:?}");
    assert!(
        slugs.contains("again") && slugs.contains("again-1"),
        "{slugs:?}"
    );
    assert!(!slugs.contains("not-a-heading-nor"), "{slugs:?}");
}

/// Checks one link target of `page`: relative paths must exist, and a `#fragment`
/// must name a heading of the Markdown page it points into.
fn resolve(
    page: &Path,
    target: &str,
    anchors: &mut BTreeMap<PathBuf, BTreeSet<String>>,
) -> Result<(), String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return Ok(());
    }
    let (path, fragment) = match target.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        page.to_path_buf()
    } else {
        page.parent().unwrap().join(path)
    };
    if !file.exists() {
        return Err("no such file".into());
    }
    let Some(fragment) = fragment else {
        return Ok(());
    };
    if file.extension().is_none_or(|ext| ext != "md") {
        return Err("an anchor into a file that is not Markdown".into());
    }
    let file = file.canonicalize().unwrap();
    let slugs = anchors
        .entry(file.clone())
        .or_insert_with(|| headings(&std::fs::read_to_string(&file).unwrap()));
    if slugs.contains(fragment) {
        Ok(())
    } else {
        Err(format!("no heading with the anchor #{fragment}"))
    }
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// `line` without its inline code spans (whose brackets are not links).
fn without_code(line: &str) -> String {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The targets of the inline links and images of `text`: what follows `](`.
fn links(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            let target = rest[..end].split_whitespace().next().unwrap_or_default();
            targets.push(target.trim_matches(['<', '>']).to_owned());
            rest = &rest[end..];
        }
    }
    targets
}

/// The anchors GitHub gives the headings of `text`: lower case, punctuation other
/// than `-` and `_` dropped, spaces as `-`, a repeated anchor numbered `-1`, `-2`.
fn headings(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut slugs = BTreeSet::new();
    for line in prose(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = link_texts(title.trim())
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        slugs.insert(match *count {
            0 => slug,
            n => format!("{slug}-{n}"),
        });
        *count += 1;
    }
    slugs
}

/// `title` with each `[text](target)` replaced by its text, as GitHub slugs it.
fn link_texts(title: &str) -> String {
    let mut out = String::new();
    let mut rest = title;
    while let Some(start) = rest.find("](") {
        out.push_str(&rest[..start]);
        rest = &rest[start + 2..];
        rest = &rest[rest.find(')').map_or(rest.len(), |end| end + 1)..];
    }
    out.push_str(rest);
    out
}
