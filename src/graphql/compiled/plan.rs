//! Compiling a validated document into a [`Plan`], or declining to.
//!
//! The subset, exactly: one `query` operation (named or not), no fragments and
//! no directives anywhere; its one root field is `registrationStatus` (aliased or
//! not) with `domain` a string literal or a variable declared `String!`, and
//! `accountId` absent, a string literal or a variable declared `ID` or `ID!`
//! (every declared variable used, none with a default); below it only fields of
//! the output types, aliases and `__typename` allowed. Anything else compiles to
//! nothing and always runs through async-graphql.
//!
//! Fields that share a response key are merged as GraphQL's field collection
//! (and async-graphql's `insert_value`) merges them: the key keeps the place of
//! its first occurrence, a leaf its first value (even a different field's, which
//! async-graphql's validation lets through inside repeated objects), and an
//! object the union of the selections in order of first occurrence.

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationType, Selection,
    SelectionSet, Type, VariableDefinition,
};
use async_graphql::{Name, Pos, Positioned, Value};

/// The compiled form of a document in the subset.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The operation's name: a request may name it, and nothing else.
    pub(super) operation_name: Option<Name>,
    /// The root field's response key (its alias, or `registrationStatus`).
    pub(super) key: Name,
    /// The root field's position, where its errors are located.
    pub(super) pos: Pos,
    pub(super) domain: Argument,
    pub(super) account: Option<Argument>,
    /// `RegistrationStatus`'s selection, by response key.
    pub(super) fields: Vec<(Name, StatusField)>,
}

/// Where an argument's value comes from.
#[derive(Debug)]
pub(super) enum Argument {
    /// A string literal in the document.
    Literal(String),
    /// A variable; `required` when declared non-null.
    Variable { name: Name, required: bool },
}

/// A field of `RegistrationStatus`, with the selection of an object-typed one.
#[derive(Debug, PartialEq)]
pub(super) enum StatusField {
    Typename,
    DomainName,
    State,
    RawState,
    Completed,
    CreatedAt,
    UpdatedAt,
    Links(Vec<(Name, LinksField)>),
    Context,
    Error(Vec<(Name, ErrorField)>),
    ActionRequired(Vec<(Name, ActionRequiredField)>),
    Blocked(Vec<(Name, BlockedField)>),
    NextCheckAt,
    Registration(Vec<(Name, RegistrationField)>),
    FetchedAt,
    AgeSeconds,
    Stale,
}

/// A field of `WorkflowLinks`.
#[derive(Debug, PartialEq)]
pub(super) enum LinksField {
    Typename,
    SelfLink,
    Resource,
}

/// A field of `WorkflowError`.
#[derive(Debug, PartialEq)]
pub(super) enum ErrorField {
    Typename,
    Code,
    Message,
}

/// A field of `ActionRequired`.
#[derive(Debug, PartialEq)]
pub(super) enum ActionRequiredField {
    Typename,
    Action,
    ConfirmationSentTo,
}

/// A field of `Blocked`.
#[derive(Debug, PartialEq)]
pub(super) enum BlockedField {
    Typename,
    BlockedBy,
    Detail,
}

/// A field of `Registration`.
#[derive(Debug, PartialEq)]
pub(super) enum RegistrationField {
    Typename,
    DomainName,
    Status,
    CreatedAt,
    ExpiresAt,
    AutoRenew,
    PrivacyMode,
    Locked,
}

