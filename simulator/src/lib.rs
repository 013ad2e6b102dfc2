//! A faithful, embeddable simulator of Cloudflare's registration workflow API.
//!
//! It serves the registrar routes under `/client/v4` over real HTTP (tests, the
//! gateway's sandbox mode, `registrar-gateway simulate`), with the platform's
//! envelopes, auth and rate-limit behaviour, and a control API under `/__sim/`.
//!
//! It depends on nothing of the gateway: its request parsing (`names`) and its
//! answers (`wire`) are its own, written from the API reference
//! (`docs/upstream-api.md`), so the gateway's client is tested against an
//! independent encoder.
//!
//! Layout: `config` (settings and flags) -> `server` (accept loop) -> `edge`
//! (counting, faults, rate-limit headers) -> `admission` (route, auth, rate limit)
//! -> `api` / `create` / `list` / `tokens` (routes) -> `store` of `workflow`s, each a
//! `scenario` on the `clock`. `control` drives the same [`SimulatorHandle`] tests
//! use in-process.

mod admission;
mod api;
mod auth;
mod clock;
mod config;
mod control;
mod create;
mod demo;
mod edge;
mod faults;
mod list;
mod names;
mod rate_limit;
mod reply;
mod scenario;
mod server;
mod stats;
mod store;
mod tokens;
mod wire;
mod workflow;

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use auth::credential_tag;
pub use clock::ClockError;
pub use config::{DEMO_RESTART_AFTER, SimulatorConfig, SimulatorError, SimulatorSettings};
pub use faults::{Faults, FaultsError};
pub use names::InvalidName;
pub use scenario::{ScenarioError, ScenarioSet};
pub use stats::Stats;
pub use store::StoreError;
pub use wire::{WorkflowError, WorkflowState};

use auth::RefusedCredentials;
use clock::WorkflowClock;
use faults::FaultInjector;
use names::{AccountId, DomainName};
use rate_limit::RateLimiter;
use stats::Counters;
use store::Store;

/// State shared by every request; one per simulator.
#[derive(Debug)]
pub(crate) struct SimulatorState {
    clock: WorkflowClock,
    store: Store,
    refused: RefusedCredentials,
    /// Accounts every credential is refused with 403 / 9109; read on every
    /// request, written by the control API.
    forbidden_accounts: parking_lot::RwLock<std::collections::HashSet<AccountId>>,
    limiter: RateLimiter,
    faults: FaultInjector,
    counters: Counters,
    sync_window: Duration,
    /// Whether statuses carry `context.credential_tag`.
    tag_credentials: bool,
    waiting_creates: WaitingCreates,
    /// Cancelled once, on shutdown: wakes hung requests and waiting creates.
    shutdown: CancellationToken,
}

/// How many creates are waiting out their sync window, so tests can advance the
/// clock exactly when one is waiting instead of sleeping.
#[derive(Debug)]
struct WaitingCreates(watch::Sender<usize>);

/// Counts one waiting create while alive.
struct Waiting<'a>(&'a WaitingCreates);

impl SimulatorState {
    fn is_forbidden(&self, account: &AccountId) -> bool {
        self.forbidden_accounts.read().contains(account)
    }
}

impl WaitingCreates {
    fn enter(&self) -> Waiting<'_> {
        self.0.send_modify(|count| *count += 1);
        Waiting(self)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0
            .0
            .send_modify(|count| *count = count.saturating_sub(1));
    }
}

