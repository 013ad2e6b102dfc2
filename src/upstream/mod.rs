//! The Cloudflare Registrar API as the gateway sees it: the wire model shared with
//! the simulator, the HTTP client and the upstream error enum (the credential it
//! sends lives in [`crate::credential`]).

mod api;
mod error;
pub mod model;
mod refused;
mod retry;

pub use api::{ApiBuildError, ApiSettings, CloudflareApi, RegistrarApi};
pub use error::UpstreamError;
pub use model::{
    ApiMessage, Envelope, Links, Registration, RegistrationRequest, WorkflowError, WorkflowState,
    WorkflowStatus,
};
pub use retry::RetryPolicy;
