//! Operation limits, checked after parsing and before validation or any resolver,
//! each answered with its own `extensions.code` and a message naming the limit:
//! introspection (`INTROSPECTION_DISABLED`), depth of fields and fragment spreads
//! (`OPERATION_TOO_DEEP`), field count (`OPERATION_TOO_COMPLEX`), root fields
//! including aliases (`TOO_MANY_ROOT_FIELDS`) and upstream lookups
//! (`TOO_MANY_LOOKUPS`: one per `registrationStatus`, one per domain of
//! `registrationStatuses`, and for a federation subgraph one per representation of
//! `_entities` times the `registrationStatus` fields it selects, at least one: a
//! federated gateway sends the representations as a variable, counted here
//! before any entity resolves).
//!
//! async-graphql's own `limit_depth`/`limit_complexity` answer without a code, and
//! its pre-validation recursion check walks fragments without memoisation (a
//! "fragment bomb" of doubling spreads costs 2^n). So this runs first, before the
//! schema sees the request ([`OperationLimits::verdict`], called by the
//! [`super::GatewaySchema`] wrapper on each parsed document, not as an async-graphql extension: any
//! extension sends every field of every response through async-graphql's slow
//! resolution path): a bracket-nesting scan of the raw text bounds the
//! parser's recursion, then one memoised walk per operation measures everything,
//! fragment cycles included, stopping as soon as it is too deep (its recursion
//! never goes past the limits). Every operation in the document is measured, the
//! selected one or not: an abusive document is refused whole. Introspection
//! (`__schema`, `__type`) has bounds of its own instead of the depth limit (see
//! [`introspection`]).

mod introspection;

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{Name, ServerResult, Value, Variables};

use super::GraphqlError;
use super::validation::{WORK_PER_COMPLEXITY, validation_work};

/// Deepest bracket nesting (`{`, `(`, `[`) a document may have, and the schema's
/// recursion limit: far above any useful operation, low enough for the parser.
pub const MAX_NESTING: usize = 64;

/// Root fields that each cost upstream lookups: `registrationStatus` and
/// `startRegistration` one, and `registrationStatuses` one per entry of its
/// `domains` argument.
const SINGLE_LOOKUP: &str = "registrationStatus";
const START: &str = "startRegistration";
const LIST_LOOKUP: &str = "registrationStatuses";
const LIST_ARGUMENT: &str = "domains";
/// The federation root field that resolves a batch of entities, and its list.
const ENTITIES: &str = "_entities";
const ENTITIES_ARGUMENT: &str = "representations";

/// The limits, as configured.
#[derive(Clone, Copy, Debug)]
pub struct OperationLimits {
    /// Deepest nesting of fields and fragment spreads (`{ a { b } }` is 2, and so
    /// is `{ ...F } fragment F on Query { a }`).
    pub max_depth: usize,
    /// Most fields in an operation, counted after expanding fragments.
    pub max_complexity: u64,
    /// Most root fields (aliases count each) in an operation.
    pub max_root_fields: u64,
    /// Most upstream lookups one operation may cause.
    pub max_lookups: u64,
    /// Whether `__schema` and `__type` may be queried.
    pub introspection: bool,
}

