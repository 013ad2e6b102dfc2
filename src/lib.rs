//! registrar-gateway: a GraphQL gateway in front of Cloudflare Registrar's
//! asynchronous registration workflows.
//!
//! The data path reads top to bottom:
//!
//! - [`domain`]: `DomainName` and `AccountId`, parsed once at the edge;
//! - [`upstream`]: the Cloudflare API wire model and client;
//! - [`cache`]: per-state TTL cache with single-flight loading;
//! - [`access`]: gateway access keys and whose credential a request uses;
//! - [`registrations`]: the one read path (credential + account + cache);
//! - [`graphql`]: the schema;
//! - [`http`]: the axum server: GraphQL over HTTP, GraphiQL, health;
//! - [`startup`]: builds the whole from [`config`] and runs it;
//! - [`simulator`]: a faithful, embeddable stand-in for the upstream API (sandbox mode, tests, benchmarks).

pub mod access;
pub mod budget;
pub mod cache;
pub mod config;
pub mod domain;
pub mod graphql;
pub mod http;
pub mod poller;
pub mod registrations;
pub mod simulator;
pub mod startup;
pub mod telemetry;
pub mod upstream;
