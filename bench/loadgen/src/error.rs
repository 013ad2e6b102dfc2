//! The one error type of the load tool: every scenario step either works or
//! says which process, request or expectation failed.

/// Why a scenario could not run to the end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// A child process could not be started.
    #[error("cannot start {name}: {source}")]
    Spawn {
        /// Which process.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A child process exited or never answered its readiness probe.
    #[error("{name} did not become ready: {reason}")]
    NotReady {
        /// Which process.
        name: &'static str,
        /// What was seen.
        reason: String,
    },
    /// An HTTP request to a process under test failed.
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A websocket could not be opened or used.
    #[error("websocket failed: {0}")]
    Websocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// A local file could not be read or written.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A process under test answered something other than expected.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}
