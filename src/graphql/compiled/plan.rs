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

/// A field of one of the output types, compiled from its name and selection.
trait Planned: Sized + PartialEq {
    /// The field `name` with `selection` (empty for a leaf), if the type has it.
    fn field(name: &str, selection: &SelectionSet) -> Option<Self>;

    /// Merges `other`, a later field under the same response key, into this one.
    /// A leaf keeps its first value: async-graphql checks overlapping fields per
    /// selection set only, so `links { x: self } links { x: resource }` passes its
    /// validation, and its merge keeps the first `x`.
    fn merge(&mut self, _other: Self) -> Option<()> {
        Some(())
    }
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
    fn field(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "__typename" => leaf(set, Self::Typename),
            "domainName" => leaf(set, Self::DomainName),
            "state" => leaf(set, Self::State),
            "rawState" => leaf(set, Self::RawState),
            "completed" => leaf(set, Self::Completed),
            "createdAt" => leaf(set, Self::CreatedAt),
            "updatedAt" => leaf(set, Self::UpdatedAt),
            "links" => selection(set).map(Self::Links),
            "context" => leaf(set, Self::Context),
            "error" => selection(set).map(Self::Error),
            "actionRequired" => selection(set).map(Self::ActionRequired),
            "blocked" => selection(set).map(Self::Blocked),
            "nextCheckAt" => leaf(set, Self::NextCheckAt),
            "registration" => selection(set).map(Self::Registration),
            "fetchedAt" => leaf(set, Self::FetchedAt),
            "ageSeconds" => leaf(set, Self::AgeSeconds),
            "stale" => leaf(set, Self::Stale),
            _ => None,
        }
    }

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
    fn field(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "__typename" => leaf(set, Self::Typename),
            "self" => leaf(set, Self::SelfLink),
            "resource" => leaf(set, Self::Resource),
            _ => None,
        }
    }
}

impl Planned for ErrorField {
    fn field(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "__typename" => leaf(set, Self::Typename),
            "code" => leaf(set, Self::Code),
            "message" => leaf(set, Self::Message),
            _ => None,
        }
    }
}

impl Planned for ActionRequiredField {
    fn field(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "__typename" => leaf(set, Self::Typename),
            "action" => leaf(set, Self::Action),
            "confirmationSentTo" => leaf(set, Self::ConfirmationSentTo),
            _ => None,
        }
    }
}

impl Planned for BlockedField {
    fn field(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "__typename" => leaf(set, Self::Typename),
            "blockedBy" => leaf(set, Self::BlockedBy),
            "detail" => leaf(set, Self::Detail),
            _ => None,
        }
    }
}

impl Planned for RegistrationField {
    fn field(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "__typename" => leaf(set, Self::Typename),
            "domainName" => leaf(set, Self::DomainName),
            "status" => leaf(set, Self::Status),
            "createdAt" => leaf(set, Self::CreatedAt),
            "expiresAt" => leaf(set, Self::ExpiresAt),
            "autoRenew" => leaf(set, Self::AutoRenew),
            "privacyMode" => leaf(set, Self::PrivacyMode),
            "locked" => leaf(set, Self::Locked),
            _ => None,
        }
    }
}
