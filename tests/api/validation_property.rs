//! A property test of the whole request path: documents generated from a GraphQL
//! grammar (operations, fragments used or not, spreads to known, unknown and
//! cyclic fragments, aliases, arguments, directives, variables, inline fragments,
//! and repetition of any of them, the way abuse is built) are POSTed to a real
//! gateway. Whatever the document, within `--body-limit` or not, the answer is
//! bounded: at most `MAX_ERRORS` errors, each with an `extensions.code`, a small
//! body, a bounded CPU cost and at most `--max-lookups` upstream calls. A test
//! binary of its own (see `[[test]]` in Cargo.toml), so the process CPU time it
//! reads is the gateway's and its client's.
//! The worst document found is printed (`--nocapture`) for BENCHMARKS.md.

// The suite's start-up code; this binary uses only some of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::cell::RefCell;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use registrar_gateway::graphql::MAX_ERRORS;
use serde_json::{Value, json};

/// The gateway's default `--body-limit`.
const BODY_LIMIT: usize = 64 * 1024;
/// The default `--max-lookups`.
const MAX_LOOKUPS: u64 = 100;
/// The largest answer: a hundred errors with their locations and codes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// CPU (not wall-clock) time one request may cost in a debug build: generous,
/// so a loaded machine never trips it, and far below what validation cost before
/// it was bounded (seconds for a few kilobytes).
const MAX_CPU: Duration = Duration::from_millis(1500);

const NAMES: [&str; 8] = [
    "__typename",
    "registrationStatus",
    "registrationStatuses",
    "state",
    "domainName",
    "q",
    "x",
    "a",
];
const ARGUMENTS: [&str; 5] = [
    "",
    r#"(domain: "demo-succeeded.com")"#,
    r#"(domains: ["demo-pending.com", "demo-failed.com"])"#,
    "(domain: $v)",
    "(domains: $d)",
];
const DIRECTIVES: [&str; 4] = ["", " @skip(if: false)", " @include(if: $b)", " @x"];
const TYPES: [&str; 3] = ["Query", "RegistrationStatus", "Subscription"];

/// One selection of the grammar.
#[derive(Clone, Debug)]
enum Selection {
    Field {
        alias: Option<usize>,
        name: usize,
        argument: usize,
        directive: usize,
        children: Vec<Selection>,
    },
    Spread(usize),
    Inline(usize, Vec<Selection>),
    /// The same selection `n` times: how conflicts, floods and bombs are built.
    Repeat(Box<Selection>, usize),
}

#[derive(Clone, Debug)]
struct Document {
    /// (is a subscription, with variables, copies, selections).
    operations: Vec<(bool, bool, usize, Vec<Selection>)>,
    /// (type condition, selections), named `F0`, `F1`...; spreads may name others.
    fragments: Vec<(usize, Vec<Selection>)>,
}

/// A field's (alias, name, argument, directive).
fn field() -> impl Strategy<Value = (Option<usize>, usize, usize, usize)> {
    (
        proptest::option::of(0..3_usize),
        0..NAMES.len(),
        0..ARGUMENTS.len(),
        0..DIRECTIVES.len(),
    )
}

fn selection() -> impl Strategy<Value = Selection> {
    let leaf = prop_oneof![
        4 => field().prop_map(|(alias, name, argument, directive)| Selection::Field {
            alias,
            name,
            argument,
            directive,
            children: Vec::new(),
        }),
        1 => (0..10_usize).prop_map(Selection::Spread),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let set = proptest::collection::vec(inner.clone(), 1..6);
        prop_oneof![
            3 => (field(), set.clone()).prop_map(|((alias, name, argument, directive), children)| {
                Selection::Field { alias, name, argument, directive, children }
            }),
            1 => (0..TYPES.len(), set).prop_map(|(on, set)| Selection::Inline(on, set)),
            2 => (inner, prop_oneof![Just(2_usize), 5..40_usize, Just(300)])
                .prop_map(|(selection, n)| Selection::Repeat(Box::new(selection), n)),
        ]
    })
}

fn document() -> impl Strategy<Value = Document> {
    let set = || proptest::collection::vec(selection(), 1..5);
    let copies = prop_oneof![4 => Just(1_usize), 1 => 2..400_usize];
    let operations = proptest::collection::vec((any::<bool>(), any::<bool>(), copies, set()), 1..3);
    let fragments = proptest::collection::vec((0..TYPES.len(), set()), 0..8);
    (operations, fragments).prop_map(|(operations, fragments)| Document {
        operations,
        fragments,
    })
}

fn render_set(set: &[Selection], out: &mut String) {
    out.push('{');
    for selection in set {
        render(selection, out);
        out.push(' ');
        if out.len() > 2 * BODY_LIMIT {
            break;
        }
    }
    out.push('}');
}