/// The plan of `document`, when it is in the subset.
pub(crate) fn compile(document: &ExecutableDocument) -> Option<Plan> {
    if !document.fragments.is_empty() {
        return None;
    }
    let (operation_name, operation) = match &document.operations {
        DocumentOperations::Single(operation) => (None, operation),
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            let (name, operation) = operations.iter().next()?;
            (Some(name.clone()), operation)
        }
        DocumentOperations::Multiple(_) => return None,
    };
    let operation = &operation.node;
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return None;
    }
    let [root] = operation.selection_set.node.items.as_slice() else {
        return None;
    };
    let Selection::Field(root) = &root.node else {
        return None;
    };
    let field = &root.node;
    if field.name.node != "registrationStatus" || !field.directives.is_empty() {
        return None;
    }
    let definitions = &operation.variable_definitions;
    let (mut domain, mut account) = (None, None);
    for (name, value) in &field.arguments {
        // A literal, or the variable it names (the only variable a validated
        // `String` or `ID` argument can hold is the whole value).
        let value = value.node.clone().into_const_with(Err::<Value, Name>);
        match name.node.as_str() {
            "domain" if domain.is_none() => {
                domain = Some(argument(value, definitions, "String", true)?);
            }
            "accountId" if account.is_none() => {
                account = Some(argument(value, definitions, "ID", false)?);
            }
            _ => return None,
        }
    }
    let variables_used = [&domain, &account]
        .into_iter()
        .filter(|argument| matches!(argument, Some(Argument::Variable { .. })))
        .count();
    if variables_used != definitions.len() {
        return None;
    }
    Some(Plan {
        operation_name,
        key: field.response_key().node.clone(),
        pos: root.pos,
        domain: domain?,
        account,
        fields: selection(&field.selection_set.node)?,
    })
}

/// An argument's source: a string literal, or a variable declared with the named
/// type (`String!` when `required`, `ID` or `ID!` otherwise) and no default.
fn argument(
    value: Result<Value, Name>,
    definitions: &[Positioned<VariableDefinition>],
    type_name: &str,
    required: bool,
) -> Option<Argument> {
    match value {
        Ok(Value::String(text)) => Some(Argument::Literal(text)),
        Ok(_) => None,
        Err(name) => {
            let definition = definitions
                .iter()
                .map(|definition| &definition.node)
                .find(|definition| definition.name.node == name)?;
            let Type { base, nullable } = &definition.var_type.node;
            let declared = matches!(base, BaseType::Named(named) if named == type_name)
                && (!required || !nullable)
                && definition.default_value.is_none()
                && definition.directives.is_empty();
            declared.then_some(Argument::Variable {
                name,
                required: !nullable,
            })
        }
    }
}

/// How a field is compiled from its selection (empty for a leaf); `None` when
/// the selection does not fit.
type Compile<F> = fn(&SelectionSet) -> Option<F>;

/// One output type the compiled path serves: its fields, compiled from their
/// names and selections.
trait Planned: Sized + PartialEq + 'static {
    /// The GraphQL type's name.
    const TYPE: &'static str;

    /// The one table of the type's fields: every field of the schema's type (and
    /// `__typename`), each with how it compiles, or `None` for a field the compiled
    /// path declines (a document selecting it runs through async-graphql). A field
    /// added to the schema fails `tests/api/compiled_queries.rs` until it is here.
    const FIELDS: &'static [(&'static str, Option<Compile<Self>>)];

    /// The field `name` with `selection`, if the table compiles it.
    fn field(name: &str, selection: &SelectionSet) -> Option<Self> {
        let (_, compile) = Self::FIELDS.iter().find(|(field, _)| *field == name)?;
        compile.and_then(|compile| compile(selection))
    }

    /// Merges `other`, a later field under the same response key, into this one.
    /// A leaf keeps its first value: async-graphql checks overlapping fields per
    /// selection set only, so `links { x: self } links { x: resource }` passes its
    /// validation, and its merge keeps the first `x`.
    fn merge(&mut self, _other: Self) -> Option<()> {
        Some(())
    }
}