impl OperationLimits {
    /// The limits' verdict on `document`: a request error naming the broken limit.
    pub(super) fn verdict(
        &self,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> ServerResult<()> {
        self.check(document, variables)
            .map_err(GraphqlError::server_error)
    }
}

/// Refuses a document whose brackets nest deeper than [`MAX_NESTING`], before it
/// is parsed (the parser recurses per level, and its own limit's error echoes the
/// whole document). Transports that parse documents themselves call this first.
pub fn check_nesting(query: &str) -> ServerResult<()> {
    match bracket_nesting_over(query, MAX_NESTING) {
        None => Ok(()),
        Some(nesting) => Err(GraphqlError::TooDeep(format!(
            "the document nests brackets deeper than {} (the limit is {MAX_NESTING})",
            nesting - 1
        ))
        .server_error()),
    }
}

impl OperationLimits {
    /// Measures every operation of `document` against the limits.
    pub fn check(
        &self,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> Result<(), GraphqlError> {
        let mut walker = Walker {
            document,
            variables,
            defaults: variable_defaults(document),
            max_depth: self.max_depth,
            fragments: HashMap::new(),
            depth: 0,
            nesting: 0,
            introspecting: false,
            introspection_fragments: HashMap::new(),
        };
        for (_, operation) in document.operations.iter() {
            let measure = walker.measure(&operation.node.selection_set.node)?;
            self.compare(&measure)?;
        }
        self.check_unused_fragments(&mut walker)?;
        self.check_validation_work(document)
    }

    /// Fragments no operation spreads are still validated: each must be within the
    /// depth and complexity limits on its own, as if it were spread at the root.
    /// (This also bounds every chain of spreads, so the count of validation work
    /// recurses no deeper than the limits.)
    fn check_unused_fragments<'a>(&self, walker: &mut Walker<'a>) -> Result<(), GraphqlError> {
        for name in walker.document.fragments.keys() {
            // Measured where an operation spreads it (introspection's own bounds included).
            if walker.fragments.contains_key(name)
                || walker.introspection_fragments.contains_key(name)
            {
                continue;
            }
            let measure = walker.nested(true, |walker| walker.fragment(name))?;
            self.compare(&Measure {
                root_fields: 0,
                lookups: 0,
                ..measure
            })?;
        }
        Ok(())
    }

    /// The steps async-graphql's validation will take, within
    /// [`WORK_PER_COMPLEXITY`] per unit of `--max-complexity`.
    fn check_validation_work(&self, document: &ExecutableDocument) -> Result<(), GraphqlError> {
        let work = validation_work(document);
        let limit = self.max_complexity.saturating_mul(WORK_PER_COMPLEXITY);
        if work > limit {
            return Err(GraphqlError::TooComplex(format!(
                "validating the document (every fragment, used or not, expanded where it is spread) takes {work} steps; the limit is {limit} ({WORK_PER_COMPLEXITY} x --max-complexity)"
            )));
        }
        Ok(())
    }

