//! Injected faults as a reqwest client sees them.

use std::time::Duration;

use registrar_simulator::Faults;

use crate::support::{ACCOUNT, TOKEN, client, spawn_simulator, status_path};

const DOMAIN: &str = "demo-succeeded.com";

#[tokio::test]
async fn a_share_of_requests_gets_an_edge_502_with_an_html_body_deterministically() {
    let sim = spawn_simulator().await;
    sim.handle
        .set_faults(Faults {
            error_share: 0.25,
            ..Faults::default()
        })
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = sim.status(DOMAIN).await;
        statuses.push(response.status().as_u16());
        if response.status() == 502 {
            assert_eq!(response.headers()["content-type"], "text/html");
            assert!(response.text().await.unwrap().contains("502 Bad Gateway"));
        }
    }
    assert_eq!(statuses, [200, 200, 200, 502, 200, 200, 200, 502]);
    sim.stop().await;
}

#[tokio::test]
async fn a_reset_fault_closes_the_connection_without_an_answer() {
    let sim = spawn_simulator().await;
    sim.handle
        .set_faults(Faults {
            reset_share: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let error = sim
        .client
        .get(sim.url(&status_path(ACCOUNT, DOMAIN)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    assert_eq!(sim.handle.stats().resets, 1);
    sim.handle.set_faults(Faults::default()).unwrap();
    assert_eq!(
        sim.status(DOMAIN).await.status(),
        200,
        "the next connection works"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_hang_fault_leaves_the_client_to_time_out() {
    let sim = spawn_simulator().await;
    sim.handle
        .set_faults(Faults {
            hang_share: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let impatient = client(Duration::from_millis(200));
    let error = impatient
        .get(sim.url(&status_path(ACCOUNT, DOMAIN)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(sim.handle.stats().hangs, 1);
    sim.stop().await; // wakes the hung handler; must not wait 60 s
}

#[tokio::test]
async fn a_malformed_fault_answers_200_with_truncated_json() {
    let sim = spawn_simulator().await;
    sim.handle
        .set_faults(Faults {
            malformed_share: 1.0,
            ..Faults::default()
        })
        .unwrap();
    let response = sim.status(DOMAIN).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let error = response.json::<serde_json::Value>().await.unwrap_err();
    assert!(error.is_decode(), "{error:?}");
    sim.stop().await;
}

#[tokio::test]
async fn the_upstream_is_down_for_a_period_then_back() {
    let sim = spawn_simulator().await;
    sim.handle
        .set_faults(Faults {
            down_for: Duration::from_secs(60),
            ..Faults::default()
        })
        .unwrap();
    let response = sim.status(DOMAIN).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["content-type"], "text/html");
    sim.advance(59);
    assert_eq!(sim.status(DOMAIN).await.status(), 503);
    sim.advance(1);
    assert_eq!(sim.status(DOMAIN).await.status(), 200);
    sim.stop().await;
}

#[tokio::test]
async fn added_latency_delays_answers_without_changing_them() {
    let sim = spawn_simulator().await;
    sim.handle
        .set_faults(Faults {
            latency: Duration::from_millis(50),
            ..Faults::default()
        })
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(sim.status(DOMAIN).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(50));
    sim.stop().await;
}
