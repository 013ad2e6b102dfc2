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
//! - [`store`]: the Redis store replicas share (`--redis-url`), below everything that coordinates through it;
//! - [`budget`]: the per-credential upstream request budget every call goes through;
//! - [`cache`]: per-state TTL cache with single-flight loading and stale-if-error;
//! - [`poller`]: one shared poller per watched registration (with [`store`], one across all
//!   replicas: a lease, a fenced event stream, followers republishing it);
//! - [`access`]: gateway access keys (and the throttle on addresses guessing them) and whose
//!   Cloudflare credential a request uses;
//! - [`fair_share`]: who a client is, and its share of lookups, subscriptions, credentials,
//!   connections and websockets;
//! - [`registrations`]: the one read, watch and start path (credential, account, cache, pollers);
//! - [`graphql`]: the schema, its operation limits and its error codes; documents parsed once
//!   per text, persisted queries; the compiled path of the query clients repeat most
//!   (`registrationStatus` answered from a plan, without async-graphql, on every transport:
//!   [`graphql::GatewaySchema::answer`] decides); subscriptions sharing one execution per
//!   distinct request (fan-out);
//! - [`http`]: the axum server, transport only: GraphQL over HTTP (media types, the encoding of
//!   a response), SSE and multipart streams, websockets, the GraphiQL explorer, health;
//! - [`startup`]: builds the whole from [`config`] and runs it; [`telemetry`]: logs and
//!   OpenTelemetry traces; [`metrics`]: the Prometheus metrics every layer above reports to;
//! - [`watch`]: a client of a running gateway, `registrar-gateway watch <domain>`, for shells and CI jobs.
//!
//! The upstream simulator (sandbox mode, `simulate`, tests, benchmarks) is a crate of its own,
//! `registrar-simulator` (`simulator/`), with its own wire model written from the API reference.
//!
//! # Vocabulary
//!
//! One name per idea, used the same way in every module:
//!
//! - **credential**: a [`credential::CredentialSecret`] is the secret itself, in one of the two
//!   schemes Cloudflare accepts; a [`credential::Credential`] is that secret with its keyed
//!   [`credential::Fingerprint`], the handle every layer passes around and keys data by.
//!   A credential a caller sends is *presented* ([`access::Presented`]; the simulator's
//!   `PresentedCredential`).
//! - **workflow state / status**: [`upstream::WorkflowState`] is the one state enum; a
//!   [`upstream::WorkflowStatus`] is one poll's answer. `graphql::types::X` is the GraphQL view
//!   of `upstream::X` (`WorkflowState`, `Registration`), named alike on purpose.
//! - **registration**: one domain's registration workflow; [`upstream::Registration`] is the
//!   registered domain resource; [`registrations::RegistrationService`] reads, watches and starts
//!   them.
//! - **poller, watcher**: one [`poller`] task polls one registration for one credential; each
//!   subscriber holds a [`poller::Watcher`] of it. A poller stops for a [`poller::PollerEnd`]; the
//!   ones a watcher must be told of reach it as a [`poller::WatchError`]. The [`watch`]
//!   subcommand is a client of a gateway's subscription, not a watcher of its own.
//! - **`*Config` and `*Settings`**: a `*Config` is a clap section (flags and environment, in
//!   [`config`], and the simulator's `SimulatorConfig`); a `*Settings` is the runtime
//!   value a component is built from, which its `*Config` converts itself into.
//! - **client**: who fair shares count, a [`fair_share::ClientId`]: the gateway access key a
//!   caller presented, else its address (through trusted proxies); one client may open many
//!   connections and send many requests. The upstream is reached through the
//!   [`upstream::CloudflareApi`] handle, never called a client.
//! - **share**: a fair share only ([`fair_share`]: a client's share of lookups,
//!   subscriptions and credentials). While Redis is unreachable a replica spends its
//!   *outage allowance* of the budget (a slice of it, cut by the replica count).
//! - **budget, reserve, allowance, turn**: the *budget* is what the upstream allows one
//!   credential per window (`--upstream-budget`); the *reserve* is the part of it kept for
//!   the user's other use of Cloudflare (`--budget-reserve`); the *allowance* is the rest,
//!   what the gateway spends. A request that finds no room waits its *turn* in the
//!   credential's *line* ([`budget::Budget::turn`]): queries first, then polls in rotation.
//! - **store**: the Redis store replicas coordinate through ([`store::RedisStore`],
//!   `--redis-url`); what lives in it is named for Redis (`RedisBudget`, the cache's
//!   `RedisLevel`). "Shared" is only the plain verb ("pollers shared by replicas").
//! - **fan-out**: one execution of a subscription whose results many subscribers
//!   receive (`graphql::fanout`); each result is a [`graphql::FanoutResponse`], pushed
//!   to a [`graphql::Recipient`] or read from a broadcast.
//! - **admitted**: a caller the access policy let in is an [`access::AdmittedCaller`];
//!   a document parsed and measured once per text is a [`graphql::AdmittedDocument`].
//! - **reconcile**: after a registration POST whose answer was lost, read the domain's status
//!   (the domain is the idempotency key) instead of posting again
//!   ([`upstream::UpstreamError::leaves_create_unknown`]).
//! - **`*State`**: the private state behind a cheap-to-clone handle's `Arc`
//!   (`Pollers` -> `PollersState`, `Budget` -> `BudgetState`, `FairShare` -> `FairShareState`, the
//!   simulator's `SimulatorState`).

pub mod access;
pub mod budget;
pub mod cache;
pub mod cli;
pub mod config;
pub mod credential;
pub mod domain;
pub mod fair_share;
pub mod flags;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod poller;
pub mod registrations;
pub mod startup;
pub mod store;
mod sync;
pub mod telemetry;
pub mod upstream;
pub mod watch;