fn render(selection: &Selection, out: &mut String) {
    match selection {
        Selection::Field {
            alias,
            name,
            argument,
            directive,
            children,
        } => {
            if let Some(alias) = alias {
                out.push_str(&format!("a{alias}:"));
            }
            out.push_str(NAMES[*name]);
            out.push_str(ARGUMENTS[*argument]);
            out.push_str(DIRECTIVES[*directive]);
            if !children.is_empty() {
                render_set(children, out);
            }
        }
        Selection::Spread(n) => out.push_str(&format!("...F{n}")),
        Selection::Inline(on, set) => {
            out.push_str(&format!("... on {}", TYPES[*on]));
            render_set(set, out);
        }
        Selection::Repeat(selection, n) => {
            for _ in 0..*n {
                render(selection, out);
                out.push(' ');
                if out.len() > 2 * BODY_LIMIT {
                    break;
                }
            }
        }
    }
}

impl Document {
    fn text(&self) -> String {
        let mut out = String::new();
        let mut number = 0;
        for (subscription, variables, copies, set) in &self.operations {
            for _ in 0..*copies {
                let kind = if *subscription {
                    "subscription"
                } else {
                    "query"
                };
                out.push_str(&format!("{kind} o{number}"));
                if *variables {
                    out.push_str("($v: String! = \"demo-pending.com\", $d: [String!]! = [\"a.com\"], $b: Boolean = true)");
                }
                render_set(set, &mut out);
                out.push('\n');
                number += 1;
            }
        }
        for (n, (on, set)) in self.fragments.iter().enumerate() {
            out.push_str(&format!("fragment F{n} on {} ", TYPES[*on]));
            render_set(set, &mut out);
            out.push('\n');
        }
        out
    }
}

/// User plus system CPU time of this process so far (Linux `/proc/self/stat`).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    let after_name = &stat[stat.rfind(')').expect("a process name") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports CPU time in USER_HZ, 100 per second on every supported platform.
    Duration::from_millis(ticks * 10)
}

/// What one request cost and got.
struct Outcome {
    body_bytes: usize,
    cpu: Duration,
    answer_bytes: usize,
    status: u16,
    answer: Value,
}

#[test]
fn any_document_gets_a_bounded_answer_for_bounded_work() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(support::TestApp::builder().spawn());
    let worst: RefCell<Option<(Outcome, String)>> = RefCell::new(None);
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&document(), |document| {
        let query = document.text();
        let body = json!({ "query": query, "variables": { "v": "demo-pending.com" } }).to_string();
        let calls_before = app.upstream_calls();
        let cpu_before = process_cpu();
        let (status, answer_bytes, answer) = runtime.block_on(async {
            let response = app
                .http
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .header("accept", support::GRAPHQL_RESPONSE_JSON)
                .body(body.clone())
                .send()
                .await
                .expect("the gateway answers");
            let status = response.status().as_u16();
            let bytes = response.bytes().await.expect("a body");
            let answer: Value = serde_json::from_slice(&bytes).expect("a JSON answer");
            (status, bytes.len(), answer)
        });
        let outcome = Outcome {
            body_bytes: body.len(),
            cpu: process_cpu() - cpu_before,
            answer_bytes,
            status,
            answer,
        };
        let calls = app.upstream_calls() - calls_before;
        let errors = outcome.answer["errors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // 406: a subscription asked for as plain JSON (streams need SSE or multipart).
        prop_assert!(
            matches!(outcome.status, 200 | 400 | 406 | 413),
            "status {}",
            outcome.status
        );
        prop_assert!(errors.len() <= MAX_ERRORS, "{} errors", errors.len());
        for error in &errors {
            prop_assert!(error["extensions"]["code"].is_string(), "no code: {error}");
        }
        prop_assert!(
            outcome.answer_bytes <= MAX_ANSWER_BYTES,
            "{} bytes",
            outcome.answer_bytes
        );
        prop_assert!(outcome.cpu <= MAX_CPU, "{:?} of CPU", outcome.cpu);
        prop_assert!(calls <= MAX_LOOKUPS, "{calls} upstream calls");
        let mut worst = worst.borrow_mut();
        let is_worse = worst.as_ref().is_none_or(|(known, _)| {
            (outcome.cpu, outcome.answer_bytes) > (known.cpu, known.answer_bytes)
        });
        if outcome.body_bytes <= BODY_LIMIT && is_worse {
            *worst = Some((outcome, query));
        }
        Ok(())
    });
    if let Some((outcome, query)) = &*worst.borrow() {
        let code = &outcome.answer["errors"][0]["extensions"]["code"];
        println!(
            "worst document: {} bytes, {:?} of CPU, {} byte answer (HTTP {}, {code}); first 300 bytes: {:.300}",
            outcome.body_bytes, outcome.cpu, outcome.answer_bytes, outcome.status, query
        );
    }
    result.unwrap();
}
