//! What async-graphql's validation will do with a document, bounded before it runs.
//!
//! Validation visits the whole document, fragments no operation uses included, and
//! some of its rules do more than one step per byte: `OverlappingFieldsCanBeMerged`
//! expands the spreads of every selection set (one error per conflicting field, no
//! cap), the complexity and depth visitors expand every operation's spreads inline,
//! and the variable rules walk the fragment graph once per operation. A 3.3 KB
//! document of unused fragments cost 4.7 s of CPU and a 17.6 MB answer before this
//! bound. [`validation_work`] counts those steps in one linear, memoised pass, and
//! [`cap_errors`] keeps an answer to at most [`MAX_ERRORS`] errors, as graphql-js
//! does, each message cut to [`MAX_MESSAGE`] bytes: async-graphql's messages quote
//! the input (an unknown field, an operation name), so a 60 KB name would otherwise
//! come back whole.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Name, Response, ServerError};

/// Most errors one answer carries (graphql-js stops validating at 100).
pub const MAX_ERRORS: usize = 100;
/// Longest error message, in bytes; longer ones are cut and end in `…`.
pub(super) const MAX_MESSAGE: usize = 512;

/// Validation work a document may cost per unit of `--max-complexity`: a document
/// within the complexity limit, without reused fragments, costs about 3 per field.
pub(super) const WORK_PER_COMPLEXITY: u64 = 10;

/// The steps validation takes on `document`, saturating: the selections every
/// selection set holds once its spreads are flattened (what the overlap rule
/// compares), the selections of every operation with its spreads expanded (what the
/// complexity and depth visitors walk), and operations times spreads (the
/// per-operation walks of the fragment graph).
pub(super) fn validation_work(document: &ExecutableDocument) -> u64 {
    let mut counter = Counter {
        document,
        flat: HashMap::new(),
        expanded: HashMap::new(),
    };
    let operations: Vec<&SelectionSet> = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .collect();
    let fragments = document
        .fragments
        .values()
        .map(|fragment| &fragment.node.selection_set.node);
    let mut spreads = 0_u64;
    let mut work = 0_u64;
    for set in operations.iter().copied().chain(fragments) {
        work = work.saturating_add(counter.overlap(set, &mut spreads));
    }
    for set in &operations {
        work = work.saturating_add(counter.expanded(set));
    }
    let fragment_graph = spreads.saturating_add(document.fragments.len() as u64);
    work.saturating_add((operations.len() as u64).saturating_mul(fragment_graph))
}

/// `extensions.code` of a document that does not parse.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// `extensions.code` of async-graphql's validation errors (they come without one).
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// The answer with at most [`MAX_ERRORS`] errors, the last one saying the rest
/// were dropped, each message at most [`MAX_MESSAGE`] bytes; a request error
/// (nothing ran) without a code gets [`VALIDATION_FAILED`].
pub(super) fn cap_errors(mut response: Response) -> Response {
    if response.errors.len() > MAX_ERRORS {
        response.errors.truncate(MAX_ERRORS - 1);
        response.errors.push(ServerError::new(
            format!("too many errors; the first {} are shown", MAX_ERRORS - 1),
            None,
        ));
    }
    response.errors.iter_mut().for_each(cut_message);
    if super::is_request_error(&response) {
        for error in &mut response.errors {
            with_code(error, VALIDATION_FAILED);
        }
    }
    response
}

/// Cuts `error`'s message to [`MAX_MESSAGE`] bytes, ending it in `…`.
pub(super) fn cut_message(error: &mut ServerError) {
    if error.message.len() > MAX_MESSAGE {
        // The last char boundary at or before the cut (the MSRV lacks floor_char_boundary).
        let mut end = MAX_MESSAGE - '…'.len_utf8();
        while !error.message.is_char_boundary(end) {
            end -= 1;
        }
        error.message.truncate(end);
        error.message.push('…');
    }
}

/// Gives `error` the `extensions.code` `code` unless it has one.
pub fn with_code(error: &mut ServerError, code: &str) {
    let extensions = error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
}

/// Per-fragment counts, memoised. A fragment being counted is entered as 0 first,
/// so a cycle ends (cycles are refused by the operation limits and by validation).
struct Counter<'a> {
    document: &'a ExecutableDocument,
    /// A fragment's top-level selections with its own spreads flattened.
    flat: HashMap<&'a Name, u64>,
    /// A fragment's selections at every level with every spread expanded.
    expanded: HashMap<&'a Name, u64>,
}

