//! Cross-site websocket hijacking and DNS rebinding: a page on another site cannot
//! open a websocket or send requests through a gateway its visitor runs, and a
//! loopback-bound gateway answers only to loopback host names (or `--allowed-hosts`).
//! Same-origin pages (GraphiQL) and clients without `Origin` keep working.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{STATUS_QUERY, TestApp, spawn_process};

/// The HTTP status of a websocket upgrade offering `protocol` with these headers.
async fn upgrade_status(app: &TestApp, protocol: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = app
        .http
        .get(app.url("/graphql"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", protocol);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_websocket_from_another_site_is_refused_at_the_upgrade_on_both_protocols() {
    let app = TestApp::builder()
        .args(&["--cors-origins", "https://app.example"])
        .spawn()
        .await;
    let own = format!("http://{}", app.address);
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let (status, body) =
            upgrade_status(&app, protocol, &[("origin", "https://evil.example")]).await;
        assert_eq!(status, 403, "{protocol}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "ORIGIN_NOT_ALLOWED"
        );
        for allowed in [own.as_str(), "https://app.example"] {
            let (status, _) = upgrade_status(&app, protocol, &[("origin", allowed)]).await;
            assert_eq!(status, 101, "{protocol} from {allowed}");
        }
        let (status, _) = upgrade_status(&app, protocol, &[]).await;
        assert_eq!(status, 101, "{protocol} without Origin");
    }
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn a_same_origin_page_keeps_its_websocket() {
    let app = TestApp::builder().spawn().await;
    let mut request = format!("ws://{}/graphql", app.address)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    headers.insert("origin", format!("http://{}", app.address).parse().unwrap());
    let (_, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    assert_eq!(response.status(), 101);
}

#[tokio::test]
async fn browser_requests_from_another_site_are_refused_and_reach_no_upstream() {
    let app = TestApp::builder().spawn().await;
    let body = json!({ "query": STATUS_QUERY, "variables": { "domain": "demo-pending.com" } });
    let (status, answer) = app
        .status_with(&[("origin", "https://evil.example")], "demo-pending.com")
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        "ORIGIN_NOT_ALLOWED"
    );
    assert_eq!(app.upstream_calls(), 0);
    let own = format!("http://{}", app.address);
    let response = app.post_json_with(&[("origin", own.as_str())], body).await;
    assert_eq!(response.status(), 200, "same origin");
}

#[tokio::test]
async fn a_loopback_gateway_refuses_other_host_names_unless_allowed() {
    let app = TestApp::builder().spawn().await;
    let (status, answer) = app
        .status_with(&[("host", "attacker.example")], "demo-pending.com")
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        "HOST_NOT_ALLOWED"
    );
    let port = app.address.port();
    let localhost = format!("localhost:{port}");
    let (status, _) = app
        .status_with(&[("host", localhost.as_str())], "demo-succeeded.com")
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.upstream_calls(), 1, "only the allowed request");

    let allowed = TestApp::builder()
        .args(&["--allowed-hosts", "gw.example"])
        .spawn()
        .await;
    let (status, _) = allowed
        .status_with(&[("host", "gw.example")], "demo-succeeded.com")
        .await;
    assert_eq!(status, 200);
    let (status, _) = allowed
        .status_with(&[("host", "attacker.example")], "demo-succeeded.com")
        .await;
    assert_eq!(status, 403);
}

/// Behind a proxy that rewrites `Host`, `--public-url` names the gateway's own origin; and
/// every refusal's log line says what was compared (Origin, Host, the forwarded host)
/// against what was allowed, so an operator can tell why a browser got 403.
#[tokio::test]
async fn public_urls_are_the_gateways_own_origin_and_refusals_log_what_was_compared() {
    let gateway = spawn_process(
        &[
            "--public-url",
            "https://gw.example:443/",
            "--cors-origins",
            "https://app.example",
        ],
        &[("CLOUDFLARE_API_TOKEN", ""), ("CLOUDFLARE_BASE_URL", "")],
    )
    .await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/graphql", gateway.address);
    let status = |headers: &[(&str, &str)]| {
        let mut request = http.post(&url).json(
            &json!({ "query": STATUS_QUERY, "variables": { "domain": "demo-succeeded.com" } }),
        );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };

    // The proxy sent its own name for the replica; the browser was at the public URL.
    assert_eq!(
        status(&[("host", "127.0.0.1:8080"), ("origin", "https://gw.example")]).await,
        200
    );
    // The public URL's host is answered on a loopback-bound gateway.
    assert_eq!(
        status(&[("host", "gw.example"), ("origin", "https://gw.example")]).await,
        200
    );

    let headers = [
        ("host", "localhost:8080"),
        ("origin", "http://evil.example"),
        ("x-forwarded-host", "gw.example"),
    ];
    assert_eq!(
        status(&headers).await,
        403,
        "X-Forwarded-Host is not believed"
    );
    let line = gateway
        .log_line("request refused by the origin policy", |line| {
            line["code"] == "ORIGIN_NOT_ALLOWED"
        })
        .await;
    assert_eq!(line["origin"], "http://evil.example");
    assert_eq!(line["host"], "localhost:8080");
    assert_eq!(line["forwarded_host"], "gw.example");
    let allowed = line["allowed_origins"].as_str().unwrap();
    assert!(
        allowed.contains("https://gw.example") && allowed.contains("https://app.example"),
        "{allowed}"
    );

    assert_eq!(status(&[("host", "attacker.example:8080")]).await, 403);
    let line = gateway
        .log_line("request refused by the origin policy", |line| {
            line["code"] == "HOST_NOT_ALLOWED"
        })
        .await;
    assert_eq!(line["host"], "attacker.example:8080");
    let allowed = line["allowed_hosts"].as_str().unwrap();
    assert!(
        allowed.contains("gw.example") && allowed.contains("loopback"),
        "{allowed}"
    );
}
