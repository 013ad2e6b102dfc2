//! The upstream's wire format: the v4 envelope, `WorkflowStatus`, `Registration` and
//! the create request, as `docs/upstream-api.md` describes them (field names, types,
//! optionality).
//!
//! Decoding is lenient where the platform may grow (unknown fields are ignored, an
//! unknown `state` is kept as [`WorkflowState::Unknown`]). The simulator has its own
//! encoder; the gateway encodes only the create request.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// `{success, errors[], messages[], result}`: every v4 response. Failure bodies in
/// the wild sometimes omit `messages` and `result`, so both default when decoding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// `true` for 2xx answers, including a workflow whose `state` is `failed`.
    pub success: bool,
    /// Envelope errors; empty on success.
    #[serde(default)]
    pub errors: Vec<ApiMessage>,
    /// Informational messages; usually empty.
    #[serde(default)]
    pub messages: Vec<ApiMessage>,
    /// The payload; `null` on failure.
    #[serde(default = "none")]
    pub result: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// One `errors[]` / `messages[]` item (`ResponseInfo`): an integer code >= 1000.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMessage {
    /// Integer platform code, e.g. 10000, 9106, 971.
    pub code: u32,
    /// Human-readable text.
    pub message: String,
    /// Nested causes, as in the platform's 6003 "Invalid request headers".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_chain: Vec<ApiMessage>,
    /// JSON Pointer to the request field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
    /// Link to documentation, when the platform sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
}

impl ApiMessage {
    /// A plain `{code, message}` item.
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            error_chain: Vec::new(),
            source: None,
            documentation_url: None,
        }
    }
}

/// `source` of an error item. The spec makes both `source` and its `pointer`
/// optional, so `"source": {}` decodes (to a source without a pointer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSource {
    /// JSON Pointer such as `/domain_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// `registrar-api_workflow-status`: the result of every registration-status poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStatus {
    /// Where the workflow is.
    pub state: WorkflowState,
    /// Whether the workflow has ended. The spec sets it exactly for `succeeded` and
    /// `failed`, and the documented polling loop keys on it, so the gateway treats it
    /// as authoritative: `completed: true` ends polling whatever `state` says.
    pub completed: bool,
    /// When the workflow started.
    pub created_at: DateTime<Utc>,
    /// When `state` last changed.
    pub updated_at: DateTime<Utc>,
    /// Relative API paths (without `/client/v4`).
    pub links: Links,
    /// Free-form, workflow-specific data (`domain_name`, `action`, `registration`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// Why the workflow failed. The reference documents it for `failed`; the gateway
    /// passes it on whenever the upstream sends it, whatever the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WorkflowError>,
}

/// `links` of a workflow status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// This status resource, e.g. `/accounts/abc/registrar/registrations/example.com/registration-status`.
    #[serde(rename = "self")]
    pub self_link: String,
    /// The domain resource, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// `registrar-api_workflow-error`: a *string* code, unlike envelope codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowError {
    /// Machine-readable reason such as `registry_rejected`.
    pub code: String,
    /// Human-readable reason.
    pub message: String,
}

/// The workflow's `state`. A value this build does not know is kept verbatim in
/// [`WorkflowState::Unknown`] instead of failing the whole response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WorkflowState {
    /// Created, not yet processing.
    Pending,
    /// Processing; has an internal deadline.
    InProgress,
    /// Paused until the user acts; never resolves on its own.
    ActionRequired,
    /// Waiting on a third party (registry, losing registrar).
    Blocked,
    /// Terminal success.
    Succeeded,
    /// Terminal failure; see `error`.
    Failed,
    /// A state added upstream after this build.
    Unknown(String),
}

impl WorkflowState {
    /// Every state the spec documents, in workflow order.
    pub const KNOWN: [WorkflowState; 6] = [
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
            Self::Unknown(raw) => raw,
        }
    }

    /// Parses the wire spelling; never fails.
    pub fn from_wire(raw: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|state| state.as_str() == raw)
            .unwrap_or_else(|| Self::Unknown(raw.to_owned()))
    }

    /// `succeeded` and `failed`: the states the spec documents as terminal (the
    /// simulator derives `completed` from them; the gateway reads `completed`).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// `registrar-api_registration_create_request`, as the gateway sends it: only
/// `domain_name` is required; the upstream applies its defaults to the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationRequest {
    /// The domain to register (also the upstream's idempotency key).
    pub domain_name: String,
    /// Registration term, 1 to 10 years; the extension's minimum when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<u32>,
    /// Whether the domain renews automatically; `false` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_renew: Option<bool>,
    /// `redaction` or `off`; `redaction` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_mode: Option<String>,
    /// Contacts for this registration; the account's default address book entry
    /// when absent. Personal data: never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Contacts>,
}

/// The create request's `contacts`: each role optional.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Contacts {
    /// The domain's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrant: Option<Contact>,
    /// The administrative contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administrator: Option<Contact>,
    /// The technical contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technical: Option<Contact>,
    /// The billing contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Contact>,
}

/// Personal data is not printed: a request in a log or a panic shows no contact.
impl fmt::Debug for Contacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Contacts { .. }")
    }
}

/// One contact: `email`, `phone` (E.164 as `+1.5555555555`), `postal_info`, `fax`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Email address.
    pub email: String,
    /// Phone number, `+CC.NUMBER`.
    pub phone: String,
    /// Name and address.
    pub postal_info: PostalInfo,
    /// Fax number, `+CC.NUMBER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fax: Option<String>,
}

/// A contact's name, organisation and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalInfo {
    /// The person's name.
    pub name: String,
    /// The organisation, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The postal address.
    pub address: Address,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// State or province.
    pub state: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country_code: String,
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

impl<'de> Deserialize<'de> for WorkflowState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(Self::from_wire(&raw))
    }
}

/// `registrar-api_registration`: the domain resource, also carried in
/// `context.registration` of a succeeded registration workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The registered name.
    pub domain_name: String,
    /// `active`, `registration_pending`, `expired`, ... (kept as a string: the set grows).
    pub status: String,
    /// When the registration was created.
    pub created_at: DateTime<Utc>,
    /// Expiry; null only while `status` is `registration_pending`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the domain renews automatically.
    pub auto_renew: bool,
    /// `redaction` or `off`.
    pub privacy_mode: String,
    /// Whether the registrar lock is on.
    pub locked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_states_and_fields_decode_without_failing() {
        let body = r#"{"success":true,"errors":[],"messages":[],"result":{
            "state":"awaiting_registry_magic","completed":false,"surprise":1,
            "created_at":"2025-10-27T10:00:00Z","updated_at":"2025-10-27T10:00:12Z",
            "links":{"self":"/accounts/abc/registrar/registrations/example.com/registration-status"}}}"#;
        let envelope: Envelope<WorkflowStatus> = serde_json::from_str(body).unwrap();
        let status = envelope.result.unwrap();
        assert_eq!(
            status.state,
            WorkflowState::Unknown("awaiting_registry_magic".into())
        );
        assert_eq!(status.links.resource, None);
    }

    #[test]
    fn failure_bodies_without_messages_or_result_decode() {
        let body = r#"{"success":false,"errors":[{"code":9106,"message":"Missing X-Auth-Key, X-Auth-Email or Authorization headers"}]}"#;
        let envelope: Envelope<WorkflowStatus> = serde_json::from_str(body).unwrap();
        assert_eq!(envelope.errors[0].code, 9106);
        assert!(envelope.result.is_none());
    }
}
