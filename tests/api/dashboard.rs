//! The Grafana dashboard in `deploy/` charts what the gateway exports: every metric
//! a panel queries is in a running gateway's `/metrics`, and every panel uses the
//! datasource the compose file provisions.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{TestApp, scrape};

const DASHBOARD: &str = include_str!("../../deploy/grafana/dashboards/registrar-gateway.json");
const DATASOURCE: &str =
    include_str!("../../deploy/grafana/provisioning/datasources/prometheus.yaml");

/// The `registrar_gateway_*` names a PromQL expression refers to.
fn metric_names(expr: &str) -> Vec<String> {
    expr.match_indices("registrar_gateway_")
        .map(|(start, _)| {
            expr[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

/// Every series name the exposition can hold, from its `# TYPE` lines.
fn exported_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .flat_map(|line| {
            let mut parts = line.split(' ');
            let name = parts.next().unwrap_or_default().to_owned();
            match parts.next() {
                Some("histogram") => ["_bucket", "_count", "_sum"]
                    .map(|suffix| format!("{name}{suffix}"))
                    .to_vec(),
                _ => vec![name],
            }
        })
        .collect()
}

#[tokio::test]
async fn every_dashboard_query_names_an_exported_metric_and_the_provisioned_datasource() {
    let app = TestApp::builder().spawn().await;
    let exposition = scrape(&app).await;
    let exported = exported_names(&exposition.text);
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "registrar-gateway");
    let uid = dashboard["panels"][1]["datasource"]["uid"]
        .as_str()
        .unwrap();
    assert!(DATASOURCE.contains(&format!("uid: {uid}")), "{uid}");

    let panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|panel| panel["type"] != "row")
        .collect();
    assert!(panels.len() >= 10, "{} panels", panels.len());
    for panel in panels {
        assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "{}: {name} is not exported",
                    panel["title"]
                );
            }
        }
    }
}
