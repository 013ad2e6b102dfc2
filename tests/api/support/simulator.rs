//! Starting a simulator for a test and talking to it like a client would.

use std::time::Duration;

use registrar_simulator::{self as simulator, SimulatorHandle, SimulatorSettings};
use reqwest::{Client, Response};
use serde_json::Value;
use tokio::net::TcpListener;

use super::{ACCOUNT, TOKEN, logs};

/// A running simulator and an HTTP client for it.
pub(crate) struct TestSimulator {
    pub handle: SimulatorHandle,
    pub client: Client,
}

/// A simulator with the default settings and a manual clock.
pub(crate) async fn spawn_simulator() -> TestSimulator {
    spawn_simulator_with(SimulatorSettings::default()).await
}

/// A simulator with `config` and a manual clock.
pub(crate) async fn spawn_simulator_with(config: SimulatorSettings) -> TestSimulator {
    logs::init();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let handle = simulator::spawn(config.manual_clock(), listener)
        .await
        .expect("simulator starts");
    TestSimulator {
        handle,
        client: client(Duration::from_secs(10)),
    }
}

/// A client with a request timeout.
pub(crate) fn client(timeout: Duration) -> Client {
    Client::builder()
        .timeout(timeout)
        .build()
        .expect("client builds")
}

/// `/accounts/{account}/registrar/registrations/{domain}/registration-status`.
pub(crate) fn status_path(account: &str, domain: &str) -> String {
    format!("/accounts/{account}/registrar/registrations/{domain}/registration-status")
}

impl TestSimulator {
    /// An absolute URL for an API path (relative to `/client/v4`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// A control-API URL.
    pub(crate) fn control_url(&self, path: &str) -> String {
        format!("http://{}/__sim{path}", self.handle.local_addr())
    }

    /// GET an API path with the test bearer token.
    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request answered")
    }

    /// GET a domain's registration status in the test account.
    pub(crate) async fn status(&self, domain: &str) -> Response {
        self.get(&status_path(ACCOUNT, domain)).await
    }

    /// The status `result`, asserting a 200 success envelope.
    pub(crate) async fn status_result(&self, domain: &str) -> Value {
        let response = self.status(domain).await;
        assert_eq!(response.status(), 200, "status of {domain}");
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(body["success"], true);
        assert_eq!(body["errors"], Value::Array(vec![]));
        assert_eq!(body["messages"], Value::Array(vec![]));
        body["result"].clone()
    }

    pub(crate) fn advance(&self, seconds: u64) {
        self.handle
            .advance_clock(Duration::from_secs(seconds))
            .expect("the clock advances");
    }

    /// Stops the simulator and waits for its tasks.
    pub(crate) async fn stop(self) {
        self.handle.shutdown().await;
    }
}

/// Reads a response as (status, JSON body).
pub(crate) async fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

/// A header as a string, if present.
pub(crate) fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}
