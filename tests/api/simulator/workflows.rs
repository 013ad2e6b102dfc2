//! Demo scenarios walked step by step on the manual clock, and Get Registration.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use std::time::Duration;

use registrar_simulator::SimulatorSettings;

use crate::support::{ACCOUNT, json, spawn_simulator, spawn_simulator_with};

/// (seconds to advance before reading, expected state, updated_at offset from created_at).
type Walk = &'static [(u64, &'static str, i64)];

const WALKS: &[(&str, Walk)] = &[
    (
        "demo-succeeds.com",
        &[
            (0, "pending", 0),
            (9, "pending", 0),
            (1, "in_progress", 10),
            (20, "succeeded", 30),
            (600, "succeeded", 30),
        ],
    ),
    (
        "demo-fails.com",
        &[
            (0, "pending", 0),
            (10, "in_progress", 10),
            (20, "failed", 30),
        ],
    ),
    (
        "demo-blocked.com",
        &[
            (0, "pending", 0),
            (5, "in_progress", 5),
            (10, "blocked", 15),
            (29, "blocked", 15),
            (1, "in_progress", 45),
            (10, "succeeded", 55),
        ],
    ),
    (
        "demo-pending.com",
        &[
            (0, "pending", 0),
            (86_399, "pending", 0),
            (1, "in_progress", 86_400),
            (10, "succeeded", 86_410),
        ],
    ),
    (
        "demo-in-progress.com",
        &[(0, "in_progress", 0), (86_400, "succeeded", 86_400)],
    ),
    (
        "demo-succeeded.com",
        &[(0, "succeeded", 0), (1000, "succeeded", 0)],
    ),
    ("demo-failed.com", &[(0, "failed", 0), (1000, "failed", 0)]),
];

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp string"))
        .unwrap()
        .to_utc()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Checks every field of a status result against the documented shape for its state.
fn assert_shape(result: &Value, name: &str, state: &str) {
    assert_eq!(result["state"], state, "{name}");
    assert_eq!(
        result["completed"],
        state == "succeeded" || state == "failed",
        "{name} {state}"
    );
    let resource = format!("/accounts/{ACCOUNT}/registrar/registrations/{name}");
    assert_eq!(result["links"]["resource"], resource.as_str());
    assert_eq!(
        result["links"]["self"],
        format!("{resource}/registration-status").as_str()
    );
    let context = &result["context"];
    assert_eq!(context["domain_name"], name);
    let expected_context: &[&str] = match state {
        "action_required" => &["action", "confirmation_sent_to", "domain_name"],
        "blocked" => &["blocked_by", "detail", "domain_name"],
        "succeeded" => &["domain_name", "registration"],
        _ => &["domain_name"],
    };
    assert_eq!(keys(context), expected_context, "{name} {state} context");
    let mut expected_keys = vec![
        "completed",
        "context",
        "created_at",
        "links",
        "state",
        "updated_at",
    ];
    if state == "failed" {
        expected_keys.insert(3, "error");
        assert_eq!(result["error"]["code"], "registry_rejected");
        assert!(result["error"]["message"].is_string());
    }
    assert_eq!(
        keys(result),
        expected_keys,
        "{name} {state}: error is absent unless failed"
    );
    if state == "succeeded" {
        let registration = &context["registration"];
        assert_eq!(registration["domain_name"], name);
        assert_eq!(registration["status"], "active");
        assert_eq!(registration["created_at"], result["created_at"]);
        assert_eq!(
            time(&registration["expires_at"]) - time(&result["created_at"]),
            TimeDelta::days(365)
        );
        assert_eq!(
            keys(registration),
            [
                "auto_renew",
                "created_at",
                "domain_name",
                "expires_at",
                "locked",
                "privacy_mode",
                "status"
            ]
        );
    }
}

#[tokio::test]
async fn each_demo_scenario_walks_its_full_sequence_as_the_clock_advances() {
    for (name, walk) in WALKS {
        let sim = spawn_simulator().await;
        let created_at = time(&sim.status_result(name).await["created_at"]);
        for (advance, state, updated_offset) in *walk {
            sim.advance(*advance);
            let result = sim.status_result(name).await;
            assert_shape(&result, name, state);
            assert_eq!(
                time(&result["created_at"]),
                created_at,
                "{name}: created_at never moves"
            );
            assert_eq!(
                time(&result["updated_at"]) - created_at,
                TimeDelta::seconds(*updated_offset),
                "{name} {state}"
            );
        }
        sim.stop().await;
    }
}

#[tokio::test]
async fn action_required_waits_for_the_user_and_then_moves_on() {
    let sim = spawn_simulator().await;
    let name = "demo-action-required.com";
    let created_at = time(&sim.status_result(name).await["created_at"]);
    sim.advance(15);
    let waiting = sim.status_result(name).await;
    assert_shape(&waiting, name, "action_required");
    assert_eq!(
        waiting["context"]["action"],
        "registrant_email_confirmation_pending"
    );
    assert_eq!(
        waiting["context"]["confirmation_sent_to"],
        "r***@demo-action-required.com"
    );
    sim.advance(30 * 86_400);
    let still = sim.status_result(name).await;
    assert_eq!(still, waiting, "action_required never resolves on its own");

    sim.handle.resolve_action(ACCOUNT, name).unwrap();
    let resumed = sim.status_result(name).await;
    assert_shape(&resumed, name, "in_progress");
    assert_eq!(
        time(&resumed["updated_at"]) - created_at,
        TimeDelta::seconds(15 + 30 * 86_400)
    );
    sim.advance(10);
    assert_shape(&sim.status_result(name).await, name, "succeeded");
    assert!(
        sim.handle.resolve_action(ACCOUNT, name).is_err(),
        "nothing left to resolve"
    );
    sim.stop().await;
}

