//! Introspection's own bounds. Every tool that reads a schema (GraphiQL,
//! graphql-codegen, Apollo Rover, Altair, Postman, graphql-core) sends a variant of
//! graphql-js's `getIntrospectionQuery()`, whose `TypeRef` fragment nests `ofType`
//! nine levels: 18 fields and spreads deep, past any useful `--max-depth`. So, as
//! GraphQL Armor and Apollo Router do, a `__schema` or `__type` field is not
//! measured by the operation depth rule (it counts as one level there) but by
//! bounds of its own, fixed because they describe introspection, not this API:
//!
//! - [`MAX_DEPTH`]: fields and fragment spreads below and including the root
//!   field: admits the standard documents (18 deep with every option on), not an
//!   arbitrary `ofType { ofType { ... } }` nest;
//! - [`MAX_LIST_NESTING`]: how many of the list fields that lead back to types
//!   (`fields`, `inputFields`, `interfaces`, `possibleTypes`) may nest on one path:
//!   graphql-js's own `MaxIntrospectionDepthRule` bound, the one that keeps a
//!   response from growing as a power of the schema's size (`fields { type {
//!   fields { type { fields ...`); the standard documents nest one;
//! - [`MAX_ROOT_FIELDS`]: introspection root fields per operation (aliases count),
//!   against a flood of `__schema` copies in one request.
//!
//! Introspection fields still count towards `--max-complexity` (the standard
//! query selects about 230 fields) and `--max-root-fields`. The rule keys on the
//! *field* names `__schema` and `__type`, never on operation or fragment names
//! (GraphQL Armor's GHSA-hmfr-rx46-4jx2), and measures fragments inside
//! introspection separately from those outside, so a fragment measured in one
//! context never lends its measure to the other (GHSA-224p-v68g-5g8f).

use async_graphql::parser::types::Field;

use super::{Measure, Walker};
use crate::graphql::GraphqlError;

/// Deepest nesting of fields and fragment spreads inside an introspection root
/// field, that field included.
pub(super) const MAX_DEPTH: usize = 20;
/// Most nested `fields`/`inputFields`/`interfaces`/`possibleTypes` on one path.
pub(super) const MAX_LIST_NESTING: usize = 2;
/// Most introspection root fields (`__schema`, `__type`, aliases each) per operation.
pub(super) const MAX_ROOT_FIELDS: u64 = 3;

/// Whether `name` is an introspection root field.
pub(super) fn is_root(name: &str) -> bool {
    matches!(name, "__schema" | "__type")
}

/// Whether `name`, inside introspection, is a list that leads back to types.
pub(super) fn is_type_list(name: &str) -> bool {
    matches!(
        name,
        "fields" | "inputFields" | "interfaces" | "possibleTypes"
    )
}

impl<'a> Walker<'a> {
    /// Measures an introspection root field under this module's bounds; the
    /// operation's depth rule sees it as one level.
    pub(super) fn introspection_root(&mut self, field: &'a Field) -> Result<Measure, GraphqlError> {
        let outside = (self.depth, self.max_depth);
        // The root field is level 1 of its own bound; its children are checked from
        // there, and fragments are measured apart from those outside introspection.
        (self.depth, self.max_depth, self.introspecting) = (1, MAX_DEPTH, true);
        std::mem::swap(&mut self.fragments, &mut self.introspection_fragments);
        let measured = self.field_selection(field);
        std::mem::swap(&mut self.fragments, &mut self.introspection_fragments);
        (self.depth, self.max_depth) = outside;
        self.introspecting = false;
        let measure = measured?;
        if measure.type_lists > MAX_LIST_NESTING {
            return Err(GraphqlError::TooDeep(format!(
                "the introspection nests {} of fields, inputFields, interfaces and possibleTypes; the limit is {MAX_LIST_NESTING}",
                measure.type_lists
            )));
        }
        Ok(Measure {
            depth: 0,
            root_fields: 1,
            introspection: true,
            introspection_roots: 1,
            type_lists: 0,
            ..measure
        })
    }

