//! The simulator's List route, 9109 for forbidden accounts, create refusals for
//! missing contacts and unsupported extensions, the `registrar-sandbox` family and
//! the token check, against the shapes in `docs/upstream-api.md`.

use serde_json::{Value, json};

use crate::support::{ACCOUNT, TOKEN, TestSimulator, json, spawn_simulator};

fn path(family: &str, account: &str, tail: &str) -> String {
    format!("/accounts/{account}/{family}/registrations{tail}")
}

async fn create(sim: &TestSimulator, account: &str, body: Value) -> (u16, Value) {
    let url = sim.url(&path("registrar", account, ""));
    let request = sim
        .client
        .post(url)
        .bearer_auth(TOKEN)
        .header("prefer", "respond-async");
    json(request.json(&body).send().await.unwrap()).await
}

#[tokio::test]
async fn the_list_pages_registered_domains_with_a_cursor_in_the_platforms_envelope() {
    let sim = spawn_simulator().await;
    for domain in ["alpha.com", "bravo.net", "charlie.org"] {
        create(&sim, ACCOUNT, json!({ "domain_name": domain })).await;
    }
    sim.advance(10);
    let sim = &sim;
    let list = |query: String| {
        let path = path("registrar", ACCOUNT, &query);
        async move { sim.get(&path).await }
    };
    let (status, first) = json(list("?per_page=2".into()).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&first["success"], &first["errors"], &first["messages"]),
        (&json!(true), &json!([]), &json!([]))
    );
    let names: Vec<&str> = first["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["domain_name"].as_str().unwrap())
        .collect();
    // demo-succeeded.com is registered in every account from the start.
    assert_eq!(names, ["alpha.com", "bravo.net"]);
    assert_eq!(first["result_info"]["count"], 2);
    assert_eq!(first["result_info"]["per_page"], 2);
    let cursor = first["result_info"]["cursor"].as_str().unwrap();
    assert!(!cursor.is_empty());
    let (_, rest) = json(list(format!("?per_page=2&cursor={cursor}")).await).await;
    let names: Vec<&str> = rest["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["domain_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["charlie.org", "demo-succeeded.com"]);
    assert_eq!(rest["result_info"]["cursor"], "", "no more pages");
    assert_eq!(rest["result"][0]["status"], "active");
    let (status, bad) = json(list("?per_page=51".into()).await).await;
    assert_eq!(status, 400);
    assert_eq!(bad["errors"][0]["code"], 10000);
}

#[tokio::test]
async fn a_forbidden_account_answers_9109_for_every_credential() {
    let sim = spawn_simulator().await;
    let control = sim.control_url("/forbidden-accounts");
    let forbid = |accounts: Value| {
        sim.client
            .put(&control)
            .json(&json!({ "accounts": accounts }))
            .send()
    };
    assert_eq!(forbid(json!([ACCOUNT])).await.unwrap().status(), 200);
    let (status, body) = json(sim.status("demo-succeeded.com").await).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({ "success": false, "errors": [{ "code": 9109, "message": "Unauthorized to access requested resource" }], "messages": [], "result": null })
    );
    forbid(json!([])).await.unwrap();
    assert_eq!(sim.status("demo-succeeded.com").await.status(), 200);
    sim.stop().await;
}

#[tokio::test]
async fn creates_are_refused_for_unsupported_extensions_and_missing_contacts() {
    let sim = spawn_simulator().await;
    let refusal = |message: &str| json!({ "errors": [{ "code": 10000, "message": message }], "messages": [], "result": null, "success": false });
    let (status, body) = create(&sim, ACCOUNT, json!({ "domain_name": "shop.unsupported" })).await;
    assert_eq!(
        (status, body),
        (
            400,
            refusal("Registration is not supported for this extension")
        )
    );
    let no_contact =
        "No registrant contact provided and no default address book entry found for this account.";
    let (status, body) = create(
        &sim,
        "00000000000000000000000000000042",
        json!({ "domain_name": "shop.com" }),
    )
    .await;
    assert_eq!((status, body), (400, refusal(no_contact)));
    let contacts = json!({ "registrant": { "email": "a@example.com", "phone": "+1.5555555555" } });
    let (status, _) = create(
        &sim,
        "00000000000000000000000000000042",
        json!({ "domain_name": "shop.com", "contacts": contacts }),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(sim.handle.stats().creates, 3);
    sim.stop().await;
}

#[tokio::test]
async fn the_registrar_sandbox_family_has_the_same_routes_and_shapes() {
    let sim = spawn_simulator().await;
    let status = path(
        "registrar-sandbox",
        ACCOUNT,
        "/demo-blocked.com/registration-status",
    );
    let (code, body) = json(sim.get(&status).await).await;
    assert_eq!(
        (code, body["result"]["state"].as_str()),
        (200, Some("pending"))
    );
    let (code, body) = json(
        sim.get(&path(
            "registrar-sandbox",
            ACCOUNT,
            "/nothing.com/registration-status",
        ))
        .await,
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        body["errors"][0]["message"],
        "No workflow found for nothing.com"
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_token_check_answers_active_for_an_accepted_token_and_1000_for_a_refused_one() {
    let sim = spawn_simulator().await;
    sim.handle.refuse_credential("revoked-token");
    let (status, body) = json(sim.get("/user/tokens/verify").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"], json!([]));
    assert_eq!(body["result"]["status"], "active");
    let id = body["result"]["id"].as_str().unwrap();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    let refused = sim
        .client
        .get(sim.url("/user/tokens/verify"))
        .bearer_auth("revoked-token")
        .send()
        .await
        .unwrap();
    let (status, body) = json(refused).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({ "success": false, "errors": [{ "code": 1000, "message": "Invalid API Token" }], "messages": [], "result": null })
    );

    let key_pair = sim
        .client
        .get(sim.url("/user/tokens/verify"))
        .header("x-auth-email", "user@example.com")
        .header("x-auth-key", "0123456789abcdef0123456789abcdef01234")
        .send()
        .await
        .unwrap();
    let (status, body) = json(key_pair).await;
    assert_eq!(
        (status, body["errors"][0]["code"].clone()),
        (400, json!(9106)),
        "a key pair is no token"
    );
    sim.stop().await;
}
