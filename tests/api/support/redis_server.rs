//! A real Redis for a test: Debian's `redis-server` (installed with apt-get when
//! missing, as CI runs as root) on a free loopback port, without persistence, that
//! a test can stop (SIGKILL, as an outage) and restart on the same port. It can
//! require a password, and speak only TLS with a certificate signed by a throwaway
//! CA made for the test with the `openssl` CLI (installed too when missing).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running (or stopped, between [`TestRedis::stop`] and [`TestRedis::restart`])
/// `redis-server`; killed when dropped.
pub(crate) struct TestRedis {
    port: u16,
    /// `--requirepass`, when the test wants authentication.
    password: Option<String>,
    /// The certificates when it speaks only TLS (`rediss://`).
    tls: Option<TlsFiles>,
    child: Option<Child>,
}

/// A throwaway CA and the server certificate it signed (for `127.0.0.1`), in a
/// directory of their own, removed when dropped.
struct TlsFiles {
    dir: PathBuf,
}

impl TestRedis {
    /// Starts `redis-server` on a free loopback port and waits until it accepts connections.
    pub(crate) async fn start() -> Self {
        Self::start_with(None, None).await
    }

    /// [`TestRedis::start`], refusing clients that do not present `password`.
    pub(crate) async fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned()), None).await
    }

    /// [`TestRedis::start_with_password`], speaking only TLS with a certificate
    /// signed by a CA made for this server ([`TestRedis::ca_file`]).
    pub(crate) async fn start_tls_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned()), Some(TlsFiles::create())).await
    }

    async fn start_with(password: Option<String>, tls: Option<TlsFiles>) -> Self {
        ensure_installed();
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = launch(port, password.as_deref(), tls.as_ref()).await {
                return Self {
                    port,
                    password,
                    tls,
                    child: Some(child),
                };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// `redis[s]://[:password@]127.0.0.1:{port}`: what `--redis-url` takes.
    pub(crate) fn url(&self) -> String {
        self.url_with_password(self.password.as_deref())
    }

    /// [`TestRedis::url`] presenting `password` (or none) instead of the server's.
    pub(crate) fn url_with_password(&self, password: Option<&str>) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match password {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// The CA that signed a TLS server's certificate (PEM), for `--redis-ca-file`.
    pub(crate) fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|tls| tls.dir.join("ca.crt"))
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
            let launched = launch(self.port, self.password.as_deref(), self.tls.as_ref()).await;
            if let Some(child) = launched {
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
        let client = match self.ca_file() {
            Some(ca) => {
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(ca).expect("the CA file")),
                };
                redis::Client::build_with_tls(self.url(), certificates)
            }
            None => redis::Client::open(self.url()),
        };
        client
            .expect("a valid URL")
            .get_multiplexed_async_connection()
            .await
            .expect("redis answers")
    }
}

/// Installs Debian's `redis-server` once per test binary when it is missing.
fn ensure_installed() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| install_when_missing(&["redis-server", "--version"], "redis-server"));
}

/// Installs the Debian package `package` when `probe` (a command line) does not run.
fn install_when_missing(probe: &[&str], package: &str) {
    let present = std::process::Command::new(probe[0])
        .args(&probe[1..])
        .output()
        .is_ok_and(|output| output.status.success());
    if present {
        return;
    }
    let status = std::process::Command::new("apt-get")
        .args(["install", "-y", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("apt-get runs");
    assert!(status.success(), "apt-get install -y {package} failed");
}

/// A port the OS just handed out (released for redis-server to bind).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("an address").port()
}

impl TlsFiles {
    /// A CA and a server certificate for `127.0.0.1` it signed, valid for a day.
    fn create() -> Self {
        static OPENSSL: OnceLock<()> = OnceLock::new();
        OPENSSL.get_or_init(|| install_when_missing(&["openssl", "version"], "openssl"));
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "redis-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");
        std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("written");
        let new_key = "-newkey rsa:2048 -nodes";
        openssl(
            &dir,
            &format!(
                "req -x509 -days 1 -subj /CN=test-redis-ca {new_key} -keyout ca.key -out ca.crt"
            ),
        );
        openssl(
            &dir,
            &format!("req -subj /CN=127.0.0.1 {new_key} -keyout server.key -out server.csr"),
        );
        openssl(
            &dir,
            "x509 -req -days 1 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -extfile san.cnf -out server.crt",
        );
        Self { dir }
    }

    /// redis-server's flags: TLS only (`--port 0`), no client certificates asked.
    fn server_args(&self, port: u16) -> Vec<String> {
        let file = |name: &str| self.dir.join(name).display().to_string();
        [
            ("--port", "0".to_owned()),
            ("--tls-port", port.to_string()),
            ("--tls-cert-file", file("server.crt")),
            ("--tls-key-file", file("server.key")),
            ("--tls-ca-cert-file", file("ca.crt")),
            ("--tls-auth-clients", "no".to_owned()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl` with `args` (split on spaces) in `dir`; panics if it fails.
fn openssl(dir: &Path, args: &str) {
    let output = std::process::Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts `redis-server` on `port`; `None` when it exits instead of becoming ready
/// (the port was taken). Readiness is its own log line, not a polled connection.
async fn launch(port: u16, password: Option<&str>, tls: Option<&TlsFiles>) -> Option<Child> {
    let mut command = Command::new("redis-server");
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    match tls {
        Some(tls) => command.args(tls.server_args(port)),
        None => command.args(["--port", &port.to_string()]),
    };
    let mut child = command
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
