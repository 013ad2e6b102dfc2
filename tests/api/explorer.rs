//! The GraphiQL explorer as a browser meets it: the page, its policy and opening
//! tabs, its hashed assets (cache lifetime, precompressed encodings), the
//! settings that change it, and the committed build matching its manifest and
//! sources. tests/interop/explorer.mjs drives it in Chromium.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{TestApp, header};

const DIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web/explorer/dist");
const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web/explorer");

fn manifest() -> Value {
    let text = std::fs::read_to_string(Path::new(DIST).join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

async fn get(app: &TestApp, path: &str, accept_encoding: Option<&str>) -> Response {
    let mut request = app.http.get(app.url(path));
    if let Some(encoding) = accept_encoding {
        request = request.header("accept-encoding", encoding);
    }
    request.send().await.expect("the gateway answers")
}

/// The page's opening configuration (the JSON block it renders for the script).
fn page_config(html: &str) -> Value {
    let start = html
        .find(r#"id="explorer-config">"#)
        .expect("a config block")
        + 21;
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).expect("the config block is JSON")
}

#[tokio::test]
async fn the_page_loads_only_its_own_files_under_a_strict_policy() {
    let app = TestApp::builder().spawn().await;
    let page = get(&app, "/", None).await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        header(&page, "content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&page, "cache-control").unwrap(), "no-cache");
    let policy = header(&page, "content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "worker-src 'self';",
        &format!("connect-src 'self' ws://{0} wss://{0};", app.address),
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no absolute URL: {html}"
    );
    assert!(!html.contains("<script>"), "no inline script");
    let manifest = manifest();
    for key in ["script", "style", "favicon"] {
        let file = manifest[key].as_str().unwrap();
        assert!(
            html.contains(&format!("\"assets/{file}\"")),
            "the page links {file} relatively"
        );
    }
}

#[tokio::test]
async fn the_opening_tabs_query_list_and_watch_and_run_as_they_are() {
    let app = TestApp::builder().spawn().await;
    let html = get(&app, "/", None).await.text().await.unwrap();
    let config = page_config(&html);
    let tabs = config["tabs"].as_array().unwrap();
    assert_eq!(tabs.len(), 3);
    assert!(
        tabs[0]["query"]
            .as_str()
            .unwrap()
            .contains("registrationStatus(domain: $domain)")
    );
    assert!(
        tabs[1]["query"]
            .as_str()
            .unwrap()
            .contains("registrationStatuses(domains: $domains)")
    );
    assert!(
        tabs[2]["query"]
            .as_str()
            .unwrap()
            .contains("subscription Watch")
    );
    assert_eq!(config["introspection"], true);
    assert_eq!(config["accessKeys"], false);
    // An upstream is configured (not the sandbox): the API documentation's example domain.
    assert!(
        tabs[0]["variables"]
            .as_str()
            .unwrap()
            .contains("\"example.com\"")
    );
    // The watch tab names the account, so a newcomer sees where a fresh one goes.
    let watch: Value = serde_json::from_str(tabs[2]["variables"].as_str().unwrap()).unwrap();
    assert_eq!(watch, json!({ "domain": "example.com", "accountId": null }));
    assert!(
        tabs[2]["query"]
            .as_str()
            .unwrap()
            .contains("accountId: $accountId")
    );
    // Each tab runs as is: its query with its variables answers without errors.
    for tab in &tabs[..2] {
        let variables: Value = serde_json::from_str(tab["variables"].as_str().unwrap()).unwrap();
        let answer = app.query(tab["query"].as_str().unwrap(), variables).await;
        assert_eq!(answer.get("errors"), None, "{answer}");
    }
}

#[tokio::test]
async fn assets_are_immutable_and_precompressed_by_accept_encoding() {
    let app = TestApp::builder().spawn().await;
    let manifest = manifest();
    let script = manifest["script"].as_str().unwrap();
    let path = format!("/assets/{script}");
    for (accept, encoding, stored) in [
        (
            Some("gzip, deflate, br, zstd"),
            Some("br"),
            format!("{script}.br"),
        ),
        (
            Some("gzip;q=1, br;q=0"),
            Some("gzip"),
            format!("{script}.gz"),
        ),
        (Some("identity"), None, script.to_owned()),
        (None, None, script.to_owned()),
    ] {
        let response = get(&app, &path, accept).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "cache-control").unwrap(),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&response, "vary").unwrap(), "accept-encoding");
        assert_eq!(
            header(&response, "content-type").unwrap(),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            header(&response, "content-encoding").as_deref(),
            encoding,
            "{accept:?}"
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(
            sha256_hex(&body),
            manifest["files"][&stored]["sha256"].as_str().unwrap(),
            "{accept:?} is answered with {stored}"
        );
    }
    for missing in [
        "/assets/nothing-here.js",
        "/assets/manifest.json",
        &format!("{path}.br"),
    ] {
        assert_eq!(
            get(&app, missing, Some("br")).await.status(),
            404,
            "{missing}"
        );
    }
}

#[tokio::test]
async fn disable_explorer_removes_the_page_and_its_assets_but_not_the_api() {
    let app = TestApp::builder()
        .args(&["--disable-explorer"])
        .spawn()
        .await;
    let script = manifest()["script"].as_str().unwrap().to_owned();
    assert_eq!(get(&app, "/", None).await.status(), 404);
    assert_eq!(
        get(&app, &format!("/assets/{script}"), None).await.status(),
        404
    );
    let answer = app.query("{ __typename }", Value::Null).await;
    assert_eq!(answer["data"]["__typename"], "Query");
}

#[tokio::test]
async fn the_page_shows_where_the_access_key_goes_and_why_docs_are_missing() {
    let app = TestApp::builder()
        .args(&[
            "--access-key",
            "explorer-test-key-0123",
            "--disable-introspection",
        ])
        .spawn()
        .await;
    let html = get(&app, "/", None).await.text().await.unwrap();
    assert!(
        !html.contains("explorer-test-key-0123"),
        "the key itself never appears"
    );
    let config = page_config(&html);
    assert_eq!(config["accessKeys"], true);
    assert_eq!(config["introspection"], false);
    let headers: Value = serde_json::from_str(config["headers"].as_str().unwrap()).unwrap();
    assert_eq!(headers["X-Gateway-Key"], "<your access key>");
    assert_eq!(config["tabs"][0]["headers"], config["headers"]);
    assert!(html.contains("Introspection is disabled on this gateway"));
    assert!(html.contains("--disable-introspection"));
}

#[test]
fn the_committed_build_matches_its_manifest_and_sources() {
    let manifest = manifest();
    let mut on_disk = BTreeMap::new();
    for entry in std::fs::read_dir(DIST).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name != "manifest.json" {
            on_disk.insert(name, sha256_hex(&std::fs::read(entry.path()).unwrap()));
        }
    }
    let listed: BTreeMap<String, String> = manifest["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, file)| (name.clone(), file["sha256"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        on_disk, listed,
        "web/explorer/dist/ differs from its manifest: rebuild with `cd web/explorer && npm ci && node build.mjs`"
    );
    let mut sources = Sha256::new();
    for path in manifest["sources"]["files"].as_array().unwrap() {
        let path = path.as_str().unwrap();
        let contents = std::fs::read(Path::new(SOURCES).join(path)).unwrap();
        sources.update(format!("{path}\0").as_bytes());
        sources.update(&contents);
        sources.update(b"\0");
    }
    let hash: String = sources
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(
        hash,
        manifest["sources"]["sha256"].as_str().unwrap(),
        "web/explorer's sources changed since dist/ was built: rebuild with `cd web/explorer && npm ci && node build.mjs`"
    );
}
