//! Starting the gateway for a test, in-process: [`TestApp::builder`], by default a
//! manual-clock simulator and the gateway on `127.0.0.1:0`, talking to each other
//! over real sockets; the builder's options cover a shared simulator, another
//! credential, pass-through, a stub upstream and sandbox mode.

use std::net::SocketAddr;

use registrar_gateway::config::GatewayConfig;
use registrar_gateway::graphql::GatewaySchema;
use registrar_gateway::poller::Pollers;
use registrar_gateway::startup::Application;
use registrar_simulator::SimulatorHandle;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{ACCOUNT, TOKEN, logs, spawn_simulator};

/// The spec's response media type.
pub(crate) const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// A running gateway (and the simulator behind it, if any); the gateway is told to
/// stop when dropped, before the simulator goes. Built by [`TestApp::builder`].
pub(crate) struct TestApp {
    pub address: SocketAddr,
    /// Where `/metrics` is served apart (`--metrics-listen`).
    pub metrics_address: Option<SocketAddr>,
    /// Where `/healthz` and `/readyz` are served apart (`--health-listen`).
    pub health_address: Option<SocketAddr>,
    pub pollers: Pollers,
    /// The gateway's GraphQL schema, for running operations in-process.
    pub schema: GatewaySchema,
    pub http: reqwest::Client,
    /// The test's simulator, the embedded one in sandbox mode, or none in front of a stub.
    simulator: Option<SimulatorHandle>,
    shutdown: CancellationToken,
    run: Option<JoinHandle<std::io::Result<()>>>,
}

/// Settings every test gateway gets unless the test sets its own: the test
/// account; retry backoffs are real time, so tiny; the upstream budget is large,
/// so only the tests about the budget meet it; and since every test client comes
/// from 127.0.0.1, one client may spend the whole budget, bring any number of
/// credentials and open any number of connections and websockets unless a test of
/// fair shares or client caps says otherwise.
const TEST_DEFAULTS: [(&str, &str); 8] = [
    ("--account-id", ACCOUNT),
    ("--upstream-retry-initial", "1ms"),
    ("--upstream-retry-max", "20ms"),
    ("--upstream-budget", "1000000"),
    ("--client-budget-share", "1"),
    ("--max-new-credentials-per-client", "1000000"),
    ("--max-connections-per-client", "1000000"),
    ("--max-websockets-per-client", "1000000"),
];

/// The one way a test starts a gateway in-process. By default: presenting
/// [`TOKEN`] (unless the test's arguments give an `--api-token-file`) to a fresh
/// manual-clock simulator, with [`TEST_DEFAULTS`] unless the test's arguments set them.
#[must_use = "a builder starts nothing until `spawn`"]
pub(crate) struct TestAppBuilder {
    in_front_of: InFrontOf,
    credential: OwnCredential,
    args: Vec<String>,
}

/// What the gateway talks to.
enum InFrontOf {
    /// A simulator started for this gateway.
    FreshSimulator,
    /// A simulator the test started (and may share between gateways).
    Simulator(SimulatorHandle),
    /// Anything else serving the API at this base URL (a stub).
    Url(String),
    /// Nothing configured: sandbox mode, the embedded simulator.
    Sandbox,
}

/// The credential the gateway presents upstream (a token unless the test's
/// arguments name an `--api-token-file`).
enum OwnCredential {
    /// `--api-token`.
    Token(String),
    /// None of its own: `--credential-mode pass-through`.
    PassThrough,
}

impl TestApp {
    /// Starts describing a gateway; [`TestAppBuilder::spawn`] starts it.
    pub(crate) fn builder() -> TestAppBuilder {
        TestAppBuilder {
            in_front_of: InFrontOf::FreshSimulator,
            credential: OwnCredential::Token(TOKEN.to_owned()),
            args: Vec::new(),
        }
    }
}

impl TestAppBuilder {
    /// Extra command-line arguments, after the builder's own (so they override them).
    pub(crate) fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|arg| (*arg).to_owned()));
        self
    }

    /// Presents `token` instead of [`TOKEN`].
    pub(crate) fn token(mut self, token: &str) -> Self {
        self.credential = OwnCredential::Token(token.to_owned());
        self
    }

    /// No credential of its own, passing callers' credentials through.
    pub(crate) fn pass_through(mut self) -> Self {
        self.credential = OwnCredential::PassThrough;
        self
    }

    /// In front of a simulator the test started, instead of a fresh one.
    pub(crate) fn simulator(mut self, simulator: SimulatorHandle) -> Self {
        self.in_front_of = InFrontOf::Simulator(simulator);
        self
    }

    /// In front of whatever serves the API at `base_url` (a stub); no simulator.
    pub(crate) fn upstream(mut self, base_url: &str) -> Self {
        self.in_front_of = InFrontOf::Url(base_url.to_owned());
        self
    }

    /// Configured with nothing but its listen address (and the test's arguments):
    /// sandbox mode, in front of its embedded simulator.
    pub(crate) fn sandbox(mut self) -> Self {
        self.in_front_of = InFrontOf::Sandbox;
        self
    }

    /// Builds the gateway and runs it in a task.
    pub(crate) async fn spawn(self) -> TestApp {
        let (simulator, base_url) = match self.in_front_of {
            InFrontOf::FreshSimulator => {
                let simulator = spawn_simulator().await.handle;
                let base_url = simulator.base_url();
                (Some(simulator), Some(base_url))
            }
            InFrontOf::Simulator(simulator) => {
                let base_url = simulator.base_url();
                (Some(simulator), Some(base_url))
            }
            InFrontOf::Url(base_url) => (None, Some(base_url)),
            InFrontOf::Sandbox => (None, None),
        };
        let token_file = self.args.iter().any(|arg| arg == "--api-token-file");
        let mut args: Vec<&str> = match &self.credential {
            OwnCredential::Token(_) if token_file => Vec::new(),
            OwnCredential::Token(token) => vec!["--api-token", token],
            OwnCredential::PassThrough => vec!["--credential-mode", "pass-through"],
        };
        args.extend(self.args.iter().map(String::as_str));
        let config = match &base_url {
            Some(base_url) => gateway_config(base_url, &args),
            None => {
                let mut sandbox = vec!["registrar-gateway", "--listen", "127.0.0.1:0"];
                sandbox.extend(self.args.iter().map(String::as_str));
                GatewayConfig::from_args(sandbox).expect("the sandbox's settings parse")
            }
        };
        logs::init();
        let app = Application::build(&config)
            .await
            .expect("the gateway starts");
        TestApp {
            address: app.local_addr(),
            metrics_address: app.metrics_addr(),
            health_address: app.health_addr(),
            pollers: app.pollers().clone(),
            schema: app.schema().clone(),
            http: reqwest::Client::new(),
            simulator: simulator.or_else(|| app.simulator().cloned()),
            shutdown: app.shutdown_token(),
            run: Some(tokio::spawn(app.run_until_stopped())),
        }
    }
}

