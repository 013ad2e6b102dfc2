//! The Cloudflare Registrar API as the gateway sees it: the wire model shared with
//! the simulator, the HTTP client, credentials and the upstream error enum.

pub mod model;

pub use model::{
    ApiMessage, Envelope, Links, Registration, WorkflowError, WorkflowState, WorkflowStatus,
};
