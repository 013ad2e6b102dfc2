//! Starting the gateway for a test: a manual-clock simulator and the gateway on
//! `127.0.0.1:0`, talking to each other over real sockets.

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

/// A running gateway and the simulator behind it; both stop when dropped.
pub(crate) struct TestApp {
    /// First, so the gateway is told to stop before the simulator goes.
    gateway: RunningGateway,
    pub address: SocketAddr,
    /// Where `/metrics` is served apart (`--metrics-listen`).
    pub metrics_address: Option<SocketAddr>,
    /// Where `/healthz` and `/readyz` are served apart (`--health-listen`).
    pub health_address: Option<SocketAddr>,
    pub simulator: SimulatorHandle,
    pub pollers: Pollers,
    /// The gateway's GraphQL schema, for running operations in-process.
    pub schema: GatewaySchema,
    pub http: reqwest::Client,
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

/// A gateway with default settings in front of a fresh simulator.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A gateway with extra command-line settings in front of a fresh simulator.
pub(crate) async fn spawn_app_with(extra_args: &[&str]) -> TestApp {
    let simulator = spawn_simulator().await.handle;
    spawn_gateway(simulator, TOKEN, extra_args).await
}

/// A gateway presenting `token` to an existing simulator.
pub(crate) async fn spawn_gateway(
    simulator: SimulatorHandle,
    token: &str,
    extra_args: &[&str],
) -> TestApp {
    let mut args = vec!["--api-token", token];
    args.extend_from_slice(extra_args);
    spawn_gateway_with_args(simulator, &args).await
}

/// A gateway without a credential of its own, passing callers' credentials through.
pub(crate) async fn spawn_pass_through(simulator: SimulatorHandle, extra_args: &[&str]) -> TestApp {
    let mut args = vec!["--credential-mode", "pass-through"];
    args.extend_from_slice(extra_args);
    spawn_gateway_with_args(simulator, &args).await
}

/// A gateway with exactly these settings (and [`TEST_DEFAULTS`]): no token of the tests'.
pub(crate) async fn spawn_gateway_with_args(
    simulator: SimulatorHandle,
    extra_args: &[&str],
) -> TestApp {
    let config = gateway_config(&simulator.base_url(), extra_args);
    let gateway = start_gateway(&config).await;
    TestApp {
        address: gateway.address,
        metrics_address: gateway.metrics_address,
        health_address: gateway.health_address,
        pollers: gateway.pollers.clone(),
        schema: gateway.schema.clone(),
        gateway,
        simulator,
        http: reqwest::Client::new(),
    }
}

/// The one way a test gateway is configured: listening on `127.0.0.1:0`, in
/// front of `base_url`, with [`TEST_DEFAULTS`] unless `extra_args` sets them.
pub(crate) fn gateway_config(base_url: &str, extra_args: &[&str]) -> GatewayConfig {
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

/// A gateway configured with nothing but its listen address: sandbox mode, in
/// front of its embedded simulator.
pub(crate) async fn spawn_sandbox() -> RunningGateway {
    let args = ["registrar-gateway", "--listen", "127.0.0.1:0"];
    start_gateway(&GatewayConfig::from_args(args).expect("the listen address parses")).await
}

/// A gateway started by [`start_gateway`]; told to stop when dropped.
pub(crate) struct RunningGateway {
    pub address: SocketAddr,
    pub metrics_address: Option<SocketAddr>,
    pub health_address: Option<SocketAddr>,
    pub pollers: Pollers,
    pub schema: GatewaySchema,
    /// The embedded simulator, in sandbox mode.
    pub sandbox: Option<SimulatorHandle>,
    shutdown: CancellationToken,
    run: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Builds the gateway from `config` and runs it in a task.
pub(crate) async fn start_gateway(config: &GatewayConfig) -> RunningGateway {
    logs::init();
    let app = Application::build(config)
        .await
        .expect("the gateway starts");
    RunningGateway {
        address: app.local_addr(),
        metrics_address: app.metrics_addr(),
        health_address: app.health_addr(),
        pollers: app.pollers().clone(),
        schema: app.schema().clone(),
        sandbox: app.simulator().cloned(),
        shutdown: app.shutdown_token(),
        run: Some(tokio::spawn(app.run_until_stopped())),
    }
}

impl RunningGateway {
    /// Starts the shutdown sequence, as SIGTERM does.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the gateway's run ends; panics if it failed.
    pub(crate) async fn stopped(&mut self) {
        let run = self.run.take().expect("the gateway is awaited once");
        run.await
            .expect("the gateway's task completes")
            .expect("the gateway stops cleanly");
    }
}

impl TestApp {
    /// Starts the gateway's shutdown sequence, as SIGTERM does.
    pub(crate) fn begin_shutdown(&self) {
        self.gateway.begin_shutdown();
    }

    /// Waits until the gateway's run ends (then drops the simulator); panics if it failed.
    pub(crate) async fn stopped(mut self) {
        self.gateway.stopped().await;
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
            self.simulator.base_url()
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
        self.simulator.stats().requests_total
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
