//! Documents parsed once per distinct text, and persisted queries by hash.
//!
//! Clients send the same few documents over and over (a dashboard's status query,
//! a subscription), and parsing plus the operation-limits walk was work repeated
//! for every request. [`Documents`] keeps, per query text, the parsed document and,
//! when the document declares no variables, the limits' verdict (with variables,
//! the lookups a list argument costs depend on them, so the walk runs again; it is
//! cheap next to parsing) and, once the document has passed async-graphql's
//! validation, its compiled plan when it has one (see [`super::compiled`]): the
//! requests that plan answers skip async-graphql altogether.
//!
//! [`PersistedQueries`] implements Apollo's automatic persisted queries over HTTP:
//! a request whose `extensions.persistedQuery.sha256Hash` names a known document
//! may leave `query` out; an unknown hash answers `PersistedQueryNotFound`, and the
//! client sends the document with its hash, which is checked and stored. Both caches
//! are bounded by the bytes of text they hold.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use async_graphql::parser::parse_query;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType,
};
use async_graphql::{Positioned, Request, ServerResult, Variables};
use moka::sync::Cache;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::compiled::{Plan, compile};
use super::limits::{OperationLimits, check_nesting};
use super::syntax_error::syntax_error;
use super::validation::cut_message;

/// Bytes of query text each cache holds at most (a parsed document costs a few
/// times its text; the weight counts that).
const MAX_CACHED_TEXT: u64 = 8 * 1024 * 1024;
/// What a cached document weighs per byte of its text.
const DOCUMENT_WEIGHT_PER_BYTE: usize = 4;

/// A document admitted once: parsed, and measured when its verdict cannot change.
pub struct AdmittedDocument {
    document: ExecutableDocument,
    /// The limits' verdict, for a document without variables.
    verdict: Option<ServerResult<()>>,
    /// Set once the document passed validation: its plan, when it has one.
    plan: OnceLock<Option<Plan>>,
}

impl AdmittedDocument {
    /// The parsed document.
    pub fn document(&self) -> &ExecutableDocument {
        &self.document
    }

    /// The type of the operation a request naming `name` runs, when the document
    /// names one unambiguously.
    pub fn operation_type(&self, name: Option<&str>) -> Option<OperationType> {
        Some(selected_operation(&self.document, name)?.node.ty)
    }

    /// The limits' verdict on the document with `variables`.
    pub(super) fn verdict(
        &self,
        limits: &OperationLimits,
        variables: &Variables,
    ) -> ServerResult<()> {
        match &self.verdict {
            Some(verdict) => verdict.clone(),
            None => limits.verdict(&self.document, variables),
        }
    }

    /// The compiled plan, once the document passed validation, if it is in the
    /// compiled subset.
    pub(super) fn plan(&self) -> Option<&Plan> {
        self.plan.get()?.as_ref()
    }

    /// Records that async-graphql validated the document (a request ran it to a
    /// response that is not a request error): compiles its plan, once.
    pub(super) fn validated(&self) {
        self.plan.get_or_init(|| compile(&self.document));
    }
}

/// Parsed documents by query text.
#[derive(Clone)]
pub(super) struct Documents {
    parsed: Cache<String, Arc<AdmittedDocument>>,
}

impl Documents {
    pub(super) fn new() -> Self {
        let parsed = Cache::builder()
            .max_capacity(MAX_CACHED_TEXT * DOCUMENT_WEIGHT_PER_BYTE as u64)
            .weigher(|query: &String, _: &Arc<AdmittedDocument>| {
                let weight = query.len().saturating_mul(DOCUMENT_WEIGHT_PER_BYTE);
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .build();
        Self { parsed }
    }

    /// `request`'s document, parsed now or earlier: refused when it nests too
    /// deep or does not parse (neither is cached).
    pub(super) fn admitted(
        &self,
        request: &Request,
        limits: &OperationLimits,
    ) -> ServerResult<Arc<AdmittedDocument>> {
        if let Some(admitted) = self.parsed.get(request.query.as_str()) {
            return Ok(admitted);
        }
        check_nesting(&request.query)?;
        let document = parse_query(&request.query).map_err(|error| {
            let mut error = syntax_error(&request.query, error);
            // The parser quotes the offending line, which may be the whole document.
            cut_message(&mut error);
            error
        })?;
        let fixed = document
            .operations
            .iter()
            .all(|(_, operation)| operation.node.variable_definitions.is_empty());
        let verdict = fixed.then(|| limits.verdict(&document, &Variables::default()));
        let admitted = Arc::new(AdmittedDocument {
            document,
            verdict,
            plan: OnceLock::new(),
        });
        self.parsed
            .insert(request.query.clone(), Arc::clone(&admitted));
        Ok(admitted)
    }
}

/// Why a persisted query cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistedQueryError {
    /// The hash names no document this gateway holds: send it with the document.
    #[error("PersistedQueryNotFound")]
    NotFound,
    /// The document sent with a hash does not have that hash.
    #[error("provided sha does not match query")]
    HashMismatch,
    /// `extensions.persistedQuery` is not `{"version": 1, "sha256Hash": "<64 hex digits>"}`.
    #[error(
        "extensions.persistedQuery must be {{\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}}"
    )]
    Malformed,
}

