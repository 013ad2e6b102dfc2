//! The processes under test: the simulator, the gateway and the floor server run
//! as separate child processes on free loopback ports, are probed until ready
//! within a deadline, and are killed when their guard drops (also on error).
//! Already running ones can be given by URL instead. With `--replicas`, a
//! `redis-server` (Debian's, as users run it) joins them the same way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::BenchError;

/// How long a child may take to answer its readiness probe.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// Kills and reaps a child process when dropped.
#[derive(Debug)]
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Killing an already exited child fails harmlessly; reaping avoids a zombie.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process under test: where it answers, and its pid when known (for RSS).
#[derive(Debug)]
pub(crate) struct Service {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    /// The process id, when we started it or were told it.
    pub pid: Option<u32>,
    /// Present when we started the process: stops it on drop.
    _child: Option<ChildGuard>,
}

impl Service {
    /// A process started by someone else.
    pub(crate) fn external(url: &str, pid: Option<u32>) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            pid,
            _child: None,
        }
    }

    /// The resident set size of the process in KiB, read from `/proc/PID/status`.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid?)
    }
}

/// What to start and how to tell it is ready.
pub(crate) struct Launch<'a> {
    /// Name used in errors.
    pub name: &'static str,
    /// The executable.
    pub program: &'a Path,
    /// Arguments before `--listen ADDR`.
    pub args: Vec<String>,
    /// Path answered with 2xx once the process serves, e.g. `/healthz`.
    pub ready_path: &'static str,
}

/// Starts `launch` on a free loopback port and waits until it is ready.
pub(crate) async fn start(launch: Launch<'_>) -> Result<Service, BenchError> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(launch.program)
        .args(&launch.args)
        .args(["--listen", &listen])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| BenchError::Spawn {
            name: launch.name,
            source,
        })?;
    let pid = child.id();
    let mut guard = ChildGuard(child);
    let url = format!("http://{listen}");
    wait_ready(
        launch.name,
        &mut guard,
        &format!("{url}{}", launch.ready_path),
    )
    .await?;
    Ok(Service {
        url,
        pid: Some(pid),
        _child: Some(guard),
    })
}

/// Starts Debian's `redis-server` on a free loopback port, nothing persisted (the
/// flags of `bench/redis.sh`), and waits until it answers `PING`; its `url` is
/// `redis://127.0.0.1:PORT`.
pub(crate) async fn start_redis() -> Result<Service, BenchError> {
    let name = "redis-server";
    let program = find_redis_server().ok_or_else(|| BenchError::NotReady {
        name,
        reason: "no redis-server on PATH: --replicas needs one (apt-get install -y redis-server)"
            .to_owned(),
    })?;
    let port = free_port()?;
    let child = Command::new(program)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| BenchError::Spawn { name, source })?;
    let pid = child.id();
    let mut guard = ChildGuard(child);
    let deadline = Instant::now() + READY_DEADLINE;
    while !answers_ping(port).await {
        if let Some(status) = guard.0.try_wait()? {
            let reason = format!("exited with {status}");
            return Err(BenchError::NotReady { name, reason });
        }
        if Instant::now() >= deadline {
            let reason = format!("no PONG on port {port} within {READY_DEADLINE:?}");
            return Err(BenchError::NotReady { name, reason });
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    Ok(Service {
        url: format!("redis://127.0.0.1:{port}"),
        pid: Some(pid),
        _child: Some(guard),
    })
}

/// `redis-server` on `PATH` (Debian's package puts it in `/usr/bin`).
fn find_redis_server() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// Whether Redis on `port` answers an inline `PING` with `+PONG`.
async fn answers_ping(port: u16) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut answer = [0_u8; 7];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer == *b"+PONG\r\n")
    };
    matches!(
        tokio::time::timeout(PROBE_INTERVAL * 10, exchange).await,
        Ok(Ok(true))
    )
}

/// A port nobody listens on right now (the child binds it a moment later).
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

async fn wait_ready(
    name: &'static str,
    child: &mut ChildGuard,
    url: &str,
) -> Result<(), BenchError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + READY_DEADLINE;
    let not_ready = |reason: String| BenchError::NotReady { name, reason };
    while Instant::now() < deadline {
        if let Some(status) = child.0.try_wait()? {
            return Err(not_ready(format!("exited with {status}")));
        }
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    Err(not_ready(format!(
        "no answer from {url} within {READY_DEADLINE:?}"
    )))
}

/// VmRSS of `pid` in KiB; `None` if the process or the field is gone.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The directory holding `registrar-gateway` and `loadgen`: `--bin-dir`, else this executable's.
pub(crate) fn bin_dir(explicit: Option<&Path>) -> Result<PathBuf, BenchError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_owned());
    }
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(Path::to_owned)
        .ok_or_else(|| BenchError::Unexpected("the executable has no directory".to_owned()))
}