#[tokio::test]
async fn demo_domains_exist_in_every_account_from_its_first_request() {
    let sim = spawn_simulator().await;
    sim.status_result("demo-succeeds.com").await;
    sim.advance(100);
    let other = crate::support::status_path("abc123", "demo-succeeds.com");
    let (status, body) = json(sim.get(&other).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["result"]["state"], "pending",
        "the new account's workflow starts on first touch"
    );
    sim.stop().await;
}

#[tokio::test]
async fn get_registration_answers_the_resource_once_the_workflow_succeeded() {
    let sim = spawn_simulator().await;
    let path = format!("/accounts/{ACCOUNT}/registrar/registrations/demo-succeeds.com");
    let (status, body) = json(sim.get(&path).await).await;
    assert_eq!(
        (status, body["errors"][0]["message"].as_str()),
        (404, Some("Domain not found"))
    );
    assert_eq!(body["errors"][0]["code"], 10000);

    sim.advance(30);
    let (status, body) = json(sim.get(&path).await).await;
    assert_eq!(status, 200);
    let from_status = sim.status_result("demo-succeeds.com").await;
    assert_eq!(
        body["result"], from_status["context"]["registration"],
        "same object as context.registration"
    );

    let (status, body) = json(
        sim.get(&format!(
            "/accounts/{ACCOUNT}/registrar/registrations/not_a_domain"
        ))
        .await,
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["message"].as_str()),
        (400, Some("Invalid domain name"))
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_scenario_can_be_started_for_any_domain() {
    let sim = spawn_simulator().await;
    sim.handle
        .add_workflow(ACCOUNT, "mine.example", "fails")
        .unwrap();
    assert_eq!(sim.status_result("mine.example").await["state"], "pending");
    sim.advance(30);
    assert_shape(
        &sim.status_result("mine.example").await,
        "mine.example",
        "failed",
    );
    let unknown = sim
        .handle
        .add_workflow(ACCOUNT, "x.example", "no-such-scenario");
    assert_eq!(
        unknown.unwrap_err().to_string(),
        "unknown scenario \"no-such-scenario\" (GET /__sim/scenarios lists them)"
    );
    sim.stop().await;
}

/// With a restart time (the sandbox's and `simulate`'s default), an ended moving demo
/// that nobody read for that long starts over on its next read; a read keeps it
/// ended a while longer; fixed-state demos stay fixed. All on the manual clock.
#[tokio::test]
async fn an_ended_moving_demo_starts_over_once_unread_for_the_restart_time() {
    let settings = SimulatorSettings::default().restart_demos_after(Duration::from_secs(2));
    let sim = spawn_simulator_with(settings).await;
    let first = sim.status_result("demo-succeeds.com").await;
    assert_eq!(first["state"], "pending");
    assert_eq!(
        sim.status_result("demo-failed.com").await["state"],
        "failed"
    );
    sim.advance(30);
    assert_eq!(
        sim.status_result("demo-succeeds.com").await["state"],
        "succeeded"
    );
    sim.advance(1);
    assert_eq!(
        sim.status_result("demo-succeeds.com").await["state"],
        "succeeded",
        "read 1 s after the last read: still ended"
    );
    sim.advance(2);
    let again = sim.status_result("demo-succeeds.com").await;
    assert_eq!(again["state"], "pending", "unread for 2 s: started over");
    assert_eq!(
        time(&again["created_at"]) - time(&first["created_at"]),
        TimeDelta::seconds(33)
    );
    assert_eq!(again["updated_at"], again["created_at"]);
    let (status, _) = json(
        sim.get(&format!(
            "/accounts/{ACCOUNT}/registrar/registrations/demo-succeeds.com"
        ))
        .await,
    )
    .await;
    assert_eq!(status, 404, "no Registration while it runs again");
    sim.advance(30);
    assert_eq!(
        sim.status_result("demo-succeeds.com").await["state"],
        "succeeded"
    );
    assert_eq!(
        sim.status_result("demo-failed.com").await["state"],
        "failed",
        "fixed demos stay fixed"
    );
    sim.stop().await;
}

/// Without one (tests, benchmarks), demos stay where they ended however long
/// nobody reads them.
#[tokio::test]
async fn without_a_restart_time_an_ended_demo_stays_ended() {
    let sim = spawn_simulator().await;
    sim.status_result("demo-succeeds.com").await;
    sim.advance(3600);
    assert_eq!(
        sim.status_result("demo-succeeds.com").await["state"],
        "succeeded"
    );
    sim.stop().await;
}