impl<'a> Counter<'a> {
    /// The overlap rule's work on `set` and on every selection set nested in it
    /// (fields' and inline fragments', not spread fragments': those are counted as
    /// definitions); counts the spreads met on the way.
    fn overlap(&mut self, set: &'a SelectionSet, spreads: &mut u64) -> u64 {
        let mut work = self.flat(set);
        for selection in &set.items {
            let nested = match &selection.node {
                Selection::Field(field) => &field.node.selection_set.node,
                Selection::InlineFragment(inline) => &inline.node.selection_set.node,
                Selection::FragmentSpread(_) => {
                    *spreads = spreads.saturating_add(1);
                    continue;
                }
            };
            work = work.saturating_add(self.overlap(nested, spreads));
        }
        work
    }

    /// `set`'s top-level selections with spreads (and inline fragments) flattened.
    fn flat(&mut self, set: &'a SelectionSet) -> u64 {
        set.items.iter().fold(0_u64, |total, selection| {
            let inner = match &selection.node {
                Selection::Field(_) => 0,
                Selection::InlineFragment(inline) => self.flat(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node, Self::flat, |c| &mut c.flat)
                }
            };
            total.saturating_add(1).saturating_add(inner)
        })
    }

    /// `set`'s selections at every level, every spread expanded.
    fn expanded(&mut self, set: &'a SelectionSet) -> u64 {
        set.items.iter().fold(0_u64, |total, selection| {
            let inner = match &selection.node {
                Selection::Field(field) => self.expanded(&field.node.selection_set.node),
                Selection::InlineFragment(inline) => self.expanded(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    self.fragment(name, Self::expanded, |c| &mut c.expanded)
                }
            };
            total.saturating_add(1).saturating_add(inner)
        })
    }

    /// A fragment's count by `count`, memoised in the map `memo` picks; 0 for an
    /// unknown fragment (validation reports it).
    fn fragment(
        &mut self,
        name: &'a Name,
        count: fn(&mut Self, &'a SelectionSet) -> u64,
        memo: fn(&mut Self) -> &mut HashMap<&'a Name, u64>,
    ) -> u64 {
        if let Some(known) = memo(self).get(name) {
            return *known;
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        memo(self).insert(name, 0);
        let value = count(self, &fragment.node.selection_set.node);
        memo(self).insert(name, value);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(query: &str) -> u64 {
        validation_work(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn plain_operations_cost_about_two_steps_per_selection() {
        // overlap: {a b} 2 + {c} 1; expanded: 3; no fragments.
        assert_eq!(work("{ a { c } b }"), 6);
    }

    #[test]
    fn unused_fragments_and_their_spreads_are_counted() {
        let small = work(
            "{ __typename } fragment B on Query { a:x a:y } fragment X on Query { q { ...B } }",
        );
        let wide = work(&format!(
            "{{ __typename }} fragment B on Query {{ a:x {} }} fragment X on Query {{ {} }}",
            "a:y ".repeat(400),
            "q{...B} ".repeat(200)
        ));
        assert!(small < 20, "{small}");
        assert!(
            wide > 200 * 400,
            "the overlap rule compares 200 x 401 fields: {wide}"
        );
    }

    #[test]
    fn doubling_spreads_saturate_instead_of_overflowing() {
        let mut query = String::from("{ ...F0 }");
        for n in 0..80 {
            query.push_str(&format!(
                " fragment F{n} on T {{ ...F{m} ...F{m} }}",
                m = n + 1
            ));
        }
        query.push_str(" fragment F80 on T { ...Missing }");
        assert_eq!(work(&query), u64::MAX);
    }

    #[test]
    fn many_operations_times_spreads_are_counted() {
        let operations: String = (0..100)
            .map(|n| format!("query q{n} {{ ...F }} "))
            .collect();
        let query = format!("{operations} fragment F on Query {{ a }}");
        assert!(work(&query) > 100 * 100, "{}", work(&query));
    }

    #[test]
    fn answers_keep_at_most_a_hundred_errors() {
        let errors = (0..5000)
            .map(|n| ServerError::new(format!("error {n}"), None))
            .collect();
        let capped = cap_errors(Response::from_errors(errors));
        assert_eq!(capped.errors.len(), MAX_ERRORS);
        assert!(capped.errors[99].message.contains("too many errors"));
        let code = capped.errors[0].extensions.as_ref().unwrap().get("code");
        assert_eq!(code, Some(&async_graphql::Value::from(VALIDATION_FAILED)));
    }
}