impl PersistedQueryError {
    /// The `extensions.code` Apollo's clients read.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::HashMismatch | Self::Malformed => "BAD_REQUEST",
        }
    }
}

/// Documents by SHA-256 hash, for Apollo's automatic persisted queries.
#[derive(Clone)]
pub struct PersistedQueries {
    by_hash: Cache<String, Arc<str>>,
}

impl PersistedQueries {
    pub(super) fn new() -> Self {
        let by_hash = Cache::builder()
            .max_capacity(MAX_CACHED_TEXT)
            .weigher(|hash: &String, query: &Arc<str>| {
                u32::try_from(hash.len().saturating_add(query.len())).unwrap_or(u32::MAX)
            })
            .build();
        Self { by_hash }
    }

    /// The document a request runs: `query` itself without a persisted query in
    /// `extensions`; with one, the document its hash names (`query` absent), or
    /// `query` checked against the hash and remembered under it.
    pub fn resolve(
        &self,
        query: Option<String>,
        extensions: Option<&Map<String, Value>>,
    ) -> Result<Option<String>, PersistedQueryError> {
        let Some(persisted) = extensions.and_then(|extensions| extensions.get("persistedQuery"))
        else {
            return Ok(query);
        };
        let hash = requested_hash(persisted).ok_or(PersistedQueryError::Malformed)?;
        match query.filter(|query| !query.is_empty()) {
            None => self
                .by_hash
                .get(hash)
                .map(|query| Some(query.to_string()))
                .ok_or(PersistedQueryError::NotFound),
            Some(query) if sha256_hex(&query) == hash => {
                self.by_hash
                    .insert(hash.to_owned(), Arc::from(query.as_str()));
                Ok(Some(query))
            }
            Some(_) => Err(PersistedQueryError::HashMismatch),
        }
    }
}

/// The lower-case hex hash of `{"version": 1, "sha256Hash": ...}`.
fn requested_hash(persisted: &Value) -> Option<&str> {
    let version = persisted.get("version")?.as_u64()?;
    let hash = persisted.get("sha256Hash")?.as_str()?;
    let well_formed = hash.len() == 64
        && hash
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    (version == 1 && well_formed).then_some(hash)
}

fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The operation a request naming `name` runs, when `document` names one
/// unambiguously (one operation, or the one named).
pub(super) fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "{ __typename }";

    fn extensions(hash: &str) -> Map<String, Value> {
        let value = serde_json::json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_hash_is_found_once_its_document_was_sent_with_it() {
        let persisted = PersistedQueries::new();
        let hash = sha256_hex(QUERY);
        let ext = extensions(&hash);
        assert_eq!(
            persisted.resolve(None, Some(&ext)),
            Err(PersistedQueryError::NotFound)
        );
        assert_eq!(
            persisted.resolve(Some(QUERY.to_owned()), Some(&ext)),
            Ok(Some(QUERY.to_owned()))
        );
        assert_eq!(
            persisted.resolve(None, Some(&ext)),
            Ok(Some(QUERY.to_owned()))
        );
    }

    #[test]
    fn a_document_must_have_the_hash_it_is_sent_with() {
        let persisted = PersistedQueries::new();
        let other = sha256_hex("{ other }");
        assert_eq!(
            persisted.resolve(Some(QUERY.to_owned()), Some(&extensions(&other))),
            Err(PersistedQueryError::HashMismatch)
        );
        assert_eq!(
            persisted.resolve(None, Some(&extensions("not-a-hash"))),
            Err(PersistedQueryError::Malformed)
        );
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
