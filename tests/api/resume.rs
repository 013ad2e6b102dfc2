//! Resuming a subscription after a reconnect (`afterSequence`): the changes missed
//! are replayed from the registration's bounded history, then live ones follow;
//! when the history no longer reaches back, the first event says `resynced`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::subscriptions::{fast_app, follow_to_completion, next_change, states};
use crate::support::TestApp;
use crate::support::{WsClient, connect_ready};

/// `registrationStatusChanged` resumed after a sequence.
const RESUME: &str = r#"subscription($domain: String!, $after: Int) {
  registrationStatusChanged(domain: $domain, afterSequence: $after) {
    sequence resynced previousState status { state }
  }
}"#;

async fn resume(app: &TestApp, id: &str, domain: &str, after: Option<u64>) -> WsClient {
    let mut client = connect_ready(app).await;
    let payload = json!({ "query": RESUME, "variables": { "domain": domain, "after": after } });
    client
        .send(json!({ "type": "subscribe", "id": id, "payload": payload }))
        .await;
    client
}

fn sequences(changes: &[Value]) -> Vec<u64> {
    changes
        .iter()
        .map(|change| change["sequence"].as_u64().unwrap())
        .collect()
}

fn advance(app: &TestApp, seconds: u64) {
    app.simulator()
        .advance_clock(Duration::from_secs(seconds))
        .expect("the clock advances");
}

/// Subscriber "a" sees PENDING (1) and leaves; subscriber "b" stays and follows
/// demo-succeeds.com to its end: IN_PROGRESS (2), SUCCEEDED (3). Returns b's changes.
async fn one_leaves_while_another_watches_to_the_end(app: &TestApp) -> Vec<Value> {
    let mut leaving = resume(app, "a", "demo-succeeds.com", None).await;
    let mut staying = resume(app, "b", "demo-succeeds.com", None).await;
    assert_eq!(next_change(&mut leaving, "a").await["sequence"], 1);
    let mut seen = vec![next_change(&mut staying, "b").await];
    leaving.close().await;
    advance(app, 10);
    seen.push(next_change(&mut staying, "b").await);
    advance(app, 20);
    seen.extend(follow_to_completion(&mut staying, "b").await);
    assert_eq!(states(&seen), ["PENDING", "IN_PROGRESS", "SUCCEEDED"]);
    seen
}

#[tokio::test]
async fn a_subscriber_that_resumes_gets_every_change_it_missed_from_history() {
    let app = fast_app(&[]).await;
    one_leaves_while_another_watches_to_the_end(&app).await;
    let calls = app.upstream_calls();

    let mut back = resume(&app, "a", "demo-succeeds.com", Some(1)).await;
    let missed = follow_to_completion(&mut back, "a").await;
    assert_eq!(sequences(&missed), [2, 3]);
    assert_eq!(states(&missed), ["IN_PROGRESS", "SUCCEEDED"]);
    assert!(missed.iter().all(|change| change["resynced"] == false));
    assert_eq!(missed[0]["previousState"], "PENDING");
    assert_eq!(
        app.upstream_calls(),
        calls,
        "replayed without asking Cloudflare"
    );
}

#[tokio::test]
async fn a_resumed_subscription_replays_what_it_missed_then_goes_on_live() {
    let app = fast_app(&[]).await;
    let mut leaving = resume(&app, "a", "demo-succeeds.com", None).await;
    let mut staying = resume(&app, "b", "demo-succeeds.com", None).await;
    next_change(&mut leaving, "a").await;
    next_change(&mut staying, "b").await;
    leaving.close().await;
    advance(&app, 10);
    assert_eq!(next_change(&mut staying, "b").await["sequence"], 2);

    let mut back = resume(&app, "a", "demo-succeeds.com", Some(1)).await;
    let replayed = next_change(&mut back, "a").await;
    assert_eq!(
        (
            replayed["sequence"].as_u64(),
            replayed["resynced"].as_bool()
        ),
        (Some(2), Some(false))
    );
    advance(&app, 20);
    let live = follow_to_completion(&mut back, "a").await;
    assert_eq!(sequences(&live), [3]);
    assert_eq!(states(&live), ["SUCCEEDED"]);
}

