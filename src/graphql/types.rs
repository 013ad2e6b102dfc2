//! GraphQL object types mirroring the upstream's `WorkflowStatus` in GraphQL
//! conventions, plus what front ends need without digging in JSON.

use std::sync::Arc;

use async_graphql::{Enum, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::cache::Served;
use crate::domain::DomainName;
use crate::upstream::{self, WorkflowStatus};

// The GraphQL view of `upstream::WorkflowState`, the gateway's one definition of the
// states (a comment, not a doc comment: doc comments become the schema's
// descriptions). It cannot be derived from it with async-graphql's
// `#[graphql(remote = ...)]`, which maps unit variants one to one: the upstream enum
// keeps an unknown state's spelling (`Unknown(String)`, served as `rawState` and
// replayed by the simulator), and a GraphQL enum value carries no data. The one
// conversion is the `From` below; a state added upstream fails to compile there.
/// A registration workflow's state.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WorkflowState {
    /// Created, not yet processing.
    Pending,
    /// Processing; the workflow has an internal deadline.
    InProgress,
    /// Paused until the user acts (see `actionRequired`); never resolves on its own.
    ActionRequired,
    /// Waiting on a third party such as the registry; may take hours.
    Blocked,
    /// Terminal: the domain is registered (see `registration`).
    Succeeded,
    /// Terminal: see `error`. Do not retry without review.
    Failed,
    /// A state this gateway does not know yet; `rawState` has the upstream's value.
    /// `completed` says whether it is the end: a completed one ends subscriptions and
    /// is never polled again; one not completed is followed like an active state.
    Unknown,
}

impl From<&upstream::WorkflowState> for WorkflowState {
    fn from(state: &upstream::WorkflowState) -> Self {
        use upstream::WorkflowState as Wire;
        match state {
            Wire::Pending => Self::Pending,
            Wire::InProgress => Self::InProgress,
            Wire::ActionRequired => Self::ActionRequired,
            Wire::Blocked => Self::Blocked,
            Wire::Succeeded => Self::Succeeded,
            Wire::Failed => Self::Failed,
            Wire::Unknown(_) => Self::Unknown,
        }
    }
}

/// The status of one registration workflow, as last fetched from Cloudflare.
pub struct RegistrationStatus {
    domain: DomainName,
    status: Arc<WorkflowStatus>,
    fetched_at: DateTime<Utc>,
    stale: bool,
    next_check_at: Option<DateTime<Utc>>,
}

impl RegistrationStatus {
    /// The GraphQL view of a served snapshot; `None` when the upstream has no workflow.
    /// `next_check_at` is the poller's plan for this registration, if one runs.
    pub fn from_served(
        domain: DomainName,
        served: &Served,
        next_check_at: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        let status = served.snapshot.status.clone()?;
        let mut view = Self::new(domain, status, served.snapshot.fetched_at, next_check_at);
        view.stale = served.stale;
        Some(view)
    }

    /// The GraphQL view of a status fetched at `fetched_at` (fresh: a poller's result).
    pub fn new(
        domain: DomainName,
        status: Arc<WorkflowStatus>,
        fetched_at: DateTime<Utc>,
        next_check_at: Option<DateTime<Utc>>,
    ) -> Self {
        let next_check_at = next_check_at.filter(|_| !status.completed);
        Self {
            domain,
            status,
            fetched_at,
            stale: false,
            next_check_at,
        }
    }

    fn context_str(&self, key: &str) -> Option<String> {
        let value = self.status.context.as_ref()?.get(key)?;
        value.as_str().map(str::to_owned)
    }

    // What each field answers, for the resolvers below and for the compiled query
    // path ([`super::compiled`]), which writes the same values without them.

    /// The normalised domain name.
    pub(super) fn domain(&self) -> &DomainName {
        &self.domain
    }

    /// The upstream's workflow status.
    pub(super) fn workflow(&self) -> &WorkflowStatus {
        &self.status
    }

    /// `state`.
    pub(super) fn state_value(&self) -> WorkflowState {
        (&self.status.state).into()
    }

    /// `actionRequired`.
    pub(super) fn action_required_value(&self) -> Option<ActionRequired> {
        (self.status.state == upstream::WorkflowState::ActionRequired).then(|| ActionRequired {
            action: self.context_str("action"),
            confirmation_sent_to: self.context_str("confirmation_sent_to"),
        })
    }

    /// `blocked`.
    pub(super) fn blocked_value(&self) -> Option<Blocked> {
        (self.status.state == upstream::WorkflowState::Blocked).then(|| Blocked {
            blocked_by: self.context_str("blocked_by"),
            detail: self.context_str("detail"),
        })
    }

    /// `nextCheckAt`.
    pub(super) fn next_check_at_value(&self) -> Option<DateTime<Utc>> {
        self.next_check_at
    }

    /// `registration`.
    pub(super) fn registration_value(&self) -> Option<Registration> {
        let value = self.status.context.as_ref()?.get("registration")?;
        serde_json::from_value(value.clone()).ok().map(Registration)
    }

    /// `fetchedAt`.
    pub(super) fn fetched_at_value(&self) -> DateTime<Utc> {
        self.fetched_at
    }

    /// `ageSeconds`, read now.
    pub(super) fn age_seconds_value(&self) -> f64 {
        let age = Utc::now() - self.fetched_at;
        age.num_milliseconds().max(0) as f64 / 1000.0
    }

