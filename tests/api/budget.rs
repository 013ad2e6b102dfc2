//! The upstream budget under load: 500 watched registrations and a query storm never
//! push the upstream past the budget, measured at the simulator, and a registration
//! whose state moves is still followed while hundreds of blocked ones compete for the
//! same budget. The simulator's own limit is twice the budget, so its `Ratelimit`
//! headers never tell the gateway to stop: the budget alone keeps the rate down.
//!
//! Nothing here depends on how fast the machine is: the budget's window (40 minutes)
//! is far longer than the run, so its burst, not its refill, decides who gets through.
//! The burst (a tenth of the budget) holds every first poll and the blocked pollers'
//! own burst at once, however long the subscriptions take to start; what is left of
//! it is smaller than the storm, which the refill (2.5 requests a second) could only
//! make up for if the run took minutes.

use std::time::{Duration, Instant};

use futures::future::join_all;
use registrar_simulator::SimulatorSettings;
use serde_json::Value;

use crate::support::spawn_simulator_with;
use crate::support::{ACCOUNT, TestApp};
use crate::support::{WsClient, change, connect_ready};

/// Its burst, a tenth (670), holds the 500 first polls and the background class's
/// own burst (a quarter of a tenth: 167): 667.
const BUDGET: u32 = 6_700;
const WINDOW: Duration = Duration::from_secs(40 * 60);
const MOVING: usize = 10;
const BLOCKED_CONNECTIONS: usize = 5;
const BLOCKED_PER_CONNECTION: usize = 98;
/// More queries than the burst has left after the first polls (170).
const STORM: usize = 300;

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
    let simulator = SimulatorSettings::default().rate_limit(2 * BUDGET, WINDOW);
    let simulator = spawn_simulator_with(simulator).await.handle;
    for i in 0..MOVING {
        simulator
            .add_workflow(ACCOUNT, &format!("moving-{i}.com"), "succeeds")
            .unwrap();
    }
    for i in 0..BLOCKED_CONNECTIONS * BLOCKED_PER_CONNECTION {
        simulator
            .add_workflow(ACCOUNT, &format!("blocked-{i}.com"), "blocked")
            .unwrap();
    }
    // Blocked ones are blocked now (for 30 s of workflow time); moving ones in progress.
    simulator
        .advance_clock(Duration::from_secs(15))
        .expect("the clock advances");
    let budget = BUDGET.to_string();
    let window = format!("{}s", WINDOW.as_secs());
    let flags = [
        "--upstream-budget",
        &budget,
        "--upstream-budget-window",
        &window,
        "--upstream-budget-background-share",
        "0.25",
        "--budget-reserve",
        "0",
        "--upstream-retries",
        "0",
        "--poll-initial",
        "1s",
        "--poll-max",
        "1s",
        "--poll-blocked-initial",
        "1s",
        "--poll-blocked-max",
        "2s",
        "--max-subscriptions-per-connection",
        "100",
        // Protocol pings are websocket_protocol's business; none come during this run.
        "--ws-keepalive",
        "1h",
    ];
    let started = Instant::now();
    let app = TestApp::builder()
        .simulator(simulator)
        .args(&flags)
        .spawn()
        .await;

    // The blocked ones first: once they have their first status they poll in the
    // background class, which can never take more than its own burst of the rest.
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
    join_all(
        blocked
            .iter_mut()
            .map(|client| first_events(client, BLOCKED_PER_CONNECTION)),
    )
    .await;
    let mut moving = connect_ready(&app).await;
    for i in 0..MOVING {
        moving
            .watch(&format!("m{i}"), &format!("moving-{i}.com"), false)
            .await;
    }
    first_events(&mut moving, MOVING).await;
    assert_eq!(app.pollers.stats().active_pollers, 500);

    // A storm of queries that all need the upstream, while the pollers compete.
    let storm = join_all((0..STORM).map(|i| app.status_of_owned(format!("storm-{i}.com")))).await;
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
    app.simulator()
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

    // The budget admits a tenth of itself at once and the rest evenly over the
    // window, so that no window of WINDOW ever holds more than BUDGET: over this
    // run, at most the burst and one request per refill period. A slower run only
    // loosens the bound.
    let stats = app.simulator().stats();
    let elapsed = started.elapsed();
    let (total, classes) = (stats.requests_total, &stats.responses_by_class);
    assert!(elapsed < WINDOW, "the run fits in one window: {elapsed:?}");
    let burst = u64::from(BUDGET / 10);
    let period = WINDOW / (BUDGET - BUDGET / 10);
    let most = burst + (elapsed.as_nanos() / period.as_nanos()) as u64 + 1;
    assert!(
        total <= most,
        "at most {most} requests in {elapsed:?}, not {total}: {classes:?}"
    );
    assert!(
        total >= burst,
        "the burst was spent, so the budget was really under pressure: {total}"
    );
    assert_eq!(
        stats.rate_limited, 0,
        "the upstream never had to refuse: {classes:?}"
    );
}