#[tokio::test]
async fn a_subscriber_already_up_to_date_gets_only_new_changes() {
    let app = fast_app(&[]).await;
    let mut first = resume(&app, "a", "demo-succeeds.com", None).await;
    assert_eq!(next_change(&mut first, "a").await["sequence"], 1);
    let mut up_to_date = resume(&app, "b", "demo-succeeds.com", Some(1)).await;
    advance(&app, 10);
    let change = next_change(&mut up_to_date, "b").await;
    assert_eq!(
        (
            change["sequence"].as_u64(),
            change["status"]["state"].as_str()
        ),
        (Some(2), Some("IN_PROGRESS"))
    );
}

#[tokio::test]
async fn history_is_bounded_and_a_resume_past_it_is_resynced_with_the_current_status() {
    let app = fast_app(&["--subscription-history", "1"]).await;
    one_leaves_while_another_watches_to_the_end(&app).await;

    let mut back = resume(&app, "a", "demo-succeeds.com", Some(1)).await;
    let changes = follow_to_completion(&mut back, "a").await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["resynced"], true);
    assert_eq!(changes[0]["sequence"], 3);
    assert_eq!(changes[0]["status"]["state"], "SUCCEEDED");
}

#[tokio::test]
async fn a_forgotten_history_resyncs_and_never_reuses_its_sequence_numbers() {
    let app = fast_app(&["--subscription-history-retention", "0s"]).await;
    let seen = one_leaves_while_another_watches_to_the_end(&app).await;
    let last_seen = seen[2]["sequence"].as_u64().unwrap();

    for after in [1, last_seen] {
        let mut back = resume(&app, "a", "demo-succeeds.com", Some(after)).await;
        let changes = follow_to_completion(&mut back, "a").await;
        assert_eq!(changes.len(), 1, "after {after}: {changes:?}");
        assert_eq!(changes[0]["resynced"], true, "after {after}");
        assert_eq!(changes[0]["status"]["state"], "SUCCEEDED");
        assert!(changes[0]["sequence"].as_u64().unwrap() > last_seen + 1);
    }
}

#[tokio::test]
async fn a_restarted_poller_numbers_on_from_the_history() {
    let app = fast_app(&[]).await;
    let mut first = resume(&app, "a", "demo-succeeds.com", None).await;
    assert_eq!(next_change(&mut first, "a").await["sequence"], 1);
    first.close().await;
    app.pollers.until_idle().await;
    // Nobody watches while the workflow moves on.
    advance(&app, 10);

    let mut later = resume(&app, "b", "demo-succeeds.com", None).await;
    let mut now = next_change(&mut later, "b").await;
    if now["status"]["state"] == "PENDING" {
        // The cache's PENDING was still fresh: the same status a query gets.
        assert_eq!(now["sequence"], 1);
        now = next_change(&mut later, "b").await;
    }
    assert_eq!(now["status"]["state"], "IN_PROGRESS");
    assert_eq!(
        (now["sequence"].as_u64(), now["previousState"].as_str()),
        (Some(2), Some("PENDING"))
    );
}

#[tokio::test]
async fn a_negative_after_sequence_is_refused_before_any_upstream_call() {
    let app = fast_app(&[]).await;
    let mut client = connect_ready(&app).await;
    let query = r#"subscription { registrationStatusChanged(domain: "demo-pending.com", afterSequence: -1) { sequence } }"#;
    client
        .send(json!({ "type": "subscribe", "id": "x", "payload": { "query": query } }))
        .await;
    let message = client.recv().await;
    assert!(message["payload"]["data"].is_null(), "{message}");
    assert!(
        message["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Int"),
        "{message}"
    );
    assert_eq!(app.upstream_calls(), 0);
}
