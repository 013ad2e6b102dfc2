//! One version a user can cite, the same wherever they look: `--version`, the
//! `registrar_gateway_build_info` metric, the explorer's title, and a section of
//! CHANGELOG.md.

use crate::support::{TestApp, scrape};

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[tokio::test]
async fn the_version_is_the_same_in_the_binary_the_metrics_the_explorer_and_the_changelog() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_registrar-gateway"))
        .arg("--version")
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("registrar-gateway {VERSION}")
    );

    let app = TestApp::builder().spawn().await;
    let metrics = scrape(&app).await;
    assert_eq!(
        metrics.value("registrar_gateway_build_info", &[("version", VERSION)]),
        1.0,
        "{}",
        metrics.text
    );
    let page = app.http.get(app.url("/")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "<title>registrar-gateway {VERSION} · GraphiQL</title>"
        )),
        "{page}"
    );

    let changelog =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/CHANGELOG.md")).unwrap();
    assert!(
        changelog
            .lines()
            .any(|line| line.starts_with(&format!("## [{VERSION}] - "))),
        "CHANGELOG.md has no section for {VERSION}"
    );
    assert!(changelog.contains("## [Unreleased]"));
}
