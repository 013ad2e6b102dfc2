//! Upstream faults driven by the simulator's controls: bounded retries (counted by
//! the simulator), stale answers flagged with their age, shared failures, clean
//! error codes, and recovery once the fault clears.

use std::time::Duration;

use futures::future::join_all;
use registrar_simulator::Faults;
use serde_json::Value;

use crate::support::TestApp;
use crate::support::spawn_simulator_with;
use registrar_simulator::SimulatorSettings;

fn code(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]["code"]
}

fn status(body: &Value) -> &Value {
    &body["data"]["registrationStatus"]
}

fn fault(app: &TestApp, faults: Faults) {
    app.simulator()
        .set_faults(faults)
        .expect("valid fault settings");
}

/// A gateway whose pending statuses expire at once, so every read goes upstream;
/// failures are not shared unless the test asks.
async fn spawn_expiring(extra: &[&str]) -> TestApp {
    let mut args = vec!["--cache-ttl-active", "0s", "--cache-ttl-error", "0s"];
    args.extend_from_slice(extra);
    TestApp::builder().args(&args).spawn().await
}

#[tokio::test]
async fn a_5xx_burst_is_retried_twice_then_served_stale_then_recovers() {
    let app = spawn_expiring(&[]).await;
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(status(&body)["stale"], false);
    let fetched_at = status(&body)["fetchedAt"].clone();

    fault(
        &app,
        Faults {
            error_share: 1.0,
            ..Faults::default()
        },
    );
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(app.upstream_calls(), 1 + 3, "one call and two retries");
    assert_eq!(status(&body)["state"], "PENDING", "{body}");
    assert_eq!(status(&body)["stale"], true);
    assert_eq!(status(&body)["fetchedAt"], fetched_at);
    assert!(
        status(&body)["ageSeconds"]
            .as_f64()
            .is_some_and(|age| age >= 0.0)
    );
    assert!(
        body.get("errors").is_none(),
        "stale is an answer, not an error: {body}"
    );

    let body = app.status_of("demo-failed.com").await;
    assert_eq!(
        code(&body),
        "UPSTREAM_UNAVAILABLE",
        "nothing cached: {body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["upstreamStatus"], 502);

    fault(&app, Faults::default());
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(status(&body)["stale"], false, "{body}");
    assert_ne!(status(&body)["fetchedAt"], fetched_at);
}

#[tokio::test]
async fn a_hanging_upstream_times_out_per_attempt_with_bounded_retries() {
    // Long enough that the read after the fault clears answers in time on a loaded machine.
    let app = spawn_expiring(&["--upstream-timeout", "1s", "--upstream-retries", "1"]).await;
    fault(
        &app,
        Faults {
            hang_share: 1.0,
            hang_for: Duration::from_secs(30),
            ..Faults::default()
        },
    );
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(code(&body), "UPSTREAM_TIMEOUT", "{body}");
    let stats = app.simulator().stats();
    assert_eq!((stats.requests_total, stats.hangs), (2, 2));
    fault(&app, Faults::default());
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(status(&body)["state"], "PENDING", "{body}");
}

#[tokio::test]
async fn reset_connections_are_retried_and_reported_unavailable() {
    let app = spawn_expiring(&[]).await;
    fault(
        &app,
        Faults {
            reset_share: 1.0,
            ..Faults::default()
        },
    );
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(code(&body), "UPSTREAM_UNAVAILABLE", "{body}");
    assert_eq!(app.simulator().stats().resets, 3);
    fault(
        &app,
        Faults {
            reset_share: 0.5,
            ..Faults::default()
        },
    );
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(
        status(&body)["state"],
        "PENDING",
        "every other request resets; a retry succeeds: {body}"
    );
}

#[tokio::test]
async fn a_malformed_body_is_not_retried_and_a_cached_status_is_served_stale() {
    let app = spawn_expiring(&[]).await;
    fault(
        &app,
        Faults {
            malformed_share: 1.0,
            ..Faults::default()
        },
    );
    let body = app.status_of("demo-failed.com").await;
    assert_eq!(code(&body), "UPSTREAM_INVALID_RESPONSE", "{body}");
    assert_eq!(app.upstream_calls(), 1, "an unreadable 200 is not retried");
    fault(&app, Faults::default());
    app.status_of("demo-pending.com").await;
    fault(
        &app,
        Faults {
            malformed_share: 1.0,
            ..Faults::default()
        },
    );
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(status(&body)["stale"], true, "{body}");
}

#[tokio::test]
async fn a_long_retry_after_is_surfaced_at_once_as_rate_limited() {
    let simulator =
        spawn_simulator_with(SimulatorSettings::default().rate_limit(1, Duration::from_secs(300)))
            .await
            .handle;
    let app = TestApp::builder()
        .simulator(simulator)
        .args(&["--cache-ttl-error", "0s"])
        .spawn()
        .await;
    app.spend_upstream_request_elsewhere().await;
    let body = app.status_of("demo-failed.com").await;
    assert_eq!(code(&body), "UPSTREAM_RATE_LIMITED", "{body}");
    assert_eq!(
        app.upstream_calls(),
        2,
        "a Retry-After past the backoff cap is not waited for"
    );
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_and_the_read_succeeds() {
    let simulator =
        spawn_simulator_with(SimulatorSettings::default().rate_limit(1, Duration::from_secs(1)))
            .await
            .handle;
    let retry = [
        "--upstream-retries",
        "3",
        "--upstream-retry-max",
        "2s",
        "--upstream-timeout",
        "2s",
    ];
    let app = TestApp::builder()
        .simulator(simulator)
        .args(&retry)
        .spawn()
        .await;
    app.spend_upstream_request_elsewhere().await;
    let body = app.status_of("demo-failed.com").await;
    assert_eq!(status(&body)["state"], "FAILED", "{body}");
    let stats = app.simulator().stats();
    assert!(stats.rate_limited >= 1, "{stats:?}");
    assert!(stats.requests_total <= 2 + 3, "{stats:?}");
}

#[tokio::test]
async fn while_the_upstream_is_down_cached_statuses_are_stale_and_others_fail_cleanly() {
    let app = spawn_expiring(&[]).await;
    app.status_of("demo-pending.com").await;
    fault(
        &app,
        Faults {
            down_for: Duration::from_secs(3600),
            ..Faults::default()
        },
    );
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(status(&body)["stale"], true, "{body}");
    let body = app.status_of("demo-blocked.com").await;
    assert_eq!(code(&body), "UPSTREAM_UNAVAILABLE", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["upstreamStatus"], 503);
    let healthz = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200, "the gateway itself stays up");
    fault(&app, Faults::default());
    let body = app.status_of("demo-blocked.com").await;
    assert_eq!(status(&body)["state"], "PENDING", "{body}");
}

/// Concurrent readers share one failed call, and so do later readers while
/// `--cache-ttl-error` lasts: an hour here, far longer than the test, so how fast
/// the 70 reads go (a loaded machine) does not decide how many calls they make.
#[tokio::test]
async fn a_failing_upstream_is_not_hammered_concurrent_and_later_callers_share_one_failure() {
    let shared_for_an_hour = [
        "--cache-ttl-active",
        "0s",
        "--cache-ttl-error",
        "1h",
        "--upstream-retries",
        "0",
    ];
    let app = TestApp::builder().args(&shared_for_an_hour).spawn().await;
    app.status_of("demo-pending.com").await;
    fault(
        &app,
        Faults {
            error_share: 1.0,
            ..Faults::default()
        },
    );
    let answers = join_all((0..50).map(|_| app.status_of("demo-pending.com"))).await;
    for body in &answers {
        assert_eq!(status(body)["stale"], true, "{body}");
    }
    for _ in 0..20 {
        let body = app.status_of("demo-pending.com").await;
        assert_eq!(status(&body)["stale"], true, "{body}");
    }
    assert_eq!(
        app.upstream_calls(),
        1 + 1,
        "70 reads within --cache-ttl-error share one failed call"
    );
}