/// A running simulator; clones are cheap and share it.
#[derive(Debug, Clone)]
pub struct SimulatorHandle {
    shared: Arc<SimulatorState>,
    local_addr: SocketAddr,
    server: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// Starts a simulator serving on `listener`.
pub async fn spawn(
    config: SimulatorSettings,
    listener: TcpListener,
) -> std::io::Result<SimulatorHandle> {
    let local_addr = listener.local_addr()?;
    let clock = if config.manual_clock {
        WorkflowClock::manual()
    } else {
        WorkflowClock::real()
    };
    let shared = Arc::new(SimulatorState {
        clock,
        store: Store::new(config.scenarios, config.max_workflows, config.demo_restart),
        refused: RefusedCredentials::new(config.refused_credentials),
        forbidden_accounts: Default::default(),
        limiter: RateLimiter::new(config.rate_limit),
        faults: FaultInjector::default(),
        counters: Counters::default(),
        sync_window: config.sync_window,
        tag_credentials: config.tag_credentials,
        waiting_creates: WaitingCreates(watch::Sender::new(0)),
        shutdown: CancellationToken::new(),
    });
    let mut handle = SimulatorHandle {
        shared: Arc::clone(&shared),
        local_addr,
        server: Arc::default(),
    };
    let task = tokio::spawn(server::serve(
        listener,
        handle.router(),
        shared.shutdown.clone(),
    ));
    handle.server = Arc::new(Mutex::new(Some(task)));
    Ok(handle)
}

impl SimulatorHandle {
    fn router(&self) -> Router {
        let api = api::router()
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&self.shared),
                edge::edge,
            ))
            .with_state(Arc::clone(&self.shared));
        Router::new()
            .nest("/__sim", control::router().with_state(self.clone()))
            .fallback_service(api)
    }

    /// The address the simulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The API base URL, e.g. `http://127.0.0.1:8787/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.local_addr, edge::API_PREFIX)
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Requests counted for (account, domain); 0 for names that do not parse.
    pub fn requests_for(&self, account: &str, domain: &str) -> u64 {
        self.shared.counters.requests_for(account, domain)
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        self.shared.counters.reset();
    }

    /// Replaces the fault settings (all off by default); restarts the share count.
    pub fn set_faults(&self, faults: Faults) -> Result<(), FaultsError> {
        self.shared.faults.set(faults, self.shared.clock.now())
    }

    /// The fault settings as last set.
    pub fn faults(&self) -> Faults {
        self.shared.faults.get()
    }

    /// The workflow clock's current time.
    pub fn clock_now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Moves the workflow clock forward, waking creates waiting on it; refuses
    /// more than ten years at once, or past the year 9999.
    pub fn advance_clock(&self, by: Duration) -> Result<(), ClockError> {
        self.shared.clock.advance(by)
    }

    /// The user acted on an `action_required` workflow: it moves on to its next step.
    pub fn resolve_action(&self, account: &str, domain: &str) -> Result<(), StoreError> {
        let (account, domain) = parse_names(account, domain)?;
        self.shared
            .store
            .resolve(&account, &domain, self.shared.clock.now())?;
        self.shared.clock.wake();
        Ok(())
    }

    /// Starts scenario `scenario` for (account, domain), replacing any workflow there.
    pub fn add_workflow(
        &self,
        account: &str,
        domain: &str,
        scenario: &str,
    ) -> Result<(), StoreError> {
        let (account, domain) = parse_names(account, domain)?;
        self.shared
            .store
            .add(&account, &domain, scenario, self.shared.clock.now())
    }

    /// Answers this bearer token or API key with 403 from now on.
    pub fn refuse_credential(&self, credential: impl Into<String>) {
        self.shared.refused.refuse(credential.into());
    }

    /// Accepts every well-formed credential again.
    pub fn accept_all_credentials(&self) {
        self.shared.refused.clear();
    }

    /// Answers every request for `accounts` with 403 / 9109 ("Unauthorized to access
    /// requested resource": a credential without access to the account), replacing
    /// the previous set; an empty set gives access again.
    pub fn set_forbidden_accounts<'a>(
        &self,
        accounts: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), InvalidName> {
        let accounts = accounts
            .into_iter()
            .map(AccountId::parse)
            .collect::<Result<_, _>>()?;
        *self.shared.forbidden_accounts.write() = accounts;
        Ok(())
    }

    /// The refused tokens and keys.
    pub fn refused_credentials(&self) -> Vec<String> {
        self.shared.refused.list()
    }

    /// Resolves once at least `count` creates are waiting out their sync window.
    pub async fn creates_waiting(&self, count: usize) {
        let mut waiting = self.shared.waiting_creates.0.subscribe();
        // Err only if the sender is gone, which cannot happen while `self` holds it.
        let _ = waiting.wait_for(|waiting| *waiting >= count).await;
    }

    /// Stops accepting, wakes hung requests and waits for connections to finish.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        let task = self.server.lock().take();
        if let Some(task) = task
            && let Err(err) = task.await
        {
            tracing::warn!(error = %err, "simulator server task failed");
        }
    }
}

/// An account id and a domain name from a caller of the handle or the control API.
fn parse_names(account: &str, domain: &str) -> Result<(AccountId, DomainName), InvalidName> {
    Ok((AccountId::parse(account)?, DomainName::parse(domain)?))
}

/// Runs the simulator as a process: binds `listen`, logs the address and demo
/// domains, and serves until `shutdown` resolves (the binary's Ctrl-C / SIGTERM).
pub async fn run_standalone(
    config: SimulatorSettings,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimulatorError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| SimulatorError::Bind {
            addr: listen,
            source,
        })?;
    let demos: Vec<String> = config
        .scenarios
        .demos()
        .filter_map(|scenario| Some(format!("{} ({})", scenario.domain.as_ref()?, scenario.name)))
        .collect();
    let handle = spawn(config, listener)
        .await
        .map_err(|source| SimulatorError::Bind {
            addr: listen,
            source,
        })?;
    tracing::info!(base_url = %handle.base_url(), control = %format!("http://{}/__sim", handle.local_addr()), "simulator listening");
    tracing::info!(domains = %demos.join(", "), "demo domains, present in every account");
    shutdown.await;
    tracing::info!("simulator shutting down");
    handle.shutdown().await;
    Ok(())
}
