//! `--federation`: the subgraph's `_service` and `_entities` over HTTP, as a
//! federated gateway calls them (representations in a variable).

use registrar_gateway::graphql::{SchemaShape, sdl};
use serde_json::{Value, json};

use crate::support::spawn_simulator;
use crate::support::{TestApp, change, connect_ready};

/// What Hive Gateway or Apollo Router send for `Domain { registrationStatus }`.
const DOMAIN_STATUSES: &str = r#"
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on Domain { name registrationStatus { domainName state completed } }
  }
}"#;

fn domains(names: &[&str]) -> Value {
    let representations: Vec<Value> = names
        .iter()
        .map(|name| json!({ "__typename": "Domain", "name": name }))
        .collect();
    json!({ "representations": representations })
}

/// POSTs `query`; the body whatever the HTTP status (request errors answer 400).
async fn entities(app: &TestApp, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables });
    let response = app.post_json(body).await;
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn the_subgraph_answers_its_sdl_and_the_standalone_schema_has_no_federation_fields() {
    let app = TestApp::builder().args(&["--federation"]).spawn().await;
    let body = app.query("{ _service { sdl } }", json!({})).await;
    let served = body["data"]["_service"]["sdl"].as_str().expect("an SDL");
    assert_eq!(served, sdl(SchemaShape::Subgraph));
    assert!(served.contains("url: \"https://specs.apollo.dev/federation/v2."));
    assert!(served.contains("type Domain @key(fields: \"name\")"));
    assert!(served.contains("type RegistrationStatus @key(fields: \"domainName\")"));

    let standalone = TestApp::builder().spawn().await;
    for (query, field) in [
        ("{ _service { sdl } }", "_service"),
        (DOMAIN_STATUSES, "_entities"),
    ] {
        let body = entities(&standalone, query, domains(&["a.com"])).await;
        assert_eq!(body["data"], Value::Null, "{body}");
        let unknown = format!("Unknown field \"{field}\" on type \"Query\"");
        let errors = body["errors"].as_array().expect("errors");
        let mut messages = errors.iter().filter_map(|error| error["message"].as_str());
        assert!(
            messages.any(|message| message.starts_with(&unknown)),
            "{body}"
        );
    }
    assert_eq!(standalone.upstream_calls(), 0);
}

#[tokio::test]
async fn domains_get_their_statuses_with_errors_on_their_own_items() {
    let app = TestApp::builder().args(&["--federation"]).spawn().await;
    let batch = [
        "demo-succeeded.com",
        "nothing-here.com",
        "not a domain",
        "DEMO-Failed.com.",
    ];
    let body = entities(&app, DOMAIN_STATUSES, domains(&batch)).await;
    assert_eq!(
        body["data"]["_entities"],
        json!([
            { "name": "demo-succeeded.com", "registrationStatus": { "domainName": "demo-succeeded.com", "state": "SUCCEEDED", "completed": true } },
            { "name": "nothing-here.com", "registrationStatus": null },
            { "name": "not a domain", "registrationStatus": null },
            { "name": "DEMO-Failed.com.", "registrationStatus": { "domainName": "demo-failed.com", "state": "FAILED", "completed": true } },
        ]),
        "{body}"
    );
    let errors = body["errors"].as_array().expect("one error");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(
        errors[0]["path"],
        json!(["_entities", 2, "registrationStatus"])
    );
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(app.upstream_calls(), 3, "the invalid name made no call");

    // The same cache as a direct query: no new upstream call for these.
    let direct = app.status_of("demo-succeeded.com").await;
    assert_eq!(direct["data"]["registrationStatus"]["state"], "SUCCEEDED");
    let again = entities(&app, DOMAIN_STATUSES, domains(&batch[..2])).await;
    assert_eq!(again["data"]["_entities"][0], body["data"]["_entities"][0]);
    assert_eq!(app.upstream_calls(), 3);
}

#[tokio::test]
async fn a_batch_asking_for_one_domain_many_times_makes_one_upstream_call() {
    let app = TestApp::builder().args(&["--federation"]).spawn().await;
    let batch = ["demo-pending.com"; 20];
    let body = entities(&app, DOMAIN_STATUSES, domains(&batch)).await;
    let items = body["data"]["_entities"].as_array().expect("a list");
    assert_eq!(items.len(), 20);
    assert!(
        items
            .iter()
            .all(|item| item["registrationStatus"]["state"] == "PENDING")
    );
    assert_eq!(app.upstream_calls(), 1);
}

#[tokio::test]
async fn registration_statuses_resolve_by_domain_name() {
    let app = TestApp::builder().args(&["--federation"]).spawn().await;
    let query = r#"query($representations: [_Any!]!) {
      _entities(representations: $representations) { ... on RegistrationStatus { domainName state } }
    }"#;
    let representations = json!({ "representations": [
        { "__typename": "RegistrationStatus", "domainName": "demo-in-progress.com" },
        { "__typename": "RegistrationStatus", "domainName": "../../etc/passwd" },
        { "__typename": "RegistrationStatus", "domainName": "nothing-here.com" },
    ] });
    let body = entities(&app, query, representations).await;
    assert_eq!(
        body["data"]["_entities"],
        json!([{ "domainName": "demo-in-progress.com", "state": "IN_PROGRESS" }, null, null]),
        "{body}"
    );
    let errors = body["errors"].as_array().expect("one error");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["path"], json!(["_entities", 1]));
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(app.upstream_calls(), 2);
}