/// Listening on `127.0.0.1:0`, in front of `base_url`, with [`TEST_DEFAULTS`]
/// unless `extra_args` sets them.
fn gateway_config(base_url: &str, extra_args: &[&str]) -> GatewayConfig {
    let mut args = vec![
        "registrar-gateway",
        "--listen",
        "127.0.0.1:0",
        "--base-url",
        base_url,
    ];
    for (flag, value) in TEST_DEFAULTS {
        if !extra_args.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend_from_slice(extra_args);
    GatewayConfig::from_args(args).expect("test settings parse")
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Starts the gateway's shutdown sequence, as SIGTERM does.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the gateway's run ends (then drops the simulator); panics if it failed.
    pub(crate) async fn stopped(mut self) {
        let run = self.run.take().expect("the gateway is awaited once");
        run.await
            .expect("the gateway's task completes")
            .expect("the gateway stops cleanly");
    }

    /// The simulator behind the gateway, if any (none in front of a stub).
    pub(crate) fn simulator_if_any(&self) -> Option<&SimulatorHandle> {
        self.simulator.as_ref()
    }

    /// The simulator behind the gateway; panics in front of a stub.
    pub(crate) fn simulator(&self) -> &SimulatorHandle {
        self.simulator_if_any()
            .expect("this gateway has a simulator behind it")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// POSTs a GraphQL request the way a spec-following client does; asserts HTTP 200.
    pub(crate) async fn query(&self, query: &str, variables: Value) -> Value {
        let response = self
            .post_json(json!({ "query": query, "variables": variables }))
            .await;
        assert_eq!(response.status(), 200, "GraphQL request failed over HTTP");
        response.json().await.expect("a JSON body")
    }

    /// POSTs a JSON body to /graphql accepting `application/graphql-response+json`.
    pub(crate) async fn post_json(&self, body: Value) -> reqwest::Response {
        self.post_json_with(&[], body).await
    }

    /// [`TestApp::post_json`] with extra request headers (credentials, access keys).
    pub(crate) async fn post_json_with(
        &self,
        headers: &[(&str, &str)],
        body: Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
            .header(CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(body.to_string())
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `registrationStatus(domain)` with every field, sent with `headers`; any HTTP status.
    pub(crate) async fn status_with(&self, headers: &[(&str, &str)], domain: &str) -> (u16, Value) {
        let body = json!({ "query": STATUS_QUERY, "variables": { "domain": domain } });
        let response = self.post_json_with(headers, body).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// [`TestApp::status_of`] for an owned name (convenient in `join_all`).
    pub(crate) async fn status_of_owned(&self, domain: String) -> Value {
        self.status_of(&domain).await
    }

    /// `registrationStatus(domain)` with every field selected.
    pub(crate) async fn status_of(&self, domain: &str) -> Value {
        self.query(STATUS_QUERY, json!({ "domain": domain })).await
    }

    /// Spends one of the upstream's requests for this gateway's credential from
    /// outside the gateway, as another client of the same token would.
    pub(crate) async fn spend_upstream_request_elsewhere(&self) {
        let url = format!(
            "{}/accounts/{ACCOUNT}/registrar/registrations/demo-succeeded.com/registration-status",
            self.simulator().base_url()
        );
        let response = self
            .http
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("the simulator answers");
        assert_eq!(response.status(), 200);
    }

    /// Upstream requests the simulator has received so far.
    pub(crate) fn upstream_calls(&self) -> u64 {
        self.simulator().stats().requests_total
    }
}

/// Every field of `RegistrationStatus`.
pub(crate) const STATUS_QUERY: &str = r#"
query Status($domain: String!, $accountId: ID) {
  registrationStatus(domain: $domain, accountId: $accountId) {
    domainName state rawState completed createdAt updatedAt
    links { self resource }
    context
    error { code message }
    actionRequired { action confirmationSentTo }
    registration { domainName status createdAt expiresAt autoRenew privacyMode locked }
    fetchedAt ageSeconds stale
  }
}"#;
