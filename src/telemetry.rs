//! Tracing set-up: text or JSON lines, level from `RUST_LOG` (default `info`).
//! Events of the `log` crate reach the same lines through tracing-subscriber's
//! bridge, so crates that dump whole frames are capped whatever `RUST_LOG` says:
//! tungstenite logs every websocket frame at TRACE, `connection_init` payloads
//! (bearer tokens, API keys, access keys) included.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let directives = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(&directives))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

/// Crates whose TRACE and DEBUG events carry message payloads, and the most they
/// may log: a directive of their own replaces whatever `RUST_LOG` says of them.
const FRAME_DUMPERS: [&str; 2] = ["tungstenite=info", "tokio_tungstenite=info"];

/// The filter for `directives` (`RUST_LOG` syntax; unparseable ones fall back to
/// `info`), with the frame-dumping crates capped.
pub fn filter(directives: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    for cap in FRAME_DUMPERS {
        filter = filter.add_directive(cap.parse().expect("a valid directive"));
    }
    filter
}