    fn compare(&self, measure: &Measure) -> Result<(), GraphqlError> {
        if measure.introspection && !self.introspection {
            return Err(GraphqlError::IntrospectionDisabled);
        }
        introspection::check_root_fields(measure)?;
        if measure.depth > self.max_depth {
            return Err(too_deep(measure.depth, self.max_depth));
        }
        if measure.nesting >= MAX_NESTING {
            return Err(too_nested(measure.nesting));
        }
        let over = |value: u64, limit: u64| (value > limit).then_some((value, limit));
        if let Some((value, limit)) = over(measure.root_fields, self.max_root_fields) {
            return Err(GraphqlError::TooManyRootFields(format!(
                "the operation has {value} root fields (aliases count); the limit is {limit} (--max-root-fields)"
            )));
        }
        if let Some((value, limit)) = over(measure.lookups, self.max_lookups) {
            return Err(GraphqlError::TooManyLookups(format!(
                "the operation asks for {value} registration statuses; the limit is {limit} (--max-lookups)"
            )));
        }
        if let Some((value, limit)) = over(measure.complexity, self.max_complexity) {
            return Err(GraphqlError::TooComplex(format!(
                "the operation selects {value} fields; the limit is {limit} (--max-complexity)"
            )));
        }
        Ok(())
    }
}

/// An operation deeper than `--max-depth`, counting fields and fragment spreads.
fn too_deep(depth: impl std::fmt::Display, limit: usize) -> GraphqlError {
    GraphqlError::TooDeep(format!(
        "the operation is {depth} fields and fragment spreads deep; the limit is {limit} (--max-depth)"
    ))
}

/// An operation nesting selection sets (fragments included) as deep as [`MAX_NESTING`].
fn too_nested(nesting: usize) -> GraphqlError {
    GraphqlError::TooDeep(format!(
        "the operation nests {nesting} selection sets through fragments; the limit is {MAX_NESTING}"
    ))
}

/// What one selection set costs. `root_fields`, `lookups` and `introspection`
/// describe the set's own fields; they matter only for an operation's root.
#[derive(Clone, Copy, Debug, Default)]
struct Measure {
    depth: usize,
    nesting: usize,
    complexity: u64,
    root_fields: u64,
    lookups: u64,
    introspection: bool,
    /// Introspection root fields (aliases each).
    introspection_roots: u64,
    /// Nested introspection lists that lead back to types (see [`introspection`]).
    type_lists: usize,
}

impl Measure {
    /// Adds a sibling selection's measure.
    fn merge(&mut self, other: Measure) {
        self.depth = self.depth.max(other.depth);
        self.nesting = self.nesting.max(other.nesting);
        self.complexity = self.complexity.saturating_add(other.complexity);
        self.root_fields = self.root_fields.saturating_add(other.root_fields);
        self.lookups = self.lookups.saturating_add(other.lookups);
        self.introspection |= other.introspection;
        self.introspection_roots = self
            .introspection_roots
            .saturating_add(other.introspection_roots);
        self.type_lists = self.type_lists.max(other.type_lists);
    }
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// What a variable the request does not set executes with: see [`variable_defaults`].
    defaults: HashMap<&'a str, &'a Value>,
    max_depth: usize,
    /// Fragments measured so far; `None` while one is being measured (a cycle).
    fragments: HashMap<&'a Name, Option<Measure>>,
    /// Where the walk is: the depth (fields and fragment spreads) and the nesting
    /// (selection sets) of the selection being measured. Checked before every step
    /// down, so the walk's recursion is bounded by the limits whatever the document:
    /// a chain of spreads nests one bracket deep but recurses once per spread.
    depth: usize,
    nesting: usize,
    /// Inside an introspection root field, which has its own bounds; the
    /// fragments measured there are kept apart from the others.
    introspecting: bool,
    introspection_fragments: HashMap<&'a Name, Option<Measure>>,
}

impl<'a> Walker<'a> {
    fn measure(&mut self, set: &'a SelectionSet) -> Result<Measure, GraphqlError> {
        let mut total = Measure::default();
        for selection in &set.items {
            let measure = match &selection.node {
                Selection::Field(field) => self.nested(true, |walker| walker.field(&field.node))?,
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    self.nested(true, |walker| walker.fragment(name))?
                }
                Selection::InlineFragment(inline) => {
                    let set = &inline.node.selection_set.node;
                    self.nested(false, |walker| walker.measure(set))?
                }
            };
            total.merge(measure);
        }
        Ok(total)
    }

    /// Measures one selection a level down, refusing before it steps past the depth
    /// limit (`is_depth`: a field or a fragment spread, not an inline fragment) or
    /// [`MAX_NESTING`]; the measure it returns counts that level.
    fn nested(
        &mut self,
        is_depth: bool,
        step: impl FnOnce(&mut Self) -> Result<Measure, GraphqlError>,
    ) -> Result<Measure, GraphqlError> {
        let (depth, nesting) = (self.depth, self.nesting);
        if depth + usize::from(is_depth) > self.max_depth {
            return Err(self.too_deep_here());
        }
        if nesting + 1 >= MAX_NESTING {
            return Err(too_nested(nesting + 1));
        }
        self.depth += usize::from(is_depth);
        self.nesting += 1;
        let inner = step(self);
        (self.depth, self.nesting) = (depth, nesting);
        let inner = inner?;
        Ok(Measure {
            depth: inner.depth + usize::from(is_depth),
            nesting: inner.nesting + 1,
            ..inner
        })
    }

