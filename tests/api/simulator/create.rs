//! Create Registration: 201 inside the sync window, 202 after it or on
//! `Prefer: respond-async`, the domain as idempotency key, validation errors.

use serde_json::{Value, json};

use crate::support::{ACCOUNT, TOKEN, TestSimulator, header, json, spawn_simulator, status_path};

fn create(sim: &TestSimulator, body: Value) -> reqwest::RequestBuilder {
    let url = sim.url(&format!("/accounts/{ACCOUNT}/registrar/registrations"));
    sim.client.post(url).bearer_auth(TOKEN).json(&body)
}

#[tokio::test]
async fn a_workflow_completing_inside_the_sync_window_answers_201() {
    let sim = spawn_simulator().await;
    let request = create(
        &sim,
        json!({"domain_name": "my-new-startup.com", "auto_renew": true, "years": 2}),
    );
    let pending = tokio::spawn(request.send());
    sim.handle.creates_waiting(1).await;
    sim.advance(2);
    sim.advance(3);
    let response = pending.await.unwrap().unwrap();
    assert_eq!(header(&response, "preference-applied"), None);
    let (status, body) = json(response).await;
    assert_eq!(status, 201);
    let result = &body["result"];
    assert_eq!(
        (result["state"].as_str(), result["completed"].as_bool()),
        (Some("succeeded"), Some(true))
    );
    let registration = &result["context"]["registration"];
    assert_eq!(registration["auto_renew"], true);
    assert_eq!(registration["privacy_mode"], "redaction");
    assert_eq!(registration["domain_name"], "my-new-startup.com");
    sim.stop().await;
}

#[tokio::test]
async fn a_workflow_still_running_after_the_sync_window_answers_202_with_location() {
    let sim = spawn_simulator().await;
    let pending = tokio::spawn(create(&sim, json!({"domain_name": "demo-pending.com"})).send());
    sim.handle.creates_waiting(1).await;
    sim.advance(10);
    let response = pending.await.unwrap().unwrap();
    let location = header(&response, "location");
    assert_eq!(header(&response, "preference-applied"), None);
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body["result"]["state"].as_str()),
        (202, Some("pending"))
    );
    assert_eq!(
        location.as_deref(),
        body["result"]["links"]["self"].as_str()
    );
    assert_eq!(location.unwrap(), status_path(ACCOUNT, "demo-pending.com"));
    sim.stop().await;
}

#[tokio::test]
async fn prefer_respond_async_answers_202_at_once_even_among_other_preferences() {
    let sim = spawn_simulator().await;
    let response = create(&sim, json!({"domain_name": "demo-succeeded.com"}))
        .header("Prefer", "handling=lenient, respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&response, "preference-applied").as_deref(),
        Some("respond-async")
    );
    assert!(header(&response, "location").is_some());
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body["result"]["state"].as_str()),
        (202, Some("succeeded"))
    );
    sim.stop().await;
}

#[tokio::test]
async fn creating_a_domain_that_has_a_workflow_returns_that_workflow() {
    let sim = spawn_simulator().await;
    let first = sim.status_result("demo-succeeded.com").await;
    sim.advance(60);
    let (status, body) = json(
        create(&sim, json!({"domain_name": "Demo-Succeeded.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "already complete: no waiting");
    assert_eq!(body["result"], first, "the same workflow, not a new one");
    sim.stop().await;
}

#[tokio::test]
async fn invalid_create_bodies_get_every_error_with_its_pointer() {
    let sim = spawn_simulator().await;
    let cases = [
        (json!({}), vec![("domain_name is required", "/domain_name")]),
        (
            json!({"domain_name": "bad_name.com"}),
            vec![("Invalid domain name", "/domain_name")],
        ),
        (
            json!({"domain_name": "ok.com", "auto_renew": "yes", "years": 0}),
            vec![
                ("Must be a boolean", "/auto_renew"),
                ("Must be an integer between 1 and 10", "/years"),
            ],
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = json(create(&sim, body.clone()).send().await.unwrap()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            (answer["success"].as_bool(), &answer["result"]),
            (Some(false), &Value::Null)
        );
        let found: Vec<(&str, &str)> = answer["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["message"].as_str().unwrap(),
                    e["source"]["pointer"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(found, expected, "{body}");
        assert!(
            answer["errors"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["code"] == 10000)
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn an_account_cannot_register_more_than_100_domains() {
    let sim = spawn_simulator().await;
    for n in 0..100 {
        let response = create(&sim, json!({"domain_name": format!("d{n}.example")}))
            .header("Prefer", "respond-async")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let (status, body) = json(
        create(&sim, json!({"domain_name": "one-too-many.example"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0],
        json!({"code": 10000, "message": "Domain limit reached: you cannot register more than 100 domains.", "source": {"pointer": "/domain_name"}})
    );
    sim.stop().await;
}