    /// The refusal for a step past the depth bound of the current context.
    pub(super) fn too_deep_here(&self) -> GraphqlError {
        match self.introspecting {
            true => GraphqlError::TooDeep(format!(
                "the introspection is more than {MAX_DEPTH} fields and fragment spreads deep; introspection's own limit is {MAX_DEPTH}"
            )),
            false => super::too_deep(format_args!("more than {}", self.max_depth), self.max_depth),
        }
    }
}

/// Refuses an operation with too many introspection root fields.
pub(super) fn check_root_fields(measure: &Measure) -> Result<(), GraphqlError> {
    match measure.introspection_roots > MAX_ROOT_FIELDS {
        false => Ok(()),
        true => Err(GraphqlError::TooManyRootFields(format!(
            "the operation has {} introspection root fields (__schema, __type; aliases count); the limit is {MAX_ROOT_FIELDS}",
            measure.introspection_roots
        ))),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::Variables;

    use super::super::OperationLimits;

    const DEFAULTS: OperationLimits = OperationLimits {
        max_depth: 12,
        max_complexity: 1000,
        max_root_fields: 20,
        max_lookups: 100,
        introspection: true,
    };

    fn check(query: &str) -> Result<(), &'static str> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        DEFAULTS
            .check(&document, &Variables::default())
            .map_err(|error| error.code())
    }

    /// `__type { ofType { ... } }` with `levels` nested `ofType`.
    fn of_type_nest(levels: usize) -> String {
        let mut query = String::from("{ __type(name: \"Query\") { name");
        query.push_str(&" ofType { name".repeat(levels));
        query + &" }".repeat(levels + 2)
    }

    #[test]
    fn the_standard_introspection_documents_pass_under_default_limits() {
        for fixture in [
            include_str!("../../../tests/fixtures/introspection/graphql-js.graphql"),
            include_str!("../../../tests/fixtures/introspection/graphql-core.graphql"),
        ] {
            assert_eq!(check(fixture), Ok(()));
        }
    }

    #[test]
    fn an_of_type_nest_is_bounded_by_its_own_depth() {
        assert_eq!(check(&of_type_nest(super::MAX_DEPTH - 2)), Ok(()));
        assert_eq!(
            check(&of_type_nest(super::MAX_DEPTH - 1)),
            Err("OPERATION_TOO_DEEP")
        );
        assert_eq!(check(&of_type_nest(60)), Err("OPERATION_TOO_DEEP"));
    }

    #[test]
    fn type_lists_nest_at_most_twice_even_through_fragments() {
        let twice = "{ __type(name: \"Query\") { fields { type { fields { name } } } } }";
        assert_eq!(check(twice), Ok(()));
        let thrice = "{ __schema { types { fields { type { fields { type { possibleTypes { name } } } } } } } }";
        assert_eq!(check(thrice), Err("OPERATION_TOO_DEEP"));
        let reused = "{ __schema { types { ...L fields { type { ...L } } } } } \
                      fragment L on __Type { interfaces { fields { name } } }";
        assert_eq!(check(reused), Err("OPERATION_TOO_DEEP"));
    }

    #[test]
    fn the_exemption_keys_on_fields_not_on_operation_or_fragment_names() {
        let deep = "a { b { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } } }";
        assert_eq!(
            check(&format!("query __schema {{ {deep} }}")),
            Err("OPERATION_TOO_DEEP")
        );
        let fragment = format!("{{ ...__schema }} fragment __schema on Query {{ {deep} }}");
        assert_eq!(check(&fragment), Err("OPERATION_TOO_DEEP"));
        // A fragment measured inside introspection lends nothing to the outside.
        let shared = format!("{{ __schema {{ ...F }} x {{ ...F }} }} fragment F on T {{ {deep} }}");
        assert_eq!(check(&shared), Err("OPERATION_TOO_DEEP"));
    }

    #[test]
    fn introspection_root_fields_are_capped_per_operation() {
        let roots = |n: usize| {
            let fields: String = (0..n)
                .map(|i| format!("s{i}: __schema {{ description }} "))
                .collect();
            format!("{{ {fields} }}")
        };
        assert_eq!(check(&roots(super::MAX_ROOT_FIELDS as usize)), Ok(()));
        assert_eq!(
            check(&roots(super::MAX_ROOT_FIELDS as usize + 1)),
            Err("TOO_MANY_ROOT_FIELDS")
        );
    }
}