    /// A field's own measure: its selection's, plus itself.
    fn field(&mut self, field: &'a Field) -> Result<Measure, GraphqlError> {
        match !self.introspecting && introspection::is_root(field.name.node.as_str()) {
            true => self.introspection_root(field),
            false => self.field_selection(field),
        }
    }

    fn field_selection(&mut self, field: &'a Field) -> Result<Measure, GraphqlError> {
        let name = field.name.node.as_str();
        let children = &field.selection_set.node;
        let child = if children.items.is_empty() {
            Measure::default()
        } else {
            self.measure(children)?
        };
        Ok(Measure {
            complexity: child.complexity.saturating_add(1),
            root_fields: 1,
            lookups: self.lookups(name, field, child.lookups),
            introspection: introspection::is_root(name),
            type_lists: child.type_lists
                + usize::from(self.introspecting && introspection::is_type_list(name)),
            ..child
        })
    }

    /// A named fragment's measure, computed once; unknown names are left to validation.
    fn fragment(&mut self, name: &'a Name) -> Result<Measure, GraphqlError> {
        match self.fragments.get(name) {
            Some(Some(measure)) => return Ok(*measure),
            Some(None) => {
                return Err(GraphqlError::TooDeep(format!(
                    "fragment {name} spreads itself: the operation would be infinitely deep, past the depth limit (--max-depth)"
                )));
            }
            None => {}
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Measure::default());
        };
        self.fragments.insert(name, None);
        let measure = self.measure(&fragment.node.selection_set.node)?;
        self.fragments.insert(name, Some(measure));
        Ok(measure)
    }

    /// Upstream lookups a field costs when it is a root field (`selected`: the
    /// lookups its own selection set would cost at the root); a list argument that
    /// is not (yet) a list counts as one, and validation reports it.
    fn lookups(&self, name: &str, field: &Field, selected: u64) -> u64 {
        match name {
            SINGLE_LOOKUP | START => 1,
            LIST_LOOKUP => self.list_length(field, LIST_ARGUMENT),
            ENTITIES => {
                let representations = self.list_length(field, ENTITIES_ARGUMENT);
                representations.saturating_mul(selected.max(1))
            }
            _ => 0,
        }
    }

    /// The length of a field's list argument, literal, from a variable or from a
    /// variable's default; one when it is missing or not a list.
    fn list_length(&self, field: &Field, argument: &str) -> u64 {
        let list = field.get_argument(argument).and_then(|value| {
            let resolve = |name: Name| {
                let set = self.variables.get(&name);
                let default = self.defaults.get(name.as_str()).copied();
                set.or(default).cloned().ok_or(())
            };
            value.node.clone().into_const_with(resolve).ok()
        });
        match list {
            Some(Value::List(items)) => items.len() as u64,
            _ => 1,
        }
    }
}

/// The default of every variable the document declares, which is what runs when
/// the request leaves it unset (a default of 50 domains is 50 lookups). When
/// operations declare one name with different defaults, the longest list counts:
/// fragments are measured once for the whole document, so the bound must hold for
/// every operation that may spread them.
fn variable_defaults(document: &ExecutableDocument) -> HashMap<&str, &Value> {
    let mut defaults: HashMap<&str, &Value> = HashMap::new();
    let length = |value: &Value| match value {
        Value::List(items) => items.len(),
        _ => 1,
    };
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            let Some(default) = &definition.node.default_value else {
                continue;
            };
            let name = definition.node.name.node.as_str();
            let default = &default.node;
            let longer = defaults
                .get(name)
                .is_none_or(|known| length(default) > length(known));
            if longer {
                defaults.insert(name, default);
            }
        }
    }
    defaults
}

