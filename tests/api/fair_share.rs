//! Fair shares over real sockets: one greedy client cannot spend the credential's
//! whole budget nor hold every subscription, and who a client is comes from its
//! access key, or its address (through trusted proxies only). In pass-through
//! mode, a client cannot relay a stream of guessed tokens, and a token Cloudflare
//! refused is refused again without asking.

use std::time::Duration;

use futures::future::join_all;
use registrar_gateway::config::GatewayConfig;
use registrar_simulator::{Faults, SimulatorSettings};
use serde_json::{Value, json};

use crate::support::{TestApp, WATCH, connect};
use crate::support::{spawn_simulator, spawn_simulator_with};

/// A budget whose burst is 40 requests (no reserve) and that does not refill
/// during a test; one client may spend a fifth of it (a burst of 8).
const SHARED_BUDGET: [&str; 8] = [
    "--upstream-budget",
    "400",
    "--budget-reserve",
    "0",
    "--upstream-budget-window",
    "1h",
    "--client-budget-share",
    "0.2",
];

/// `registrationStatus(domain)` as the client behind `forwarded_for`; (HTTP status,
/// Retry-After, body).
async fn lookup(app: &TestApp, forwarded_for: &str, domain: &str) -> (u16, Option<u64>, Value) {
    let body = json!({
        "query": "query($d: String!) { registrationStatus(domain: $d) { state } }",
        "variables": { "d": domain },
    });
    let response = app
        .post_json_with(&[("x-forwarded-for", forwarded_for)], body)
        .await;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_greedy_client_spends_its_share_and_a_polite_one_still_gets_answers() {
    let mut args = SHARED_BUDGET.to_vec();
    // Not-found answers stay fresh for the whole test, so a cached one is a hit.
    args.extend([
        "--trusted-proxies",
        "127.0.0.1",
        "--cache-ttl-not-found",
        "1h",
    ]);
    let app = TestApp::builder().args(&args).spawn().await;
    let greedy = "198.51.100.66";
    let mut answered = Vec::new();
    let mut refused = 0;
    for i in 0..60 {
        let domain = format!("greedy-{i}.com");
        let (status, retry_after, body) = lookup(&app, greedy, &domain).await;
        match status {
            200 => {
                assert!(body["errors"].is_null(), "{body}");
                answered.push(domain);
            }
            429 => {
                assert_eq!(code(&body), "CLIENT_RATE_LIMITED", "{body}");
                let seconds = retry_after.expect("a 429 says when to come back");
                assert_eq!(
                    body["errors"][0]["extensions"]["retryAfterSeconds"], seconds,
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("unexpected HTTP {other}: {body}"),
        }
    }
    assert_eq!(
        answered.len(),
        8,
        "a burst of a fifth of the credential's 40"
    );
    assert_eq!(refused, 52);
    let spent = app.upstream_calls();
    assert_eq!(spent, 8, "a refused lookup makes no upstream call");

    // A status fresh in the cache costs nothing, so it is still served.
    let (status, _, body) = lookup(&app, greedy, &answered[0]).await;
    assert_eq!(status, 200, "{body}");

    // Another client (as the trusted proxy says) has its whole share.
    for i in 0..8 {
        let (status, _, body) = lookup(&app, "203.0.113.7", &format!("polite-{i}.com")).await;
        assert_eq!(status, 200, "the polite client's lookup {i}: {body}");
        assert!(body["errors"].is_null(), "{body}");
    }
    assert_eq!(app.upstream_calls(), spent + 8);
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let app = TestApp::builder().args(&SHARED_BUDGET).spawn().await;
    for i in 0..8 {
        let (status, _, body) = lookup(&app, "198.51.100.66", &format!("a-{i}.com")).await;
        assert_eq!(status, 200, "{body}");
    }
    // Without --trusted-proxies the header is the client's own word: still one client.
    let (status, _, body) = lookup(&app, "203.0.113.7", "b.com").await;
    assert_eq!(
        (status, code(&body)),
        (429, "CLIENT_RATE_LIMITED"),
        "{body}"
    );
}

/// Reads a streamed response until `marker` shows up in it.
async fn read_until(response: &mut reqwest::Response, marker: &str) -> String {
    let mut text = String::new();
    while !text.contains(marker) {
        let chunk = tokio::time::timeout(Duration::from_secs(20), response.chunk())
            .await
            .expect("a frame within the test's patience")
            .expect("the stream reads")
            .expect("the stream is still open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text
}

async fn stream(app: &TestApp, accept: &str, key: &str, domain: &str) -> reqwest::Response {
    let body = json!({ "query": WATCH, "variables": { "domain": domain } });
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("accept", accept)
        .header("x-gateway-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

#[tokio::test]
async fn open_subscriptions_are_capped_per_client_over_every_transport() {
    let app = TestApp::builder()
        .args(&[
            "--access-key",
            "key-one",
            "--access-key",
            "key-two",
            "--max-subscriptions-per-client",
            "3",
        ])
        .spawn()
        .await;
    let init = |key: &str| json!({ "X-Gateway-Key": key });

    // Client "key-one": one subscription over each of three transports...
    let mut modern = connect(&app, "graphql-transport-ws").await;
    modern
        .send(json!({ "type": "connection_init", "payload": init("key-one") }))
        .await;
    assert_eq!(modern.recv().await["type"], "connection_ack");
    modern.watch("1", "demo-pending.com", false).await;
    assert_eq!(modern.recv().await["type"], "next");
    let mut sse = stream(&app, "text/event-stream", "key-one", "demo-pending.com").await;
    read_until(&mut sse, "event: next").await;
    let multipart = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json";
    let mut parts = stream(&app, multipart, "key-one", "demo-pending.com").await;
    read_until(&mut parts, "\"state\"").await;

    // ...and a fourth, over the legacy protocol, is refused.
    let mut legacy = connect(&app, "graphql-ws").await;
    legacy
        .send(json!({ "type": "connection_init", "payload": init("key-one") }))
        .await;
    assert_eq!(legacy.recv().await["type"], "connection_ack");
    let variables = json!({ "domain": "demo-pending.com" });
    legacy
        .send(json!({ "type": "start", "id": "1", "payload": { "query": WATCH, "variables": variables } }))
        .await;
    let refused = legacy.recv().await;
    let error = &refused["payload"]["errors"][0];
    assert_eq!(
        error["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS",
        "{refused}"
    );
    assert!(
        error["message"].as_str().unwrap().contains("per client"),
        "{refused}"
    );

    // The same address with another key is another client, with its own share.
    let mut other = connect(&app, "graphql-transport-ws").await;
    other
        .send(json!({ "type": "connection_init", "payload": init("key-two") }))
        .await;
    assert_eq!(other.recv().await["type"], "connection_ack");
    other.watch("1", "demo-pending.com", false).await;
    let accepted = other.recv().await;
    assert_eq!(accepted["type"], "next", "{accepted}");
    assert!(accepted["payload"]["errors"].is_null(), "{accepted}");
}

#[tokio::test]
async fn four_hundred_guessed_tokens_from_one_client_make_at_most_the_caps_worth_of_calls() {
    let simulator = spawn_simulator().await.handle;
    let app = TestApp::builder()
        .simulator(simulator)
        .pass_through()
        .args(&["--max-new-credentials-per-client", "10"])
        .spawn()
        .await;
    let tokens: Vec<String> = (0..400).map(|i| format!("Bearer guessed-{i:04}")).collect();
    let started = std::time::Instant::now();
    let answers = join_all(tokens.iter().map(|token| async {
        let headers = [("authorization", token.as_str())];
        app.status_with(&headers, "demo-succeeded.com").await
    }))
    .await;
    let mut served = 0;
    for (status, body) in &answers {
        match status {
            200 => served += 1,
            429 => assert_eq!(code(body), "TOO_MANY_CREDENTIALS", "{body}"),
            other => panic!("unexpected HTTP {other}: {body}"),
        }
    }
    // Ten at once, then one more every 6 s (10 a minute) while the 400 arrive.
    let refilled = (started.elapsed().as_secs_f64() / 6.0).floor() as usize;
    assert!(
        (10..=10 + refilled).contains(&served),
        "{served} new credentials served, the cap being 10 (+{refilled} refilled)"
    );
    let calls = app.upstream_calls();
    assert_eq!(
        calls, served as u64,
        "a refused credential is never relayed"
    );
}

#[tokio::test]
async fn a_credential_cloudflare_refused_is_refused_again_without_asking() {
    let settings = SimulatorSettings::default().refuse_credential("revoked-token");
    let simulator = spawn_simulator_with(settings).await.handle;
    let app = TestApp::builder()
        .simulator(simulator)
        .pass_through()
        .spawn()
        .await;
    let revoked = [("authorization", "Bearer revoked-token")];
    for i in 0..20 {
        let (status, body) = app.status_with(&revoked, &format!("revoked-{i}.com")).await;
        assert_eq!((status, code(&body)), (200, "UPSTREAM_AUTH"), "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["upstreamStatus"], 403,
            "{body}"
        );
    }
    assert_eq!(app.upstream_calls(), 1, "Cloudflare was asked once");
    // Another credential of the same client is asked as usual.
    let (status, body) = app
        .status_with(
            &[("authorization", "Bearer good-token")],
            "demo-succeeded.com",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(app.upstream_calls(), 2);
}

/// One client (a backend server, an office behind one NAT) on 50 keep-alive
/// connections asks for one registration, over and over, across several cache
/// expiries, with an upstream that takes 20 ms to answer. Only the lookup whose
/// load calls the upstream pays from the client's share: the others join that load
/// or hit the cache and spend nothing, so none is refused while the upstream sees
/// about one call per expiry.
#[tokio::test]
async fn lookups_joining_a_load_in_flight_or_hitting_the_cache_spend_nothing() {
    // A share whose burst (a tenth of 10% of 2,000: 20) does not refill during the
    // test; the answer (no workflow) expires every 150 ms; connections are capped per
    // client as by default.
    let defaults = GatewayConfig::from_args(["registrar-gateway"]).unwrap();
    let connections = defaults.fair_share.max_connections_per_client.to_string();
    let app = TestApp::builder()
        .args(&[
            "--max-connections-per-client",
            &connections,
            "--upstream-budget",
            "2000",
            "--upstream-budget-window",
            "1h",
            "--client-budget-share",
            "0.1",
            "--cache-ttl-not-found",
            "150ms",
        ])
        .spawn()
        .await;
    let latency = Duration::from_millis(20);
    app.simulator()
        .set_faults(Faults {
            latency,
            ..Faults::default()
        })
        .unwrap();
    // Until the upstream has answered this many loads: as many expiries.
    const LOADS: u64 = 8;
    let connection = |_| async {
        // One client per connection: each keeps its one keep-alive connection.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let body = json!({
            "query": "query($d: String!) { registrationStatus(domain: $d) { state } }",
            "variables": { "d": "one-registration.com" },
        });
        let mut codes = Vec::new();
        while app.upstream_calls() < LOADS {
            let response = http
                .post(app.url("/graphql"))
                .header("accept", "application/graphql-response+json")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            codes.push((status, code(&body).to_owned()));
            if status != 200 {
                break;
            }
        }
        codes
    };
    let answers: Vec<(u16, String)> = join_all((0..50).map(connection))
        .await
        .into_iter()
        .flatten()
        .collect();
    let limited = answers
        .iter()
        .filter(|(_, code)| code == "CLIENT_RATE_LIMITED")
        .count();
    assert_eq!(limited, 0, "of {} answers", answers.len());
    assert!(
        answers.iter().all(|answer| *answer == (200, String::new())),
        "{answers:?}"
    );
    assert!(
        app.upstream_calls() <= LOADS + 1,
        "one upstream call per expiry, whatever the number of lookups ({})",
        answers.len()
    );
}

/// Behind proxies that write `X-Forwarded-For` (nginx, ALB, Traefik, Cloudflare),
/// a client-sent `Forwarded` is ignored: rotating it does not make a client new.
/// And the reverse with `--forwarded-header forwarded`.
#[tokio::test]
async fn a_client_cannot_pick_its_identity_with_the_header_the_proxies_do_not_write() {
    for (header, fixed, rotating) in [
        ("x-forwarded-for", "x-forwarded-for", "forwarded"),
        ("forwarded", "forwarded", "x-forwarded-for"),
    ] {
        let mut args = SHARED_BUDGET.to_vec();
        args.extend([
            "--trusted-proxies",
            "127.0.0.1",
            "--forwarded-header",
            header,
        ]);
        let app = TestApp::builder().args(&args).spawn().await;
        let fixed_value = match fixed {
            "forwarded" => "for=198.51.100.66".to_owned(),
            _ => "198.51.100.66".to_owned(),
        };
        let mut limited = 0;
        for i in 0..80 {
            let rotated = match rotating {
                "forwarded" => format!("for=203.0.113.{i}"),
                _ => format!("203.0.113.{i}"),
            };
            let body = json!({
                "query": "query($d: String!) { registrationStatus(domain: $d) { state } }",
                "variables": { "d": format!("new-{i}.com") },
            });
            let headers = [(fixed, fixed_value.as_str()), (rotating, rotated.as_str())];
            let response = app.post_json_with(&headers, body).await;
            let body: Value = response.json().await.unwrap();
            limited += usize::from(code(&body) == "CLIENT_RATE_LIMITED");
        }
        assert_eq!(
            (app.upstream_calls(), limited),
            (8, 72),
            "{header}: one client's burst of 8, however the other header rotates"
        );
    }
}
