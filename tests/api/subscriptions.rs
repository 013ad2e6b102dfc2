//! `registrationStatusChanged` end to end over graphql-transport-ws: one poller per
//! registration however many watch, every ending the upstream prescribes, faults,
//! disconnects and limits. The simulator's clock moves only when a test advances it.

use std::time::Duration;

use registrar_simulator::Faults;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{ACCOUNT, TestApp};
use crate::support::{WsClient, change, connect_ready};

/// Poll every 10 ms, without jitter or client retries (the poller's own failure
/// count is under test), and stop a poller as soon as nobody watches.
pub(crate) const FAST_POLLING: [&str; 14] = [
    "--upstream-retries",
    "0",
    "--poll-initial",
    "10ms",
    "--poll-max",
    "10ms",
    "--poll-blocked-initial",
    "10ms",
    "--poll-blocked-max",
    "10ms",
    "--poll-jitter",
    "0",
    "--poller-grace",
    "0s",
];

pub(crate) async fn fast_app(extra: &[&str]) -> TestApp {
    let args: Vec<&str> = FAST_POLLING.iter().chain(extra).copied().collect();
    TestApp::builder().args(&args).spawn().await
}

pub(crate) fn states(changes: &[Value]) -> Vec<&str> {
    changes
        .iter()
        .map(|change| change["status"]["state"].as_str().unwrap())
        .collect()
}

/// Reads `id`'s messages until `complete`, returning the changes seen.
pub(crate) async fn follow_to_completion(client: &mut WsClient, id: &str) -> Vec<Value> {
    let mut changes = Vec::new();
    loop {
        let message = client.recv().await;
        match message["type"].as_str() {
            Some("next") => changes.push(change(&message, id)),
            Some("complete") => return changes,
            _ => panic!("unexpected message: {message}"),
        }
    }
}

/// A connection watching `domain` as subscription "1", past its first event (PENDING).
async fn watch_from_pending(
    app: &TestApp,
    domain: &str,
    keep_watching_action_required: bool,
) -> WsClient {
    let mut client = connect_ready(app).await;
    client
        .watch("1", domain, keep_watching_action_required)
        .await;
    assert_eq!(
        next_change(&mut client, "1").await["status"]["state"],
        "PENDING"
    );
    client
}

/// Moves the workflow clock by `seconds` and expects `id`'s next change to be `state`.
async fn advance_then_expect(
    app: &TestApp,
    client: &mut WsClient,
    seconds: u64,
    id: &str,
    state: &str,
) {
    app.simulator()
        .advance_clock(Duration::from_secs(seconds))
        .expect("the clock advances");
    assert_eq!(next_change(client, id).await["status"]["state"], state);
}

