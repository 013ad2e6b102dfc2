//! What the simulator writes on the wire, modelled from Cloudflare's API reference
//! (`docs/upstream-api.md`) and nothing else: the v4 envelope, its error items,
//! the workflow status and the registration resource.
//!
//! These types are the simulator's own, not the gateway's client model, so the
//! gateway's decoding tests check its client against an encoder written
//! independently of it. They only encode (a scenario file's `state` and `error` are
//! the one thing read back).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// `{success, errors, messages, result}`: every v4 answer.
#[derive(Debug, Serialize)]
pub(crate) struct Envelope<T> {
    pub success: bool,
    pub errors: Vec<ApiMessage>,
    pub messages: Vec<ApiMessage>,
    /// `null` on failure.
    pub result: Option<T>,
}

/// One `errors[]` item: an integer code of at least 1000 and its message, with the
/// nested `error_chain` the platform sends for header problems and the
/// `source.pointer` of create validation errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ApiMessage {
    pub code: u32,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_chain: Vec<ApiMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Pointer>,
}

/// `source` of a validation error: the JSON Pointer of the field at fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Pointer {
    pub pointer: String,
}

impl ApiMessage {
    /// A plain `{code, message}` item.
    pub(crate) fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            error_chain: Vec::new(),
            source: None,
        }
    }

    /// A validation error (code 10000) pointing at `pointer`.
    pub(crate) fn pointed(message: impl Into<String>, pointer: &str) -> Self {
        Self {
            source: Some(Pointer {
                pointer: pointer.to_owned(),
            }),
            ..Self::new(10000, message)
        }
    }
}

/// A workflow status: the answer of `registration-status` and of a create.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkflowStatus {
    pub state: WorkflowState,
    /// True exactly on the terminal step.
    pub completed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub links: Links,
    pub context: Map<String, Value>,
    /// Sent on `failed` only, and left out (not `null`) otherwise, as the reference's examples do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WorkflowError>,
}

/// Relative paths, without `/client/v4`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Links {
    #[serde(rename = "self")]
    pub status: String,
    pub resource: String,
}

/// Why a workflow failed: a string code, unlike the envelope's integer codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowError {
    /// Such as `registry_rejected`.
    pub code: String,
    /// The reason in words.
    pub message: String,
}

/// A workflow state: the six the reference documents, or one a scenario file
/// names to show how clients cope with a state added later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowState {
    /// Created, not yet processing.
    Pending,
    /// Processing.
    InProgress,
    /// Waiting for the user.
    ActionRequired,
    /// Waiting for a third party.
    Blocked,
    /// Done.
    Succeeded,
    /// Ended without a registration.
    Failed,
    /// Any other name.
    Other(String),
}

impl WorkflowState {
    const DOCUMENTED: [WorkflowState; 6] = [
        Self::Pending,
        Self::InProgress,
        Self::ActionRequired,
        Self::Blocked,
        Self::Succeeded,
        Self::Failed,
    ];

    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::ActionRequired => "action_required",
            Self::Blocked => "blocked",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Other(name) => name,
        }
    }

    /// The state a scenario file names.
    pub(crate) fn named(name: &str) -> Self {
        Self::DOCUMENTED
            .into_iter()
            .find(|state| state.as_str() == name)
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }

    /// The documented terminal states.
    pub(crate) fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

impl fmt::Display for WorkflowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for WorkflowState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The registered-domain resource, also `context.registration` of a succeeded workflow.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Registration {
    pub domain_name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub auto_renew: bool,
    pub privacy_mode: String,
    pub locked: bool,
}
