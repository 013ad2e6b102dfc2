//! A real Redis for a test: Debian's `redis-server` (installed with apt-get when
//! missing, as CI runs as root) on a free loopback port, without persistence, that
//! a test can stop (SIGKILL, as an outage) and restart on the same port.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running (or stopped, between [`TestRedis::stop`] and [`TestRedis::restart`])
/// `redis-server`; killed when dropped.
pub(crate) struct TestRedis {
    port: u16,
    /// `--requirepass`, when the test wants authentication.
    password: Option<String>,
    child: Option<Child>,
}

impl TestRedis {
    /// Starts `redis-server` on a free loopback port and waits until it accepts connections.
    pub(crate) async fn start() -> Self {
        Self::start_with(None).await
    }

    /// [`TestRedis::start`], refusing clients that do not present `password`.
    pub(crate) async fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned())).await
    }

    async fn start_with(password: Option<String>) -> Self {
        ensure_installed();
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = launch(port, password.as_deref()).await {
                return Self {
                    port,
                    password,
                    child: Some(child),
                };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// `redis://[:password@]127.0.0.1:{port}`: what `--redis-url` takes.
    pub(crate) fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown) and waits for it to exit.
    pub(crate) async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("redis-server is killed");
        }
    }

    /// Starts the server again on the same port (empty: it keeps nothing on disk).
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        for _ in 0..50 {
            if let Some(child) = launch(self.port, self.password.as_deref()).await {
                self.child = Some(child);
                return;
            }
            // The port can linger a moment after the kill.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// A connection for the test's own commands (reading keys the gateways wrote).
    pub(crate) async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a valid URL")
            .get_multiplexed_async_connection()
            .await
            .expect("redis answers")
    }
}

/// Installs Debian's `redis-server` once per test binary when it is missing.
fn ensure_installed() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let present = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        if present {
            return;
        }
        let status = std::process::Command::new("apt-get")
            .args(["install", "-y", "redis-server"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("apt-get runs");
        assert!(status.success(), "apt-get install -y redis-server failed");
    });
}

/// A port the OS just handed out (released for redis-server to bind).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("an address").port()
}

/// Starts `redis-server` on `port`; `None` when it exits instead of becoming ready
/// (the port was taken). Readiness is its own log line, not a polled connection.
async fn launch(port: u16, password: Option<&str>) -> Option<Child> {
    let mut command = Command::new("redis-server");
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    let mut child = command
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--protected-mode", "yes", "--loglevel", "notice"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Ready to accept connections") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !ready {
        let _ = child.kill().await;
        return None;
    }
    // Keep draining its log so a full pipe never blocks the server.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(child)
}
