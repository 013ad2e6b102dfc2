//! Security headers a browser reads: every answer forbids MIME sniffing, framing
//! and the Referer, and API answers carry a policy that lets them load and run
//! nothing, while the explorer page keeps the policy it sets for itself.

use serde_json::json;

use crate::support::{STATUS_QUERY, TestApp};

/// What every answer must carry, whatever its route or status.
const ALWAYS: [(&str, &str); 3] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

fn assert_hardened(response: &reqwest::Response, what: &str) {
    for (name, value) in ALWAYS {
        assert_eq!(
            response.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on {what}"
        );
    }
}

fn csp(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-security-policy")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn api_answers_forbid_sniffing_framing_referrers_and_any_content() {
    let app = TestApp::builder().spawn().await;
    let body = json!({ "query": STATUS_QUERY, "variables": { "domain": "demo-succeeded.com" } });
    let ok = app.post_json(body).await;
    let refused = app.post_json(json!({ "query": "{" })).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    let missing = app.http.get(app.url("/nowhere")).send().await.unwrap();
    for (what, response) in [
        ("a query", &ok),
        ("a parse error", &refused),
        ("/healthz", &health),
        ("a 404", &missing),
    ] {
        assert_hardened(response, what);
        assert_eq!(
            csp(response),
            "default-src 'none'; frame-ancestors 'none'",
            "{what}"
        );
    }
}

#[tokio::test]
async fn the_explorer_page_keeps_its_own_policy() {
    let app = TestApp::builder().spawn().await;
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_hardened(&page, "the explorer page");
    let policy = csp(&page);
    assert!(policy.contains("script-src"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_ne!(policy, "default-src 'none'; frame-ancestors 'none'");
}
