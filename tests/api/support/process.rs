//! The gateway binary as a process of its own, for what only a process shows: how
//! it reads its environment (variables set but empty, as compose passes them) and
//! the JSON log lines it writes.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use super::replicas::{Logs, collect};

/// A gateway process on `127.0.0.1:0`; killed when dropped.
pub(crate) struct GatewayProcess {
    _child: Child,
    /// Where it serves.
    pub address: SocketAddr,
    logs: Logs,
}

/// Starts the binary with `args` and exactly the variables `env` sets besides the
/// test process's own (logs in JSON, `--listen 127.0.0.1:0` as flags).
pub(crate) async fn spawn_process(args: &[&str], env: &[(&str, &str)]) -> GatewayProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registrar-gateway"));
    command
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("the gateway binary starts");
    let logs = Logs::default();
    tokio::spawn(collect(
        child.stderr.take().expect("piped stderr"),
        logs.clone(),
    ));
    let listening = logs
        .wait_for(0, Duration::from_secs(30), |line| {
            line["message"] == "registrar-gateway listening"
        })
        .await
        .unwrap_or_else(|| panic!("the gateway never said it was listening: {:#?}", logs.all()));
    let address = listening["address"]
        .as_str()
        .and_then(|address| address.parse().ok())
        .expect("the listening line names the address");
    GatewayProcess {
        _child: child,
        address,
        logs,
    }
}

impl GatewayProcess {
    /// Waits (up to 10 s) for a log line whose `message` starts with `message` and that `matches`.
    pub(crate) async fn log_line(&self, message: &str, matches: impl Fn(&Value) -> bool) -> Value {
        self.logs
            .wait_for(0, Duration::from_secs(10), |line| {
                line["message"]
                    .as_str()
                    .is_some_and(|text| text.starts_with(message))
                    && matches(line)
            })
            .await
            .unwrap_or_else(|| panic!("no {message:?} line: {:#?}", self.logs.all()))
    }
}