/// The types the compiled path serves, by name, with their fields and whether
/// each is compiled (`true`) or declined: [`Planned::FIELDS`], for the test that
/// walks the schema.
pub fn compiled_fields() -> Vec<(&'static str, Vec<(&'static str, bool)>)> {
    fn of<F: Planned>() -> (&'static str, Vec<(&'static str, bool)>) {
        let fields = F::FIELDS
            .iter()
            .map(|(name, compile)| (*name, compile.is_some()))
            .collect();
        (F::TYPE, fields)
    }
    vec![
        of::<StatusField>(),
        of::<LinksField>(),
        of::<ErrorField>(),
        of::<ActionRequiredField>(),
        of::<BlockedField>(),
        of::<RegistrationField>(),
    ]
}

/// The fields of `set` by response key, merged; `None` outside the subset.
fn selection<F: Planned>(set: &SelectionSet) -> Option<Vec<(Name, F)>> {
    let mut fields = Vec::new();
    for item in &set.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field: &Field = &field.node;
        if !field.directives.is_empty() || !field.arguments.is_empty() {
            return None;
        }
        let planned = F::field(field.name.node.as_str(), &field.selection_set.node)?;
        add(&mut fields, field.response_key().node.clone(), planned)?;
    }
    (!fields.is_empty()).then_some(fields)
}

/// Adds `field` under `key`: merged into an earlier field of that key, or last.
fn add<F: Planned>(fields: &mut Vec<(Name, F)>, key: Name, field: F) -> Option<()> {
    match fields.iter_mut().find(|(existing, _)| *existing == key) {
        Some((_, earlier)) => earlier.merge(field),
        None => {
            fields.push((key, field));
            Some(())
        }
    }
}

/// Merges the selection `from` into `into`, key by key.
fn merge_all<F: Planned>(into: &mut Vec<(Name, F)>, from: Vec<(Name, F)>) -> Option<()> {
    for (key, field) in from {
        add(into, key, field)?;
    }
    Some(())
}

/// A leaf: `field` when `selection` is empty.
fn leaf<F>(selection: &SelectionSet, field: F) -> Option<F> {
    selection.items.is_empty().then_some(field)
}

impl Planned for StatusField {
    const TYPE: &'static str = "RegistrationStatus";
    const FIELDS: &'static [(&'static str, Option<Compile<Self>>)] = &[
        ("__typename", Some(|set| leaf(set, Self::Typename))),
        ("domainName", Some(|set| leaf(set, Self::DomainName))),
        ("state", Some(|set| leaf(set, Self::State))),
        ("rawState", Some(|set| leaf(set, Self::RawState))),
        ("completed", Some(|set| leaf(set, Self::Completed))),
        ("createdAt", Some(|set| leaf(set, Self::CreatedAt))),
        ("updatedAt", Some(|set| leaf(set, Self::UpdatedAt))),
        ("links", Some(|set| selection(set).map(Self::Links))),
        ("context", Some(|set| leaf(set, Self::Context))),
        ("error", Some(|set| selection(set).map(Self::Error))),
        (
            "actionRequired",
            Some(|set| selection(set).map(Self::ActionRequired)),
        ),
        ("blocked", Some(|set| selection(set).map(Self::Blocked))),
        ("nextCheckAt", Some(|set| leaf(set, Self::NextCheckAt))),
        (
            "registration",
            Some(|set| selection(set).map(Self::Registration)),
        ),
        ("fetchedAt", Some(|set| leaf(set, Self::FetchedAt))),
        ("ageSeconds", Some(|set| leaf(set, Self::AgeSeconds))),
        ("stale", Some(|set| leaf(set, Self::Stale))),
    ];

    fn merge(&mut self, other: Self) -> Option<()> {
        match (self, other) {
            (Self::Links(into), Self::Links(from)) => merge_all(into, from),
            (Self::Error(into), Self::Error(from)) => merge_all(into, from),
            (Self::ActionRequired(into), Self::ActionRequired(from)) => merge_all(into, from),
            (Self::Blocked(into), Self::Blocked(from)) => merge_all(into, from),
            (Self::Registration(into), Self::Registration(from)) => merge_all(into, from),
            // Different fields under one key in one selection set fail validation.
            (leaf, other) => (*leaf == other).then_some(()),
        }
    }
}