pub(crate) async fn next_change(client: &mut WsClient, id: &str) -> Value {
    let message = client.recv().await;
    assert_eq!(message["type"], "next", "{message}");
    change(&message, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_share_one_poller_and_see_every_state_in_order() {
    const CONNECTIONS: usize = 10;
    const PER_CONNECTION: usize = 100;
    let app = fast_app(&[]).await;
    let (progress_tx, mut progress) = mpsc::unbounded_channel::<(usize, usize)>();
    let mut followers = Vec::new();
    for connection in 0..CONNECTIONS {
        let mut client = connect_ready(&app).await;
        for id in 0..PER_CONNECTION {
            client
                .watch(&id.to_string(), "demo-succeeds.com", false)
                .await;
        }
        let progress_tx = progress_tx.clone();
        followers.push(tokio::spawn(async move {
            let mut seen = vec![Vec::new(); PER_CONNECTION];
            let (mut completed, mut reported) = (0, 0);
            while completed < PER_CONNECTION {
                let message = client.recv().await;
                let id: usize = message["id"].as_str().unwrap().parse().unwrap();
                match message["type"].as_str() {
                    Some("next") => seen[id].push(change(&message, &id.to_string())),
                    Some("complete") => completed += 1,
                    _ => panic!("unexpected message: {message}"),
                }
                let least = seen.iter().map(Vec::len).min().unwrap_or_default();
                if least > reported {
                    reported = least;
                    progress_tx.send((connection, least)).unwrap();
                }
            }
            seen
        }));
    }
    let mut reached = [0; CONNECTIONS];
    for (events, advance) in [(1, 10), (2, 20)] {
        while reached.iter().any(|&count| count < events) {
            let (connection, count) = progress.recv().await.unwrap();
            reached[connection] = count;
        }
        app.simulator()
            .advance_clock(Duration::from_secs(advance))
            .expect("the clock advances");
    }
    for follower in followers {
        for changes in follower.await.unwrap() {
            assert_eq!(states(&changes), ["PENDING", "IN_PROGRESS", "SUCCEEDED"]);
            let sequences: Vec<u64> = changes
                .iter()
                .map(|change| change["sequence"].as_u64().unwrap())
                .collect();
            assert_eq!(sequences, [1, 2, 3]);
            let previous: Vec<&Value> = changes
                .iter()
                .map(|change| &change["previousState"])
                .collect();
            assert_eq!(
                previous,
                [&Value::Null, &json!("PENDING"), &json!("IN_PROGRESS")]
            );
        }
    }
    app.pollers.until_idle().await;
    let stats = app.pollers.stats();
    assert_eq!(stats.pollers_started, 1, "one poller for 1,000 subscribers");
    assert_eq!(
        app.upstream_calls(),
        stats.polls,
        "every upstream call is that one poller's"
    );
    assert_eq!(stats.active_watchers, 0);
}

#[tokio::test]
async fn a_failed_workflow_ends_the_subscription_with_its_error() {
    let app = fast_app(&[]).await;
    let mut client = watch_from_pending(&app, "demo-fails.com", false).await;
    app.simulator()
        .advance_clock(Duration::from_secs(30))
        .expect("the clock advances");
    let changes = follow_to_completion(&mut client, "1").await;
    let last = changes.last().unwrap();
    assert_eq!(last["status"]["state"], "FAILED");
    assert_eq!(last["status"]["completed"], true);
    assert_eq!(last["status"]["error"]["code"], "registry_rejected");
    app.pollers.until_idle().await;
}

#[tokio::test]
async fn action_required_surfaces_the_action_and_completes_by_default() {
    let app = fast_app(&[]).await;
    let mut client = watch_from_pending(&app, "demo-action-required.com", false).await;
    app.simulator()
        .advance_clock(Duration::from_secs(15))
        .expect("the clock advances");
    let changes = follow_to_completion(&mut client, "1").await;
    let paused = changes.last().unwrap();
    assert_eq!(paused["status"]["state"], "ACTION_REQUIRED");
    assert_eq!(
        paused["status"]["actionRequired"]["action"],
        "registrant_email_confirmation_pending"
    );
    assert_eq!(
        paused["status"]["actionRequired"]["confirmationSentTo"],
        "r***@demo-action-required.com"
    );
    app.pollers.until_idle().await;
    let calls = app.upstream_calls();
    assert_eq!(
        calls,
        app.pollers.stats().polls,
        "the poller stopped: it never resolves on its own"
    );
}

#[tokio::test]
async fn keep_watching_follows_action_required_until_the_user_acts() {
    let app = fast_app(&[]).await;
    let mut client = watch_from_pending(&app, "demo-action-required.com", true).await;
    advance_then_expect(&app, &mut client, 5, "1", "IN_PROGRESS").await;
    advance_then_expect(&app, &mut client, 10, "1", "ACTION_REQUIRED").await;

    app.simulator()
        .resolve_action(ACCOUNT, "demo-action-required.com")
        .unwrap();
    assert_eq!(
        next_change(&mut client, "1").await["status"]["state"],
        "IN_PROGRESS"
    );
    app.simulator()
        .advance_clock(Duration::from_secs(10))
        .expect("the clock advances");
    let changes = follow_to_completion(&mut client, "1").await;
    assert_eq!(states(&changes), ["SUCCEEDED"]);
}

#[tokio::test]
async fn a_workflow_blocked_past_the_watch_limit_ends_with_watch_expired() {
    let app = fast_app(&["--blocked-max-watch", "100ms"]).await;
    let mut client = watch_from_pending(&app, "demo-blocked.com", false).await;
    app.simulator()
        .advance_clock(Duration::from_secs(15))
        .expect("the clock advances");
    loop {
        let message = client.recv().await;
        let errors = &message["payload"]["errors"];
        if errors.is_null() {
            assert_eq!(message["type"], "next", "{message}");
            continue;
        }
        assert_eq!(
            errors[0]["extensions"]["code"], "WATCH_EXPIRED",
            "{message}"
        );
        break;
    }
    assert_eq!(
        client.recv().await,
        json!({ "type": "complete", "id": "1" })
    );
}

#[tokio::test]
async fn leaving_subscribers_release_the_poller_and_upstream_calls_stop() {
    let app = fast_app(&[]).await;
    let mut first = connect_ready(&app).await;
    let mut second = connect_ready(&app).await;
    first.watch("a", "demo-pending.com", false).await;
    next_change(&mut first, "a").await;
    // One at a time: two operations of one socket woken together answer in any order.
    second.watch("b", "demo-pending.com", false).await;
    next_change(&mut second, "b").await;
    second.watch("c", "demo-pending.com", false).await;
    next_change(&mut second, "c").await;
    // Three subscribers of one document share one execution: one watcher.
    assert_eq!(app.pollers.stats().active_watchers, 1);

    first.send(json!({ "type": "complete", "id": "a" })).await;
    second.close().await;
    app.pollers.until_idle().await;
    let stats = app.pollers.stats();
    assert_eq!((stats.active_pollers, stats.active_watchers), (0, 0));
    assert_eq!(app.upstream_calls(), stats.polls);
}

#[tokio::test]
async fn a_query_of_a_watched_registration_is_served_from_the_pollers_result() {
    let app = TestApp::builder()
        .args(&["--poll-initial", "1h", "--poll-max", "1h"])
        .spawn()
        .await;
    let mut client = connect_ready(&app).await;
    client.watch("1", "demo-pending.com", false).await;
    next_change(&mut client, "1").await;
    let calls = app.upstream_calls();
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(body["data"]["registrationStatus"]["state"], "PENDING");
    assert_eq!(app.upstream_calls(), calls);
}

#[tokio::test]
async fn a_late_subscriber_to_a_finished_workflow_gets_it_from_cache_and_completes() {
    let app = fast_app(&[]).await;
    app.status_of("demo-succeeded.com").await;
    let mut client = connect_ready(&app).await;
    client.watch("1", "demo-succeeded.com", false).await;
    let changes = follow_to_completion(&mut client, "1").await;
    assert_eq!(states(&changes), ["SUCCEEDED"]);
    assert_eq!(app.upstream_calls(), 1, "only the query's call");
    assert_eq!(app.pollers.stats().pollers_started, 0);
}

#[tokio::test]
async fn an_upstream_outage_mid_stream_is_ridden_out() {
    let app = fast_app(&[]).await;
    let mut client = watch_from_pending(&app, "demo-succeeds.com", false).await;
    app.simulator()
        .set_faults(Faults {
            error_share: 1.0,
            ..Default::default()
        })
        .unwrap();
    let failing_from = app.upstream_calls();
    app.simulator()
        .advance_clock(Duration::from_secs(10))
        .expect("the clock advances");
    while app.upstream_calls() < failing_from + 3 {
        tokio::task::yield_now().await;
    }
    app.simulator().set_faults(Faults::default()).unwrap();
    let change = next_change(&mut client, "1").await;
    assert_eq!(
        change["status"]["state"], "IN_PROGRESS",
        "the subscription survived the 5xx burst"
    );
    assert_eq!(change["sequence"], 2);
}

#[tokio::test]
async fn subscribers_are_told_when_the_poller_gives_up() {
    let app = fast_app(&["--poll-max-failures", "3"]).await;
    app.simulator()
        .set_faults(Faults {
            error_share: 1.0,
            ..Default::default()
        })
        .unwrap();
    let mut client = connect_ready(&app).await;
    client.watch("1", "demo-pending.com", false).await;
    let message = client.recv().await;
    assert_eq!(message["type"], "next");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "UPSTREAM_UNAVAILABLE",
        "{message}"
    );
    assert_eq!(
        client.recv().await,
        json!({ "type": "complete", "id": "1" })
    );
    assert_eq!(app.upstream_calls(), 3);
}

#[tokio::test]
async fn a_domain_without_a_workflow_ends_with_workflow_not_found() {
    let app = fast_app(&[]).await;
    let mut client = connect_ready(&app).await;
    client.watch("1", "nothing-here.com", false).await;
    let message = client.recv().await;
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "WORKFLOW_NOT_FOUND",
        "{message}"
    );
    assert_eq!(client.recv().await["type"], "complete");
}

