//! The Cloudflare Registrar API as the gateway sees it: its wire model, the HTTP client and the upstream error enum (the credential it
//! sends lives in [`crate::credential`]).

mod api;
mod error;
pub mod model;
mod refused;
mod retry;
mod verify;

pub use api::{ApiBuildError, ApiSettings, CloudflareApi, RegistrarApi};
pub use error::UpstreamError;
pub use model::{
    Address, ApiMessage, Contact, Contacts, Envelope, Links, PostalInfo, Registration,
    RegistrationRequest, WorkflowError, WorkflowState, WorkflowStatus,
};
pub use retry::RetryPolicy;
pub use verify::{TokenRejected, verify_token};