impl Planned for LinksField {
    const TYPE: &'static str = "WorkflowLinks";
    const FIELDS: &'static [(&'static str, Option<Compile<Self>>)] = &[
        ("__typename", Some(|set| leaf(set, Self::Typename))),
        ("self", Some(|set| leaf(set, Self::SelfLink))),
        ("resource", Some(|set| leaf(set, Self::Resource))),
    ];
}

impl Planned for ErrorField {
    const TYPE: &'static str = "WorkflowError";
    const FIELDS: &'static [(&'static str, Option<Compile<Self>>)] = &[
        ("__typename", Some(|set| leaf(set, Self::Typename))),
        ("code", Some(|set| leaf(set, Self::Code))),
        ("message", Some(|set| leaf(set, Self::Message))),
    ];
}

impl Planned for ActionRequiredField {
    const TYPE: &'static str = "ActionRequired";
    const FIELDS: &'static [(&'static str, Option<Compile<Self>>)] = &[
        ("__typename", Some(|set| leaf(set, Self::Typename))),
        ("action", Some(|set| leaf(set, Self::Action))),
        (
            "confirmationSentTo",
            Some(|set| leaf(set, Self::ConfirmationSentTo)),
        ),
    ];
}

impl Planned for BlockedField {
    const TYPE: &'static str = "Blocked";
    const FIELDS: &'static [(&'static str, Option<Compile<Self>>)] = &[
        ("__typename", Some(|set| leaf(set, Self::Typename))),
        ("blockedBy", Some(|set| leaf(set, Self::BlockedBy))),
        ("detail", Some(|set| leaf(set, Self::Detail))),
    ];
}

impl Planned for RegistrationField {
    const TYPE: &'static str = "Registration";
    const FIELDS: &'static [(&'static str, Option<Compile<Self>>)] = &[
        ("__typename", Some(|set| leaf(set, Self::Typename))),
        ("domainName", Some(|set| leaf(set, Self::DomainName))),
        ("status", Some(|set| leaf(set, Self::Status))),
        ("createdAt", Some(|set| leaf(set, Self::CreatedAt))),
        ("expiresAt", Some(|set| leaf(set, Self::ExpiresAt))),
        ("autoRenew", Some(|set| leaf(set, Self::AutoRenew))),
        ("privacyMode", Some(|set| leaf(set, Self::PrivacyMode))),
        ("locked", Some(|set| leaf(set, Self::Locked))),
    ];
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    /// A made-up type with one compiled field and one declined.
    #[derive(Debug, PartialEq)]
    enum Probe {
        Kept,
    }

    impl Planned for Probe {
        const TYPE: &'static str = "Probe";
        const FIELDS: &'static [(&'static str, Option<Compile<Self>>)] = &[
            ("kept", Some(|set| leaf(set, Self::Kept))),
            ("declined", None),
        ];
    }

    /// The selection set of `{ <fields> }`.
    fn selection_of(fields: &str) -> SelectionSet {
        let document = parse_query(format!("{{ {fields} }}")).unwrap();
        let DocumentOperations::Single(operation) = document.operations else {
            panic!("one operation");
        };
        operation.node.selection_set.node
    }

    #[test]
    fn a_declined_field_leaves_the_whole_selection_to_async_graphql() {
        let kept = selection::<Probe>(&selection_of("kept a: kept"));
        let keys: Vec<_> = kept.unwrap().into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["kept", "a"]);
        assert_eq!(selection::<Probe>(&selection_of("kept declined")), None);
        assert_eq!(selection::<Probe>(&selection_of("kept unknown")), None);
    }

    #[test]
    fn every_table_names_each_field_once() {
        for (type_name, fields) in compiled_fields() {
            let mut names: Vec<_> = fields.iter().map(|(name, _)| *name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), fields.len(), "{type_name} lists a field twice");
        }
    }
}
