//! Resolve once, send many: subscribers of the same document, variables and
//! credential share one execution (one watcher of the registration's poller), each
//! still with its own id, its own completion and the status now when it joins late;
//! anything that differs (variables, credential) runs on its own.

use std::collections::HashMap;
use std::time::Duration;

use registrar_simulator::{SimulatorSettings, credential_tag};
use serde_json::{Value, json};

use crate::subscriptions::{fast_app, next_change};
use crate::support::spawn_simulator_with;
use crate::support::{TOKEN, TestApp, WsClient, connect, connect_ready};

/// Reads `client`'s messages until each of `ids` has `count` more `next` payloads
/// (and, with `complete`, its `complete` after them); returns them by id.
async fn read_each(
    client: &mut WsClient,
    ids: &[&str],
    count: usize,
    complete: bool,
) -> HashMap<String, Vec<Value>> {
    let mut payloads: HashMap<String, Vec<Value>> = HashMap::new();
    let mut completed = 0;
    let done = |payloads: &HashMap<String, Vec<Value>>, completed: usize| {
        ids.iter()
            .all(|id| payloads.get(*id).map_or(0, Vec::len) == count)
            && (!complete || completed == ids.len())
    };
    while !done(&payloads, completed) {
        let message = client.recv().await;
        let id = message["id"].as_str().expect("an id").to_owned();
        assert!(ids.contains(&id.as_str()), "{message}");
        match message["type"].as_str() {
            Some("next") => payloads
                .entry(id)
                .or_default()
                .push(message["payload"].clone()),
            Some("complete") => {
                assert_eq!(payloads.get(&id).map_or(0, Vec::len), count, "{message}");
                completed += 1;
            }
            _ => panic!("unexpected message: {message}"),
        }
    }
    payloads
}

fn advance(app: &TestApp, seconds: u64) {
    app.simulator()
        .advance_clock(Duration::from_secs(seconds))
        .expect("the clock advances");
}

/// The state and sequence of a `next` payload.
fn step(payload: &Value) -> (String, u64) {
    let change = &payload["data"]["registrationStatusChanged"];
    assert!(payload["errors"].is_null(), "{payload}");
    (
        change["status"]["state"].as_str().unwrap().to_owned(),
        change["sequence"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn subscribers_of_one_document_share_one_execution_with_their_own_ids() {
    let app = fast_app(&[]).await;
    let mut first = connect_ready(&app).await;
    let mut second = connect_ready(&app).await;
    let (first_ids, second_ids) = (["a", "b", "c"], ["a", "z"]);
    for id in first_ids {
        first.watch(id, "demo-succeeds.com", false).await;
    }
    for id in second_ids {
        second.watch(id, "demo-succeeds.com", false).await;
    }
    let mut seen = Vec::new();
    for (advance_by, complete) in [(0, false), (10, false), (20, true)] {
        if advance_by > 0 {
            advance(&app, advance_by);
        }
        let mut payloads = read_each(&mut first, &first_ids, 1, complete).await;
        if !complete {
            assert_eq!(
                app.pollers.stats().active_watchers,
                1,
                "five subscribers, one execution watching the poller"
            );
        }
        let from_second = read_each(&mut second, &second_ids, 1, complete).await;
        for (id, events) in from_second {
            payloads.insert(format!("second-{id}"), events);
        }
        let reference = payloads["a"].clone();
        for (id, events) in &payloads {
            assert_eq!(events, &reference, "subscriber {id} got the same payload");
        }
        seen.push(step(&reference[0]));
    }
    let expected = [("PENDING", 1), ("IN_PROGRESS", 2), ("SUCCEEDED", 3)];
    let expected: Vec<(String, u64)> = expected
        .iter()
        .map(|(state, sequence)| ((*state).to_owned(), *sequence))
        .collect();
    assert_eq!(seen, expected);
    app.pollers.until_idle().await;
    assert_eq!(app.pollers.stats().pollers_started, 1);
}

#[tokio::test]
async fn a_late_joiner_gets_the_current_status_first_then_what_follows() {
    let app = fast_app(&[]).await;
    let mut early = connect_ready(&app).await;
    early.watch("1", "demo-succeeds.com", false).await;
    assert_eq!(next_change(&mut early, "1").await["sequence"], 1);
    advance(&app, 10);
    let moved = next_change(&mut early, "1").await;
    assert_eq!(moved["status"]["state"], "IN_PROGRESS");

    let mut late = connect_ready(&app).await;
    late.watch("late", "demo-succeeds.com", false).await;
    let now = next_change(&mut late, "late").await;
    assert_eq!(now, moved, "the late joiner starts from the status now");
    assert_eq!(app.pollers.stats().active_watchers, 1, "it joined");

    advance(&app, 20);
    for (client, id) in [(&mut early, "1"), (&mut late, "late")] {
        let last = next_change(client, id).await;
        assert_eq!(
            (last["status"]["state"].clone(), last["sequence"].clone()),
            (json!("SUCCEEDED"), json!(3))
        );
        assert_eq!(client.recv().await, json!({ "type": "complete", "id": id }));
    }
}

#[tokio::test]
async fn different_variables_or_credentials_never_share_an_execution() {
    let simulator = spawn_simulator_with(SimulatorSettings::default().tag_credentials())
        .await
        .handle;
    let mut flags: Vec<&str> = crate::subscriptions::FAST_POLLING.to_vec();
    flags.extend(["--credential-mode", "pass-through-or-server"]);
    let app = TestApp::builder()
        .simulator(simulator)
        .args(&flags)
        .spawn()
        .await;
    let document = "subscription($domain: String!, $keep: Boolean! = false) { \
        registrationStatusChanged(domain: $domain, keepWatchingActionRequired: $keep) \
        { sequence status { state context } } }";
    let subscribe = |id: &str, keep: bool| {
        let variables = json!({ "domain": "demo-pending.com", "keep": keep });
        json!({ "type": "subscribe", "id": id, "payload": { "query": document, "variables": variables } })
    };
    let mut gateways_own = connect_ready(&app).await;
    gateways_own.send(subscribe("1", false)).await;
    let own = next_change(&mut gateways_own, "1").await;
    gateways_own.send(subscribe("2", true)).await;
    next_change(&mut gateways_own, "2").await;
    assert_eq!(
        app.pollers.stats().active_watchers,
        2,
        "other variables, another execution"
    );

    let mut callers = connect(&app, "graphql-transport-ws").await;
    callers
        .send(json!({ "type": "connection_init", "payload": { "Authorization": "Bearer own-token" } }))
        .await;
    assert_eq!(callers.recv().await["type"], "connection_ack");
    callers.send(subscribe("1", false)).await;
    let theirs = next_change(&mut callers, "1").await;
    assert_eq!(
        app.pollers.stats().active_watchers,
        3,
        "another credential, another execution"
    );
    let tag = |change: &Value| change["status"]["context"]["credential_tag"].clone();
    assert_eq!(tag(&own), json!(credential_tag(TOKEN)));
    assert_eq!(tag(&theirs), json!(credential_tag("own-token")));
}
