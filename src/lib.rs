//! registrar-gateway: a GraphQL gateway in front of Cloudflare Registrar's
//! asynchronous registration workflows.
//!
//! The data path reads top to bottom:
//!
//! - [`cli`]: the binary's command line (the gateway or a subcommand);
//! - [`config`]: flags and environment, validated once at start-up, with the value
//!   parsers in [`flags`];
//! - [`domain`]: `DomainName` and `AccountId`, parsed once at the edge;
//! - [`credential`]: the upstream credential (a secret) and its keyed fingerprint;
//! - [`upstream`]: the Cloudflare API wire model, the client and its retries;
//! - [`shared`]: the Redis store replicas share (`--redis-url`), below everything that coordinates through it;
//! - [`budget`]: the per-credential upstream request budget every call goes through;
//! - [`cache`]: per-state TTL cache with single-flight loading and stale-if-error;
//! - [`poller`]: one shared poller per watched registration;
//! - [`access`]: gateway access keys and whose Cloudflare credential a request uses;
//! - [`registrations`]: the one read, watch and start path (credential, account, cache, pollers);
//! - [`graphql`]: the schema, its operation limits and its error codes;
//! - [`http`]: the axum server: GraphQL over HTTP and websockets, the GraphiQL explorer, health;
//! - [`startup`]: builds the whole from [`config`] and runs it; [`telemetry`]: logs and
//!   OpenTelemetry traces; [`metrics`]: the Prometheus metrics every layer above reports to;
//! - [`simulator`]: a faithful, embeddable stand-in for the upstream API (sandbox mode, tests, benchmarks).

pub mod access;
pub mod budget;
pub mod cache;
pub mod cli;
pub mod config;
pub mod credential;
pub mod domain;
pub mod flags;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod poller;
pub mod registrations;
pub mod shared;
pub mod simulator;
pub mod startup;
mod sync;
pub mod telemetry;
pub mod upstream;
