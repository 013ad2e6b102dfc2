//! Test logs, off by default: a suite of a hundred servers is unreadable when all
//! of them log. With `TEST_LOG` set, the first server a test binary starts installs
//! a subscriber writing through the test harness's capture (shown with `--nocapture`
//! or for failing tests).

use std::sync::Once;

/// Installs the test subscriber once per binary when `TEST_LOG` is set. Does
/// nothing when another subscriber (a test's own) is already installed.
pub(super) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
