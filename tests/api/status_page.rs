//! The live status page for people: server-rendered from the same read path, under
//! a nonce CSP with no external assets, behind the access policy and the explorer switch.

use crate::subscriptions::fast_app;

async fn get(
    app: &crate::support::TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.http.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("answered")
}

#[tokio::test]
async fn the_status_page_renders_the_current_state_and_subscribes_over_sse() {
    let app = fast_app(&[]).await;
    let response = get(&app, "/status/Demo-Action-Required.com", &[]).await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = response.text().await.unwrap();
    assert!(
        page.contains("<h1>demo-action-required.com</h1>"),
        "the normalised name"
    );
    assert!(page.contains(r#"<dd id="state">PENDING</dd>"#), "{page}");
    assert!(page.contains(r#"<dd id="action">Nothing</dd>"#), "{page}");
    assert!(page.contains("new EventSource(\"/graphql?\""));
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a script nonce");
    assert!(
        csp.starts_with("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert_eq!(
        page.matches(&format!("nonce=\"{nonce}\"")).count(),
        2,
        "the one script and style"
    );
    for external in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!page.contains(external), "no external asset: {external}");
    }
    let again = get(&app, "/status/demo-action-required.com", &[]).await;
    let other = again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(other, csp, "a fresh nonce per page");
}

#[tokio::test]
async fn the_status_page_refuses_bad_names_and_callers_without_the_access_key() {
    let app = fast_app(&["--access-key", "key-one"]).await;
    assert_eq!(
        get(&app, "/status/demo-pending.com", &[]).await.status(),
        401
    );
    let admitted = [("x-gateway-key", "key-one")];
    assert_eq!(
        get(&app, "/status/demo-pending.com", &admitted)
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&app, "/status/%3Cscript%3E", &admitted).await.status(),
        400
    );
    let bad_account = "/status/demo-pending.com?accountId=not%20an%20id";
    assert_eq!(get(&app, bad_account, &admitted).await.status(), 400);
    assert_eq!(
        app.upstream_calls(),
        1,
        "only the one admitted, valid page read"
    );
}

#[tokio::test]
async fn the_explorer_switch_turns_the_status_page_off_with_graphiql() {
    let app = fast_app(&["--disable-explorer"]).await;
    assert_eq!(
        get(&app, "/status/demo-pending.com", &[]).await.status(),
        404
    );
    assert_eq!(get(&app, "/", &[]).await.status(), 404);
}