#[tokio::test]
async fn subscriptions_are_bounded_per_connection_and_in_total() {
    let app = fast_app(&[
        "--max-subscriptions-per-connection",
        "2",
        "--max-subscriptions",
        "3",
    ])
    .await;
    let mut first = connect_ready(&app).await;
    for id in ["1", "2", "3"] {
        first.watch(id, "demo-pending.com", false).await;
    }
    let mut accepted = 0;
    let refused = loop {
        let message = first.recv().await;
        match message["type"].as_str() {
            Some("next") => accepted += 1,
            Some("error") => break message,
            _ => panic!("unexpected message: {message}"),
        }
    };
    assert_eq!(refused["id"], "3", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    while accepted < 2 {
        assert_eq!(first.recv().await["type"], "next");
        accepted += 1;
    }

    let mut second = connect_ready(&app).await;
    second.watch("1", "demo-in-progress.com", false).await;
    assert!(second.recv().await["payload"]["errors"].is_null());
    second.watch("2", "demo-in-progress.com", false).await;
    let message = second.recv().await;
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS",
        "the gateway-wide bound: {message}"
    );
}

#[tokio::test]
async fn the_legacy_protocol_bounds_subscriptions_per_connection_too() {
    let app = fast_app(&["--max-subscriptions-per-connection", "1"]).await;
    let mut client = crate::support::connect(&app, "graphql-ws").await;
    client
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(client.recv().await["type"], "connection_ack");
    for id in ["1", "2"] {
        let variables = json!({ "domain": "demo-pending.com" });
        let payload = json!({ "query": crate::support::WATCH, "variables": variables });
        client
            .send(json!({ "type": "start", "id": id, "payload": payload }))
            .await;
    }
    let refused = loop {
        let message = client.recv().await;
        if message["id"] == "2" && message["type"] != "complete" {
            break message;
        }
    };
    let code = &refused["payload"]["errors"][0]["extensions"]["code"];
    assert_eq!(code, "TOO_MANY_SUBSCRIPTIONS", "{refused}");
}