    /// `stale`.
    pub(super) fn stale_value(&self) -> bool {
        self.stale
    }
}

#[Object]
impl RegistrationStatus {
    /// The normalised domain name (lowercase, punycode, no trailing dot).
    async fn domain_name(&self) -> &str {
        self.domain.as_str()
    }

    /// Where the workflow is.
    async fn state(&self) -> WorkflowState {
        self.state_value()
    }

    /// The upstream's `state` value verbatim, useful when `state` is `UNKNOWN`.
    async fn raw_state(&self) -> &str {
        self.status.state.as_str()
    }

    /// True once the workflow has ended (succeeded, failed, or a state this gateway
    /// does not know that Cloudflare marks completed); it will not change again.
    async fn completed(&self) -> bool {
        self.status.completed
    }

    /// When the workflow started.
    async fn created_at(&self) -> DateTime<Utc> {
        self.status.created_at
    }

    /// When the state last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.status.updated_at
    }

    /// Upstream API paths (relative to the API root) for this status and the domain.
    async fn links(&self) -> WorkflowLinks {
        WorkflowLinks {
            self_link: self.status.links.self_link.clone(),
            resource: self.status.links.resource.clone(),
        }
    }

    /// The upstream's workflow-specific `context` object, verbatim.
    async fn context(&self) -> Option<Json<Map<String, Value>>> {
        self.status.context.clone().map(Json)
    }

    /// The upstream's workflow error, passed on whenever it sends one: Cloudflare
    /// documents it for `FAILED` (why the workflow failed), but does not rule it out
    /// for other states, so read it together with `state`.
    async fn error(&self) -> Option<WorkflowError> {
        self.status.error.as_ref().map(|error| WorkflowError {
            code: error.code.clone(),
            message: error.message.clone(),
        })
    }

    /// What the user must do; only when `state` is `ACTION_REQUIRED`.
    async fn action_required(&self) -> Option<ActionRequired> {
        self.action_required_value()
    }

    /// Who the workflow waits on and what to tell the user; only when `state` is
    /// `BLOCKED` (the upstream asks front ends to inform the user of the delay).
    async fn blocked(&self) -> Option<Blocked> {
        self.blocked_value()
    }

    /// When the gateway will next ask Cloudflare about this registration (its shared
    /// poller's plan), so a UI can say "checking again in 40 s"; null once it will
    /// not: the workflow completed or waits for the user, or nobody watches it.
    async fn next_check_at(&self) -> Option<DateTime<Utc>> {
        self.next_check_at_value()
    }

    /// The registered domain; only when `state` is `SUCCEEDED` and the upstream sent it.
    async fn registration(&self) -> Option<Registration> {
        self.registration_value()
    }

    /// When the gateway fetched this status from Cloudflare.
    async fn fetched_at(&self) -> DateTime<Utc> {
        self.fetched_at_value()
    }

    /// Seconds since `fetchedAt`: how old this view of the workflow is.
    async fn age_seconds(&self) -> f64 {
        self.age_seconds_value()
    }

    /// True when this status is past its freshness and served only because Cloudflare
    /// could not be asked for a newer one (unavailable, slow or rate limited);
    /// `fetchedAt` and `ageSeconds` say how old it is.
    async fn stale(&self) -> bool {
        self.stale_value()
    }
}

/// Upstream API paths, relative to the API root (no `/client/v4`).
#[derive(SimpleObject)]
pub(super) struct WorkflowLinks {
    /// This status resource.
    #[graphql(name = "self")]
    self_link: String,
    /// The domain resource.
    resource: Option<String>,
}

/// A failed workflow's reason (a string code, unlike HTTP error codes).
#[derive(SimpleObject)]
pub(super) struct WorkflowError {
    /// Machine-readable reason, e.g. `registry_rejected`.
    code: String,
    /// Human-readable reason.
    message: String,
}

/// The user action a paused workflow waits for.
#[derive(SimpleObject)]
pub(super) struct ActionRequired {
    /// `context.action`, e.g. `registrant_email_confirmation_pending`.
    pub(super) action: Option<String>,
    /// `context.confirmation_sent_to`: the (masked) address a confirmation went to.
    pub(super) confirmation_sent_to: Option<String>,
}

/// Why a blocked workflow cannot move: a third party such as the registry.
#[derive(SimpleObject)]
pub(super) struct Blocked {
    /// `context.blocked_by`, e.g. `registry`.
    pub(super) blocked_by: Option<String>,
    /// `context.detail`: the upstream's text for the user, e.g. `Awaiting registry
    /// confirmation. This may take up to 24 hours.`
    pub(super) detail: Option<String>,
}

/// A registered domain (the upstream's Registration resource).
pub(super) struct Registration(pub(super) upstream::Registration);

#[Object]
impl Registration {
    /// The registered name.
    async fn domain_name(&self) -> &str {
        &self.0.domain_name
    }

    /// `active`, `registration_pending`, `expired`, ... (open-ended).
    async fn status(&self) -> &str {
        &self.0.status
    }

    /// When the registration was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Expiry; null only while the registration is pending.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// Whether the domain renews automatically.
    async fn auto_renew(&self) -> bool {
        self.0.auto_renew
    }

    /// `redaction` or `off`.
    async fn privacy_mode(&self) -> &str {
        &self.0.privacy_mode
    }

    /// Whether the registrar lock is on.
    async fn locked(&self) -> bool {
        self.0.locked
    }
}
