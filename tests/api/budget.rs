//! The upstream budget under load: 500 watched registrations and a query storm never
//! push the upstream past the budget, measured at the simulator, and a registration
//! whose state moves is still followed while hundreds of blocked ones compete for the
//! same budget. The simulator's own limit is twice the budget, so its `Ratelimit`
//! headers never tell the gateway to stop: the budget alone keeps the rate down.

use std::time::{Duration, Instant};

use futures::future::join_all;
use registrar_gateway::domain::{AccountId, DomainName};
use registrar_gateway::simulator::SimulatorSettings;
use serde_json::Value;

use crate::support::spawn_simulator_with;
use crate::support::{ACCOUNT, TOKEN, spawn_gateway};
use crate::support::{WsClient, change, connect_ready};

const BUDGET: u32 = 200;
const MOVING: usize = 10;
const BLOCKED_CONNECTIONS: usize = 5;
const BLOCKED_PER_CONNECTION: usize = 98;

/// Reads until every id in `ids` got its first event.
async fn first_events(client: &mut WsClient, ids: usize) {
    let mut seen = 0;
    while seen < ids {
        let message = client.recv().await;
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"]["errors"].is_null(), "{message}");
        seen += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_watched_registrations_and_a_query_storm_stay_within_the_budget() {
    let window = Duration::from_secs(1);
    let simulator = SimulatorSettings::default().rate_limit(2 * BUDGET, window);
    let simulator = spawn_simulator_with(simulator).await.handle;
    let account = AccountId::parse(ACCOUNT).unwrap();
    let domain = |name: String| DomainName::parse(&name).unwrap();
    for i in 0..MOVING {
        simulator
            .add_workflow(&account, &domain(format!("moving-{i}.com")), "succeeds")
            .unwrap();
    }
    for i in 0..BLOCKED_CONNECTIONS * BLOCKED_PER_CONNECTION {
        simulator
            .add_workflow(&account, &domain(format!("blocked-{i}.com")), "blocked")
            .unwrap();
    }
    // Blocked ones are blocked now (for 30 s of workflow time); moving ones in progress.
    simulator
        .advance_clock(Duration::from_secs(15))
        .expect("the clock advances");
    let budget = BUDGET.to_string();
    let flags = [
        "--upstream-budget",
        &budget,
        "--upstream-budget-window",
        "1s",
        "--upstream-retries",
        "0",
        "--poll-initial",
        "20ms",
        "--poll-max",
        "100ms",
        "--poll-blocked-initial",
        "20ms",
        "--poll-blocked-max",
        "100ms",
        "--max-subscriptions-per-connection",
        "100",
    ];
    let app = spawn_gateway(simulator, TOKEN, &flags).await;
    let started = Instant::now();

    let mut moving = connect_ready(&app).await;
    for i in 0..MOVING {
        moving
            .watch(&format!("m{i}"), &format!("moving-{i}.com"), false)
            .await;
    }
    let mut blocked = Vec::new();
    for connection in 0..BLOCKED_CONNECTIONS {
        let mut client = connect_ready(&app).await;
        for i in 0..BLOCKED_PER_CONNECTION {
            let registration = connection * BLOCKED_PER_CONNECTION + i;
            client
                .watch(
                    &format!("b{registration}"),
                    &format!("blocked-{registration}.com"),
                    false,
                )
                .await;
        }
        blocked.push(client);
    }
    first_events(&mut moving, MOVING).await;
    join_all(
        blocked
            .iter_mut()
            .map(|client| first_events(client, BLOCKED_PER_CONNECTION)),
    )
    .await;
    assert_eq!(app.pollers.stats().active_pollers, 500);

    // A storm of queries that all need the upstream, while the pollers compete.
    let storm = join_all((0..300).map(|i| app.status_of_owned(format!("storm-{i}.com")))).await;
    let mut refused = 0;
    for answer in &storm {
        match answer["errors"][0]["extensions"]["code"].as_str() {
            None => assert_eq!(
                answer["data"]["registrationStatus"],
                Value::Null,
                "{answer}"
            ),
            Some("UPSTREAM_RATE_LIMITED") => {
                refused += 1;
                assert!(
                    answer["errors"][0]["extensions"]["retryAfterSeconds"].is_u64(),
                    "{answer}"
                );
            }
            Some(other) => panic!("unexpected error {other}: {answer}"),
        }
    }
    assert!(
        refused > 0,
        "the storm exceeded the budget, so some queries were refused"
    );

    // The moving registrations change state; their subscribers still hear of it.
    app.simulator
        .advance_clock(Duration::from_secs(20))
        .expect("the clock advances");
    let mut completed = 0;
    while completed < MOVING {
        let message = moving.recv().await;
        match message["type"].as_str() {
            Some("next") => {
                let id = message["id"].as_str().unwrap().to_owned();
                assert_eq!(
                    change(&message, &id)["status"]["state"],
                    "SUCCEEDED",
                    "{message}"
                );
            }
            Some("complete") => completed += 1,
            _ => panic!("unexpected message: {message}"),
        }
    }

    // The budget admits at most BUDGET requests in any window of 1 s.
    let windows = started.elapsed().as_secs_f64().ceil() as u64;
    let stats = app.simulator.stats();
    let most = windows * u64::from(BUDGET);
    assert!(
        stats.requests_total <= most,
        "over {windows} windows: {stats:?}"
    );
    assert!(
        stats.requests_total > u64::from(BUDGET),
        "the budget was really under pressure: {stats:?}"
    );
    assert_eq!(
        stats.rate_limited, 0,
        "the upstream never had to refuse: {stats:?}"
    );
}
