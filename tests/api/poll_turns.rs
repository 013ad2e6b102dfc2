//! The poll economy at the limit, over real sockets: one client watches more
//! registrations than the budget can poll at their backoff's pace, and the gateway
//! admits every watch, then polls them in a fair rotation within the budget.
//!
//! The case scaled down: 60 registrations (pending, then in progress, then
//! succeeded) watched by one client over 6 graphql-transport-ws connections, with the
//! default client share (a quarter of the budget) and the default reserve; a budget of
//! 200 requests per 10 s (180 after the reserve: about 16 polls a second) where the
//! backoff asks for 60 a second. Fairness is checked in poll counts at the simulator,
//! not in time: after each change every registration is polled once or twice before
//! all its subscribers have seen it, none many times while another waits.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use registrar_simulator::SimulatorSettings;

use crate::support::spawn_simulator_with;
use crate::support::{ACCOUNT, TestApp, WsClient, change, connect_ready};

const CONNECTIONS: usize = 6;
const PER_CONNECTION: usize = 10;
const REGISTRATIONS: usize = CONNECTIONS * PER_CONNECTION;

fn name(registration: usize) -> String {
    format!("watched-{registration}.com")
}

/// Reads `connection`'s messages until each of its subscriptions saw `state`
/// (and, when `complete`, ended); any error fails the test.
async fn until_each_sees(client: &mut WsClient, state: &str, complete: bool) {
    let mut seen = BTreeMap::new();
    let mut completed = 0;
    while seen.len() < PER_CONNECTION || (complete && completed < PER_CONNECTION) {
        let message = client.recv().await;
        match message["type"].as_str() {
            Some("next") => {
                let id = message["id"].as_str().unwrap().to_owned();
                let change = change(&message, &id);
                if change["status"]["state"] == state {
                    seen.insert(id, ());
                }
            }
            Some("complete") => completed += 1,
            _ => panic!("a subscriber was refused or failed: {message}"),
        }
    }
}

/// Requests the simulator saw per watched registration.
fn polls(app: &crate::support::TestApp) -> Vec<u64> {
    let stats = app.simulator().stats();
    let counted = stats
        .registrations
        .get(ACCOUNT)
        .cloned()
        .unwrap_or_default();
    (0..REGISTRATIONS)
        .map(|registration| counted.get(&name(registration)).copied().unwrap_or(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_watches_than_the_budget_polls_are_all_admitted_and_polled_in_turn() {
    const LIMIT: u32 = 200;
    const WINDOW: Duration = Duration::from_secs(10);
    let simulator = SimulatorSettings::default().rate_limit(LIMIT, WINDOW);
    let simulator = spawn_simulator_with(simulator).await.handle;
    for registration in 0..REGISTRATIONS {
        simulator
            .add_workflow(ACCOUNT, &name(registration), "succeeds")
            .unwrap();
    }
    let limit = LIMIT.to_string();
    let window = format!("{}s", WINDOW.as_secs());
    let flags = [
        "--upstream-budget",
        &limit,
        "--upstream-budget-window",
        &window,
        // The client's share of lookups stays at its default: watches do not spend it.
        "--client-budget-share",
        "0.25",
        "--poll-initial",
        "1s",
        "--poll-max",
        "1s",
        "--ws-keepalive",
        "1h",
    ];
    let app = TestApp::builder()
        .simulator(simulator)
        .args(&flags)
        .spawn()
        .await;

    let mut clients = Vec::new();
    for connection in 0..CONNECTIONS {
        let mut client = connect_ready(&app).await;
        for i in 0..PER_CONNECTION {
            let registration = connection * PER_CONNECTION + i;
            client
                .watch(&format!("w{registration}"), &name(registration), false)
                .await;
        }
        clients.push(client);
    }
    // Every subscriber is admitted and gets its status.
    join_all(
        clients
            .iter_mut()
            .map(|client| until_each_sees(client, "PENDING", false)),
    )
    .await;

    // Each change is seen by every subscriber, every registration polled in turn.
    for (advance, state, complete) in [(10, "IN_PROGRESS", false), (20, "SUCCEEDED", true)] {
        let before = polls(&app);
        app.simulator()
            .advance_clock(Duration::from_secs(advance))
            .unwrap();
        join_all(
            clients
                .iter_mut()
                .map(|client| until_each_sees(client, state, complete)),
        )
        .await;
        let after = polls(&app);
        let spent: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        // One poll finds the change; a second one when the poll before the clock
        // moved was already on its way. More would be a turn taken from another.
        assert!(
            spent.iter().all(|polls| (1..=2).contains(polls)),
            "polls per registration until every subscriber saw {state}: {spent:?}"
        );
    }

    let stats = app.simulator().stats();
    assert_eq!(stats.rate_limited, 0, "the upstream never had to refuse");
}
