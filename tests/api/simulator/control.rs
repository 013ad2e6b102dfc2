//! Counters and the `/__sim/` control API over HTTP.

use serde_json::{Value, json};

use crate::support::{ACCOUNT, json, spawn_simulator, status_path};

#[tokio::test]
async fn every_api_request_is_counted_per_registration_and_counters_reset() {
    let sim = spawn_simulator().await;
    sim.status("demo-succeeds.com").await;
    sim.status("DEMO-SUCCEEDS.com").await;
    sim.status("example.com").await;
    sim.get("/no/such/route").await;
    sim.client
        .get(sim.url(&status_path(ACCOUNT, "demo-fails.com")))
        .send()
        .await
        .unwrap();
    let stats = sim.handle.stats();
    assert_eq!(stats.requests_total, 5);
    assert_eq!(sim.handle.requests_for(ACCOUNT, "demo-succeeds.com"), 2);
    assert_eq!(sim.handle.requests_for(ACCOUNT, "example.com"), 1);
    assert_eq!(
        sim.handle.requests_for(ACCOUNT, "demo-fails.com"),
        1,
        "counted whatever the answer"
    );
    assert_eq!(stats.responses_by_class["2xx"], 2);
    assert_eq!(stats.responses_by_class["4xx"], 3);
    sim.handle.reset_stats();
    assert_eq!(sim.handle.stats().requests_total, 0);
    assert_eq!(sim.handle.requests_for(ACCOUNT, "demo-succeeds.com"), 0);
    sim.stop().await;
}

#[tokio::test]
async fn the_control_api_drives_the_same_simulator_over_http() {
    let sim = spawn_simulator().await;
    let http = &sim.client;
    sim.status("demo-action-required.com").await;
    let (_, stats) = json(http.get(sim.control_url("/stats")).send().await.unwrap()).await;
    assert_eq!(stats["requests_total"], 1);
    assert_eq!(
        stats["registrations"][ACCOUNT]["demo-action-required.com"],
        1
    );
    let reset = http
        .post(sim.control_url("/stats/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(sim.handle.stats().requests_total, 0);

    let advanced = http
        .post(sim.control_url("/clock/advance"))
        .json(&json!({"seconds": 15}))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), 200);
    assert_eq!(
        sim.status_result("demo-action-required.com").await["state"],
        "action_required"
    );
    let resolve = format!("/workflows/{ACCOUNT}/demo-action-required.com/resolve");
    assert_eq!(
        http.post(sim.control_url(&resolve))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        sim.status_result("demo-action-required.com").await["state"],
        "in_progress"
    );
    let (status, again) = json(http.post(sim.control_url(&resolve)).send().await.unwrap()).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (
            409,
            Some("the workflow is in_progress, not action_required")
        )
    );

    let add = json!({"account_id": ACCOUNT, "domain_name": "added.example", "scenario": "blocked"});
    assert_eq!(
        http.post(sim.control_url("/workflows"))
            .json(&add)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(sim.status_result("added.example").await["state"], "pending");

    let faults = http
        .put(sim.control_url("/faults"))
        .json(&json!({"error_share": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 200);
    assert_eq!(sim.status("added.example").await.status(), 502);
    let (_, current) = json(http.get(sim.control_url("/faults")).send().await.unwrap()).await;
    assert_eq!(current["error_share"], 1.0);

    let refuse = http
        .put(sim.control_url("/refused-credentials"))
        .json(&json!({"credentials": ["test-token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refuse.status(), 200);
    assert_eq!(sim.handle.refused_credentials(), ["test-token"]);

    let (_, scenarios) = json(
        http.get(sim.control_url("/scenarios"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = scenarios
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"action-required") && names.contains(&"quick-success"),
        "{names:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn bad_control_input_gets_a_clear_400() {
    let sim = spawn_simulator().await;
    let http = &sim.client;
    let cases: [(&str, &str, Value, &str); 5] = [
        (
            "PUT",
            "/faults",
            json!({"hang_share": 2.0}),
            "hang_share must be between 0.0 and 1.0, got 2",
        ),
        (
            "POST",
            "/clock/advance",
            json!({"seconds": -1}),
            "seconds must be a number from 0 to 315360000",
        ),
        (
            "POST",
            "/clock/advance",
            json!({"seconds": 315_360_001}),
            "one advance may move the clock at most 315360000 seconds (10 years)",
        ),
        (
            "POST",
            "/workflows",
            json!({"account_id": ACCOUNT, "domain_name": "x.example", "scenario": "nope"}),
            "unknown scenario \"nope\"",
        ),
        (
            "POST",
            "/workflows",
            json!({"account_id": "a/b", "domain_name": "x.example", "scenario": "fails"}),
            "invalid account id",
        ),
    ];
    for (method, path, body, expected) in cases {
        let request = http
            .request(method.parse().unwrap(), sim.control_url(path))
            .json(&body);
        let (status, answer) = json(request.send().await.unwrap()).await;
        assert_eq!(status, 400, "{path} {body}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(expected), "{error}");
    }
    let garbage = http
        .put(sim.control_url("/faults"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    let (status, answer) = json(garbage).await;
    assert_eq!(status, 400);
    assert!(answer["error"].is_string());
    sim.stop().await;
}

#[tokio::test]
async fn the_clock_refuses_to_advance_past_the_year_9999_and_keeps_serving() {
    let sim = spawn_simulator().await;
    let http = &sim.client;
    let advance = |seconds: u64| {
        http.post(sim.control_url("/clock/advance"))
            .json(&json!({ "seconds": seconds }))
            .send()
    };
    let ten_years = 315_360_000;
    let mut refused = None;
    for _ in 0..1_000 {
        let (status, answer) = json(advance(ten_years).await.unwrap()).await;
        if status != 200 {
            refused = Some((status, answer));
            break;
        }
    }
    let (status, answer) = refused.expect("refused within 1,000 advances of ten years");
    assert_eq!(status, 400, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("past 9999-12-31T23:59:59Z"), "{error}");

    let (_, clock) = json(http.get(sim.control_url("/clock")).send().await.unwrap()).await;
    let now = clock["now"].as_str().unwrap();
    assert!(
        now.starts_with("99"),
        "the clock stayed where it was: {now}"
    );
    let status = sim.status_result("demo-succeeds.com").await;
    assert_eq!(status["state"], "pending", "the simulator still answers");
    let (status, _) = json(advance(1).await.unwrap()).await;
    assert_eq!(status, 200, "small advances still fit");
    sim.stop().await;
}
