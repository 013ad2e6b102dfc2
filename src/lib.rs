//! registrar-gateway: a GraphQL gateway in front of Cloudflare Registrar's
//! asynchronous registration workflows.
//!
//! The data path reads top to bottom:
//!
//! - [`domain`]: `DomainName` and `AccountId`, parsed once at the edge;
//! - [`upstream`]: the Cloudflare API wire model and client;
//! - [`simulator`]: a faithful, embeddable stand-in for that API (sandbox mode, tests, benchmarks).

pub mod domain;
pub mod simulator;
pub mod upstream;