#[tokio::test]
async fn entity_batches_count_toward_max_lookups_before_anything_runs() {
    let app = TestApp::builder()
        .args(&["--federation", "--max-lookups", "3"])
        .spawn()
        .await;
    let body = entities(
        &app,
        DOMAIN_STATUSES,
        domains(&["a.com", "b.com", "c.com", "d.com"]),
    )
    .await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "TOO_MANY_LOOKUPS");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("4 registration statuses"))
    );

    // Aliases multiply: two statuses for each of two domains is four lookups.
    let aliased = r#"query($representations: [_Any!]!) {
      _entities(representations: $representations) {
        ... on Domain { a: registrationStatus { state } b: registrationStatus { state } }
      }
    }"#;
    let body = entities(&app, aliased, domains(&["a.com", "b.com"])).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "TOO_MANY_LOOKUPS");
    assert_eq!(app.upstream_calls(), 0);

    let body = entities(
        &app,
        DOMAIN_STATUSES,
        domains(&["demo-succeeded.com", "b.com", "c.com"]),
    )
    .await;
    assert_eq!(body["errors"], Value::Null, "{body}");
    assert_eq!(app.upstream_calls(), 3);
}

#[tokio::test]
async fn malformed_representations_are_refused_without_upstream_calls() {
    let app = TestApp::builder().args(&["--federation"]).spawn().await;
    let cases = [
        json!([{ "name": "demo-succeeded.com" }]),
        json!([{ "__typename": "Nope", "name": "demo-succeeded.com" }]),
        json!([{ "__typename": "Domain", "name": 42 }]),
        json!([{ "__typename": "Domain" }]),
        json!(["demo-succeeded.com"]),
        json!(null),
    ];
    for representations in cases {
        let variables = json!({ "representations": representations });
        let body = entities(&app, DOMAIN_STATUSES, variables).await;
        assert_eq!(body["data"], Value::Null, "{representations}: {body}");
        assert!(body["errors"][0]["message"].is_string(), "{body}");
    }
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn entities_follow_the_credential_mode() {
    let simulator = spawn_simulator().await.handle;
    let app = TestApp::builder()
        .simulator(simulator)
        .pass_through()
        .args(&["--federation"])
        .spawn()
        .await;
    let body = entities(&app, DOMAIN_STATUSES, domains(&["demo-succeeded.com"])).await;
    assert_eq!(
        body["data"]["_entities"][0]["registrationStatus"],
        Value::Null
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    assert_eq!(app.upstream_calls(), 0);

    let body = app
        .post_json_with(
            &[("authorization", "Bearer caller-token-0123456789")],
            json!({ "query": DOMAIN_STATUSES, "variables": domains(&["demo-succeeded.com"]) }),
        )
        .await
        .json::<Value>()
        .await
        .expect("a JSON body");
    assert_eq!(
        body["data"]["_entities"][0]["registrationStatus"]["state"], "SUCCEEDED",
        "{body}"
    );
}

#[tokio::test]
async fn the_subgraph_serves_subscriptions_on_its_own_endpoint() {
    let app = TestApp::builder().args(&["--federation"]).spawn().await;
    let mut client = connect_ready(&app).await;
    client.watch("1", "demo-succeeded.com", false).await;
    let next = client.recv().await;
    assert_eq!(next["type"], "next", "{next}");
    let status = &change(&next, "1")["status"];
    assert_eq!(status["state"], "SUCCEEDED");
    assert_eq!(status["completed"], true);
    let complete = client.recv().await;
    assert_eq!(complete, json!({ "type": "complete", "id": "1" }));
    client.close().await;
}

#[tokio::test]
async fn repeated_and_mixed_representations_each_get_their_own_error() {
    let app = TestApp::builder().args(&["--federation"]).spawn().await;
    let query = r#"query($representations: [_Any!]!) {
      _entities(representations: $representations) {
        ... on Domain { registrationStatus { state } }
        ... on RegistrationStatus { state }
      }
    }"#;
    let representations = json!({ "representations": [
        { "__typename": "Domain", "name": "bad name" },
        { "__typename": "RegistrationStatus", "domainName": "bad name" },
        { "__typename": "Domain", "name": "bad name" },
        { "__typename": "Domain", "name": "demo-succeeded.com" },
    ] });
    let body = entities(&app, query, representations).await;
    assert_eq!(
        body["data"]["_entities"],
        json!([
            { "registrationStatus": null },
            null,
            { "registrationStatus": null },
            { "registrationStatus": { "state": "SUCCEEDED" } },
        ]),
        "{body}"
    );
    let errors = body["errors"].as_array().expect("errors");
    let mut paths: Vec<String> = errors.iter().map(|e| e["path"].to_string()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            r#"["_entities",0,"registrationStatus"]"#,
            r#"["_entities",1]"#,
            r#"["_entities",2,"registrationStatus"]"#,
        ],
        "{body}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "BAD_USER_INPUT")
    );
    assert_eq!(app.upstream_calls(), 1);
}
