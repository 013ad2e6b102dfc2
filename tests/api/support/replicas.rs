//! Gateway *processes* for the scaling-out tests: N replicas of the real binary
//! (`CARGO_BIN_EXE_registrar-gateway`) against one simulator and one Redis, each on
//! `127.0.0.1:0` (the bound address read from its JSON start-up log line), killable
//! with SIGKILL as a crash. Their logs are kept, so a test can wait for a line
//! (a warning, a takeover) instead of sleeping.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use super::{ACCOUNT, STATUS_QUERY, TOKEN, TestRedis};
use registrar_simulator::SimulatorHandle;

/// Settings every replica gets unless the test passes its own (as [`super::TestApp::builder`]'s).
const REPLICA_DEFAULTS: [(&str, &str); 7] = [
    ("--upstream-retry-initial", "1ms"),
    ("--upstream-retry-max", "20ms"),
    ("--upstream-budget", "1000000"),
    // Every test client comes from 127.0.0.1: one client may spend the whole budget
    // (main's fair shares, as in TEST_DEFAULTS).
    ("--client-budget-share", "1"),
    ("--max-new-credentials-per-client", "1000000"),
    ("--redis-heartbeat", "100ms"),
    ("--redis-timeout", "1s"),
];

/// One gateway process; SIGKILLed when dropped.
pub(crate) struct Replica {
    child: Child,
    /// Where it serves GraphQL (and `/metrics`).
    pub address: SocketAddr,
    logs: Logs,
    http: reqwest::Client,
}

/// A replica's log lines (JSON), and a signal on each new one.
#[derive(Clone, Default)]
pub(super) struct Logs {
    lines: Arc<Mutex<Vec<Value>>>,
    added: Arc<Notify>,
}

/// Starts `count` replicas presenting the test token to `simulator`, sharing `redis`,
/// each with `extra_args` (which override [`REPLICA_DEFAULTS`]).
pub(crate) async fn spawn_replicas(
    count: usize,
    simulator: &SimulatorHandle,
    redis: &TestRedis,
    extra_args: &[&str],
) -> Vec<Replica> {
    let mut replicas = Vec::with_capacity(count);
    for _ in 0..count {
        replicas.push(spawn_replica(simulator, redis, extra_args).await);
    }
    replicas
}

/// Starts one replica (see [`spawn_replicas`]).
pub(crate) async fn spawn_replica(
    simulator: &SimulatorHandle,
    redis: &TestRedis,
    extra_args: &[&str],
) -> Replica {
    let mut child = replica_command(simulator, &redis.url(), extra_args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway binary starts");
    let logs = Logs::default();
    let stderr = child.stderr.take().expect("piped stderr");
    tokio::spawn(collect(stderr, logs.clone()));
    let listening = logs
        .wait_for(0, Duration::from_secs(30), |line| {
            line["message"] == "registrar-gateway listening"
        })
        .await
        .unwrap_or_else(|| panic!("the replica never said it was listening: {:?}", logs.all()));
    let address = listening["address"]
        .as_str()
        .and_then(|address| address.parse().ok())
        .expect("the listening line names the address");
    Replica {
        child,
        address,
        logs,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client builds"),
    }
}

/// Runs a replica that must refuse to start (with `redis_url` as `REDIS_URL`) until
/// it exits (within 20 s); answers its exit status and everything it printed.
pub(crate) async fn start_refused(
    simulator: &SimulatorHandle,
    redis_url: &str,
    extra_args: &[&str],
) -> (std::process::ExitStatus, String) {
    let run = replica_command(simulator, redis_url, extra_args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the replica gave up within 20 s")
        .expect("the gateway binary runs");
    let printed = [output.stdout, output.stderr].concat();
    (
        output.status,
        String::from_utf8_lossy(&printed).into_owned(),
    )
}

/// The gateway binary with the replica's flags and environment (secrets through
/// the environment, as an operator would pass them).
fn replica_command(simulator: &SimulatorHandle, redis_url: &str, extra_args: &[&str]) -> Command {
    let mut args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--base-url",
        &simulator.base_url(),
        "--account-id",
        ACCOUNT,
    ]
    .map(str::to_owned)
    .to_vec();
    for (flag, value) in REPLICA_DEFAULTS {
        if !extra_args.contains(&flag) {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
    }
    args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_registrar-gateway"));
    command
        .args(&args)
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("REDIS_URL", redis_url)
        .env("RUST_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null());
    command
}

/// Reads JSON log lines into `logs` until the process closes stderr.
pub(super) async fn collect(stderr: tokio::process::ChildStderr, logs: Logs) {
    let echo = std::env::var_os("TEST_LOG").is_some();
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            eprintln!("{line}");
        }
        let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
        logs.lines.lock().unwrap().push(value);
        logs.added.notify_waiters();
    }
}

impl Logs {
    /// The first line from the `skip`th on (already logged or to come within
    /// `limit`) matching `matches`.
    pub(super) async fn wait_for(
        &self,
        skip: usize,
        limit: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        tokio::time::timeout(limit, async {
            loop {
                let added = self.added.notified();
                let found = {
                    let lines = self.lines.lock().unwrap();
                    lines.iter().skip(skip).find(|line| matches(line)).cloned()
                };
                if let Some(line) = found {
                    return line;
                }
                added.await;
            }
        })
        .await
        .ok()
    }

    pub(super) fn all(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }
}

impl Replica {
    /// SIGKILL: a crash, no shutdown sequence.
    pub(crate) async fn kill(&mut self) {
        self.child.kill().await.expect("the replica is killed");
    }

    /// SIGSTOP (`pause`) or SIGCONT: a process frozen and thawed, as a long GC-like
    /// pause or a partition would leave it, unaware of the time that passed.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the replica runs");
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Waits (up to `limit`) for a log line whose `message` contains `text`.
    pub(crate) async fn wait_for_log(&self, text: &str, limit: Duration) -> Option<Value> {
        self.logs
            .wait_for(0, limit, |line| {
                line["message"]
                    .as_str()
                    .is_some_and(|message| message.contains(text))
            })
            .await
    }

    /// Waits (up to `limit`) for a log line (JSON) that `matches`, among the lines
    /// from `mark` on (a [`Replica::log_mark`]: what happened after a step).
    pub(crate) async fn wait_for_log_line(
        &self,
        mark: usize,
        limit: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.logs.wait_for(mark, limit, matches).await
    }

    /// How many lines are logged so far, for [`Replica::wait_for_log_line`].
    pub(crate) fn log_mark(&self) -> usize {
        self.logs.lines.lock().unwrap().len()
    }

    /// Every log line so far (JSON values; unparsable lines as strings).
    pub(crate) fn logs(&self) -> Vec<Value> {
        self.logs.all()
    }

    /// `http://{address}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// POSTs a GraphQL document; answers the JSON body.
    pub(crate) async fn query(&self, query: &str, variables: Value) -> Value {
        self.http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("the replica answers")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// `registrationStatus(domain)` through this replica.
    pub(crate) async fn status_of(&self, domain: &str) -> Value {
        self.query(STATUS_QUERY, json!({ "domain": domain })).await
    }

    /// One sample of a metric from `/metrics` (the first series whose name and
    /// labels start with `series`), `None` when absent.
    pub(crate) async fn metric(&self, series: &str) -> Option<f64> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    }
}