/// The deepest bracket nesting of `query` when it exceeds `limit`, scanning past
/// strings, block strings and comments, so the parser never recurses that deep.
fn bracket_nesting_over(query: &str, limit: usize) -> Option<usize> {
    let bytes = query.as_bytes();
    let (mut depth, mut i) = (0_usize, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'(' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Some(depth);
                }
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: OperationLimits = OperationLimits {
        max_depth: 4,
        max_complexity: 20,
        max_root_fields: 3,
        max_lookups: 5,
        introspection: false,
    };

    fn check(query: &str, variables: serde_json::Value) -> Result<(), &'static str> {
        check_against(LIMITS, query, variables)
    }

    fn check_against(
        limits: OperationLimits,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<(), &'static str> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(variables);
        limits
            .check(&document, &variables)
            .map_err(|error| error.code())
    }

    #[test]
    fn each_limit_answers_with_its_own_code() {
        let none = serde_json::json!({});
        assert_eq!(check("{ a { b { c { d } } } }", none.clone()), Ok(()));
        assert_eq!(
            check("{ a { b { c { d { e } } } } }", none.clone()),
            Err("OPERATION_TOO_DEEP")
        );
        assert_eq!(check("{ a b c }", none.clone()), Ok(()));
        assert_eq!(
            check("{ a b c d }", none.clone()),
            Err("TOO_MANY_ROOT_FIELDS")
        );
        assert_eq!(
            check("{ __schema { types { name } } }", none.clone()),
            Err("INTROSPECTION_DISABLED")
        );
        assert_eq!(check("{ __typename }", none.clone()), Ok(()));
        let wide = format!("{{ a {{ {} }} }}", "x ".repeat(20));
        assert_eq!(check(&wide, none), Err("OPERATION_TOO_COMPLEX"));
    }

    #[test]
    fn lookups_count_aliases_and_list_entries_from_literals_and_variables() {
        let query = "query($d: [String!]!) { a: registrationStatus(domain: \"x\") { state } registrationStatuses(domains: $d) { state } }";
        assert_eq!(
            check(query, serde_json::json!({ "d": ["a", "b", "c", "d"] })),
            Ok(())
        );
        assert_eq!(
            check(query, serde_json::json!({ "d": ["a", "b", "c", "d", "e"] })),
            Err("TOO_MANY_LOOKUPS")
        );
        let literal = "{ registrationStatuses(domains: [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]) { state } }";
        assert_eq!(
            check(literal, serde_json::json!({})),
            Err("TOO_MANY_LOOKUPS")
        );
    }

    #[test]
    fn lookups_count_variable_defaults_unless_the_request_sets_them() {
        let query = "query($d: [String!]! = [\"a\", \"b\", \"c\"], $e: [String!]! = [\"a\"]) { x: registrationStatuses(domains: $d) { state } y: registrationStatuses(domains: $e) { state } }";
        assert_eq!(check(query, serde_json::json!({})), Ok(()));
        assert_eq!(
            check(query, serde_json::json!({ "e": ["a", "b", "c"] })),
            Err("TOO_MANY_LOOKUPS")
        );
        assert_eq!(
            check(
                query,
                serde_json::json!({ "d": ["a"], "e": ["a", "b", "c"] })
            ),
            Ok(())
        );
        let spread = "query A($d: [String!]! = [\"a\"]) { ...F } query B($d: [String!]! = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]) { ...F } fragment F on Query { registrationStatuses(domains: $d) { state } }";
        assert_eq!(
            check(spread, serde_json::json!({})),
            Err("TOO_MANY_LOOKUPS")
        );
    }

    #[test]
    fn entities_count_each_representation_times_the_statuses_it_selects() {
        let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Domain { registrationStatus { state } } } }";
        let representations = |n: usize| {
            let one = serde_json::json!({ "__typename": "Domain", "name": "example.com" });
            serde_json::json!({ "r": vec![one; n] })
        };
        assert_eq!(check(query, representations(5)), Ok(()));
        assert_eq!(check(query, representations(6)), Err("TOO_MANY_LOOKUPS"));
        let aliased = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Domain { a: registrationStatus { state } b: registrationStatus { state } } } }";
        assert_eq!(check(aliased, representations(2)), Ok(()));
        assert_eq!(check(aliased, representations(3)), Err("TOO_MANY_LOOKUPS"));
        let by_key = "query($r: [_Any!]!) { _entities(representations: $r) { ... on RegistrationStatus { state } } }";
        assert_eq!(check(by_key, representations(6)), Err("TOO_MANY_LOOKUPS"));
    }

    #[test]
    fn fragments_are_expanded_once_and_cycles_and_bombs_are_refused() {
        let spread = "{ ...F } fragment F on QueryRoot { a b c d }";
        assert_eq!(
            check(spread, serde_json::json!({})),
            Err("TOO_MANY_ROOT_FIELDS")
        );
        let cycle = "{ a { ...F } } fragment F on T { b { ...F } }";
        assert_eq!(
            check(cycle, serde_json::json!({})),
            Err("OPERATION_TOO_DEEP")
        );
        let mut bomb = String::from("{ a { ...F0 } }");
        for n in 0..40 {
            bomb.push_str(&format!(
                " fragment F{n} on T {{ ...F{m} ...F{m} }}",
                m = n + 1
            ));
        }
        bomb.push_str(" fragment F40 on T { x }");
        let deep = OperationLimits {
            max_depth: MAX_NESTING,
            ..LIMITS
        };
        assert_eq!(
            check_against(deep, &bomb, serde_json::json!({})),
            Err("OPERATION_TOO_COMPLEX")
        );
    }

    #[test]
    fn fragments_no_operation_uses_are_measured_too() {
        let none = serde_json::json!({});
        let wide = format!("{{ a }} fragment F on T {{ {} }}", "x ".repeat(21));
        assert_eq!(check(&wide, none.clone()), Err("OPERATION_TOO_COMPLEX"));
        let cycle = "{ a } fragment A on T { ...B } fragment B on T { ...A }";
        assert_eq!(check(cycle, none.clone()), Err("OPERATION_TOO_DEEP"));
        // Within the fragment limits, but validation would compare 10 x 11 fields.
        let spread = format!(
            "{{ a }} fragment B on T {{ {} }} fragment X on T {{ {} }}",
            "a:x ".repeat(10),
            "q {...B} ".repeat(10)
        );
        assert_eq!(check(&spread, none), Err("OPERATION_TOO_COMPLEX"));
    }

    #[test]
    fn fragment_spreads_count_towards_depth_and_a_long_chain_stops_at_the_limit() {
        let chain = |length: usize| {
            let mut query = String::from("{ ...F0 }");
            for n in 0..length {
                query.push_str(&format!(" fragment F{n} on T {{ ...F{} }}", n + 1));
            }
            query + &format!(" fragment F{length} on T {{ a }}")
        };
        assert_eq!(check(&chain(2), serde_json::json!({})), Ok(()));
        assert_eq!(
            check(&chain(3), serde_json::json!({})),
            Err("OPERATION_TOO_DEEP")
        );
        assert_eq!(
            check(&chain(10_000), serde_json::json!({})),
            Err("OPERATION_TOO_DEEP")
        );
        let reused = "{ ...F a { b { c { ...F } } } } fragment F on T { x }";
        assert_eq!(
            check(reused, serde_json::json!({})),
            Err("OPERATION_TOO_DEEP")
        );
    }

    #[test]
    fn bracket_nesting_skips_strings_and_comments() {
        assert_eq!(bracket_nesting_over("{ a { b } }", 2), None);
        assert_eq!(bracket_nesting_over("{ a { b { c } } }", 2), Some(3));
        assert_eq!(
            bracket_nesting_over("{ a(s: \"{{{{\\\"{{\") # {{{{\n }", 2),
            None
        );
        assert_eq!(bracket_nesting_over("{ a(s: \"\"\"{{{{\"\"\") }", 2), None);
        assert_eq!(bracket_nesting_over(&"{".repeat(100_000), 64), Some(65));
    }
}
