//! `/metrics` after known work, over real sockets, with the simulator's request
//! counter as ground truth for what reached the upstream.

use futures::future::join_all;
use registrar_simulator::Faults;
use serde_json::json;

use crate::support::{TOKEN, TestApp, change, connect, connect_ready, scrape, scrape_url};

#[tokio::test]
async fn two_hundred_identical_queries_show_one_upstream_call_and_199_shared_lookups() {
    let app = TestApp::builder().spawn().await;
    join_all((0..200).map(|_| app.status_of("demo-pending.com"))).await;
    let metrics = scrape(&app).await;

    assert_eq!(app.upstream_calls(), 1);
    assert_eq!(metrics.upstream("ok"), 1.0);
    assert_eq!(
        metrics.value("registrar_gateway_upstream_requests_total", &[]),
        app.upstream_calls() as f64,
        "every request the simulator saw is counted"
    );
    assert_eq!(metrics.lookups("miss"), 1.0);
    assert_eq!(metrics.lookups("hit") + metrics.lookups("collapsed"), 199.0);
    assert_eq!(metrics.lookups("stale"), 0.0);
    let ok_queries = [
        ("transport", "http"),
        ("operation_type", "query"),
        ("outcome", "ok"),
    ];
    assert_eq!(
        metrics.value("registrar_gateway_graphql_requests_total", &ok_queries),
        200.0
    );
    assert_eq!(
        metrics.value(
            "registrar_gateway_graphql_request_duration_seconds_count",
            &[]
        ),
        200.0
    );
    assert_eq!(
        metrics.value(
            "registrar_gateway_upstream_request_duration_seconds_count",
            &[]
        ),
        1.0
    );
    assert_eq!(
        metrics.value(
            "registrar_gateway_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(metrics.value("registrar_gateway_process_resident_memory_bytes", &[]) > 0.0);
    for (name, _, _) in &metrics.samples {
        assert!(name.starts_with("registrar_gateway_"), "{name}");
    }
}

#[tokio::test]
async fn the_budget_left_is_labelled_by_a_short_fingerprint_and_refusals_are_counted() {
    // A budget of 20 per hour (no reserve): a burst of 2, then refusals.
    let app = TestApp::builder()
        .args(&[
            "--upstream-budget",
            "20",
            "--upstream-budget-window",
            "1h",
            "--budget-reserve",
            "0",
        ])
        .spawn()
        .await;
    for n in 0..4 {
        app.status_of(&format!("demo-pending-{n}.com")).await;
    }
    let metrics = scrape(&app).await;
    assert_eq!(app.upstream_calls(), 2);
    assert_eq!(
        metrics.value("registrar_gateway_budget_refusals_total", &[]),
        2.0
    );
    let series = |name: &str| -> Vec<(String, f64)> {
        metrics
            .samples
            .iter()
            .filter(|(sample, _, _)| sample == name)
            .map(|(_, labels, value)| (labels["credential"].clone(), *value))
            .collect()
    };
    let burst = series("registrar_gateway_budget_burst_remaining");
    assert_eq!(burst.len(), 1, "one credential, one series");
    let (credential, burst_left) = &burst[0];
    assert_eq!(credential.len(), 8, "{credential}");
    assert!(
        credential.chars().all(|c| c.is_ascii_hexdigit()),
        "{credential}"
    );
    assert_eq!(*burst_left, 0.0, "the burst is spent");
    // The other 18 of the hour's 20 refill over the window: one every 200 s.
    let window = series("registrar_gateway_budget_window_remaining");
    assert_eq!(window, [(credential.clone(), 18.0)]);
    assert!(
        !metrics.text.contains("registrar_gateway_budget_remaining"),
        "the old name, which read as the window's, is gone"
    );
    assert!(!metrics.text.contains(TOKEN), "the secret never appears");
}

#[tokio::test]
async fn upstream_failures_are_counted_per_attempt_and_stale_answers_as_stale() {
    let app = TestApp::builder()
        .args(&["--upstream-retries", "2", "--cache-ttl-active", "100ms"])
        .spawn()
        .await;
    app.status_of("demo-pending.com").await;
    app.simulator()
        .set_faults(Faults {
            error_share: 1.0,
            ..Default::default()
        })
        .unwrap();
    // moka's clock is std's Instant: letting the TTL pass is the behaviour under test.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let body = app.status_of("demo-pending.com").await;
    assert_eq!(body["data"]["registrationStatus"]["stale"], true, "{body}");
    let body = app.status_of("demo-failed.com").await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UPSTREAM_UNAVAILABLE",
        "{body}"
    );

    let metrics = scrape(&app).await;
    assert_eq!(
        app.upstream_calls(),
        7,
        "one success, then two reads of three attempts"
    );
    assert_eq!(metrics.upstream("ok"), 1.0);
    assert_eq!(metrics.upstream("unavailable"), 6.0);
    assert_eq!(
        (metrics.lookups("miss"), metrics.lookups("stale")),
        (2.0, 1.0)
    );
    let errors = [("operation_type", "query"), ("outcome", "error")];
    assert_eq!(
        metrics.value("registrar_gateway_graphql_requests_total", &errors),
        1.0
    );
}

#[tokio::test]
async fn subscriptions_pollers_and_events_are_gauged_while_watched() {
    let app = TestApp::builder()
        .args(&[
            "--poll-initial",
            "1h",
            "--poll-max",
            "1h",
            "--poller-grace",
            "0s",
        ])
        .spawn()
        .await;
    let mut client = connect_ready(&app).await;
    client.watch("1", "demo-pending.com", false).await;
    let first = client.recv().await;
    assert_eq!(change(&first, "1")["status"]["state"], "PENDING");

    let watching = scrape(&app).await;
    let protocol = [("protocol", "graphql-transport-ws")];
    assert_eq!(
        watching.value("registrar_gateway_subscriptions_active", &protocol),
        1.0
    );
    assert_eq!(
        watching.value("registrar_gateway_websocket_connections_active", &[]),
        1.0
    );
    assert_eq!(watching.value("registrar_gateway_pollers_active", &[]), 1.0);
    assert_eq!(
        watching.value("registrar_gateway_events_published_total", &[]),
        1.0
    );
    assert_eq!(
        watching.value("registrar_gateway_polls_total", &[]),
        app.pollers.stats().polls as f64
    );

    client.send(json!({ "type": "complete", "id": "1" })).await;
    app.pollers.until_idle().await;
    let idle = scrape(&app).await;
    assert_eq!(
        idle.value("registrar_gateway_subscriptions_active", &protocol),
        0.0
    );
    assert_eq!(idle.value("registrar_gateway_pollers_active", &[]), 0.0);
    assert_eq!(
        idle.value("registrar_gateway_upstream_requests_total", &[]),
        app.upstream_calls() as f64
    );
}

#[tokio::test]
async fn metrics_can_be_served_on_their_own_listener_or_not_at_all() {
    let app = TestApp::builder()
        .args(&["--metrics-listen", "127.0.0.1:0"])
        .spawn()
        .await;
    let separate = app.metrics_address.expect("a metrics listener");
    app.status_of("demo-pending.com").await;
    let metrics = scrape_url(&app, &format!("http://{separate}/metrics")).await;
    assert_eq!(metrics.lookups("miss"), 1.0);
    let main = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404, "not on the public listener");

    let off = TestApp::builder()
        .args(&["--disable-metrics"])
        .spawn()
        .await;
    let response = off.http.get(off.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(off.metrics_address, None);
}

#[tokio::test]
async fn a_subscription_over_sse_is_gauged_under_its_protocol_until_the_client_leaves() {
    let app = TestApp::builder()
        .args(&["--poll-initial", "1h", "--poll-max", "1h"])
        .spawn()
        .await;
    let query =
        r#"subscription { registrationStatusChanged(domain: "demo-pending.com") { sequence } }"#;
    let mut response = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("the first event");
    assert!(String::from_utf8_lossy(&first).contains("event: next"));

    let sse = [("protocol", "sse")];
    let watching = scrape(&app).await;
    assert_eq!(
        watching.value("registrar_gateway_subscriptions_active", &sse),
        1.0
    );
    assert_eq!(
        watching.value(
            "registrar_gateway_subscriptions_active",
            &[("protocol", "multipart")]
        ),
        0.0
    );

    drop(response);
    app.pollers.until_idle().await;
    let idle = scrape(&app).await;
    assert_eq!(
        idle.value("registrar_gateway_subscriptions_active", &sse),
        0.0
    );
}

/// One subscription over a streaming HTTP transport, read to its first event.
async fn first_streamed_event(app: &TestApp, accept: &str) -> reqwest::Response {
    let query =
        r#"subscription { registrationStatusChanged(domain: "demo-pending.com") { sequence } }"#;
    let mut response = app
        .http
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    // Multipart opens with its first boundary, then the event.
    let mut read = Vec::new();
    while !String::from_utf8_lossy(&read).contains("sequence") {
        let chunk = response.chunk().await.unwrap().expect("the first event");
        read.extend_from_slice(&chunk);
    }
    response
}

#[tokio::test]
async fn operations_are_counted_on_every_transport_under_its_own_label() {
    let app = TestApp::builder()
        .args(&["--poll-initial", "1h", "--poll-max", "1h"])
        .spawn()
        .await;
    let watch =
        json!({ "query": crate::support::WATCH, "variables": { "domain": "demo-pending.com" } });

    let mut modern = connect_ready(&app).await;
    modern
        .start(
            "q",
            json!({ "query": r#"{ registrationStatus(domain: "demo-pending.com") { state } }"# }),
        )
        .await;
    assert_eq!(modern.recv().await["type"], "next");
    assert_eq!(modern.recv().await["type"], "complete");
    modern.start("s", watch.clone()).await;
    assert_eq!(
        change(&modern.recv().await, "s")["status"]["state"],
        "PENDING"
    );
    modern.start("bad", json!({ "query": "{ nope }" })).await;
    assert_eq!(modern.recv().await["type"], "error");

    let mut legacy = connect(&app, "graphql-ws").await;
    assert_eq!(legacy.protocol.as_deref(), Some("graphql-ws"));
    legacy.send(json!({ "type": "connection_init" })).await;
    assert_eq!(legacy.recv().await["type"], "connection_ack");
    legacy.start("1", watch).await;
    assert_eq!(
        change(&legacy.recv().await, "1")["status"]["state"],
        "PENDING"
    );

    let sse = first_streamed_event(&app, "text/event-stream").await;
    let multipart = first_streamed_event(
        &app,
        "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0",
    )
    .await;

    let metrics = scrape(&app).await;
    let requests = |transport, operation_type, outcome| {
        let labels = [
            ("transport", transport),
            ("operation_type", operation_type),
            ("outcome", outcome),
        ];
        metrics.value("registrar_gateway_graphql_requests_total", &labels)
    };
    let total = |transport| {
        metrics.value(
            "registrar_gateway_graphql_requests_total",
            &[("transport", transport)],
        )
    };
    assert_eq!(requests("graphql-transport-ws", "query", "ok"), 1.0);
    assert_eq!(requests("graphql-transport-ws", "subscription", "ok"), 1.0);
    assert_eq!(
        requests("graphql-transport-ws", "query", "request_error"),
        1.0
    );
    assert_eq!(total("graphql-transport-ws"), 3.0);
    assert_eq!(requests("graphql-ws", "subscription", "ok"), 1.0);
    assert_eq!(total("graphql-ws"), 1.0);
    assert_eq!(requests("sse", "subscription", "ok"), 1.0);
    assert_eq!(total("sse"), 1.0);
    assert_eq!(requests("multipart", "subscription", "ok"), 1.0);
    assert_eq!(total("multipart"), 1.0);
    assert_eq!(
        total("http"),
        0.0,
        "no operation was answered as plain HTTP"
    );
    let mut durations: Vec<&str> = metrics
        .samples
        .iter()
        .filter(|(name, _, _)| name == "registrar_gateway_graphql_request_duration_seconds_count")
        .map(|(_, labels, _)| labels["transport"].as_str())
        .collect();
    durations.sort_unstable();
    assert_eq!(
        durations,
        ["http", "multipart", "sse"],
        "websocket operations have no request latency"
    );
    assert_eq!(
        metrics.value(
            "registrar_gateway_graphql_request_duration_seconds_count",
            &[("transport", "sse")]
        ),
        1.0
    );
    drop((sse, multipart));
    modern.close().await;
    legacy.close().await;
}

/// Reads an SSE body until it has carried `events` `next` events in all.
async fn read_sse_events(response: &mut reqwest::Response, read: &mut String, events: usize) {
    while read.matches("event: next").count() < events {
        let chunk = response.chunk().await.unwrap().expect("another event");
        read.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn every_event_a_subscriber_receives_counts_once_in_events_delivered_by_protocol() {
    let app = TestApp::builder()
        .args(&["--poll-initial", "50ms", "--poll-max", "50ms"])
        .spawn()
        .await;
    let mut modern = connect_ready(&app).await;
    for id in ["1", "2", "3"] {
        modern.watch(id, "demo-succeeds.com", false).await;
    }
    let mut legacy = connect(&app, "graphql-ws").await;
    legacy.send(json!({ "type": "connection_init" })).await;
    assert_eq!(legacy.recv().await["type"], "connection_ack");
    let watch = r#"subscription { registrationStatusChanged(domain: "demo-succeeds.com") { sequence status { state } } }"#;
    legacy.start("1", json!({ "query": watch })).await;
    let mut sse = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": watch }))
        .send()
        .await
        .unwrap();
    let mut sse_read = String::new();
    // A query over the socket is not an event.
    modern
        .start("query", json!({ "query": "{ __typename }" }))
        .await;

    let mut received = 0;
    let mut states = Vec::new();
    for (step, advance) in [(1, 0), (2, 10), (3, 20)] {
        app.simulator()
            .advance_clock(std::time::Duration::from_secs(advance))
            .unwrap();
        while received < step * 3 {
            let message = modern.recv().await;
            if message["type"] == "next" && message["id"] != "query" {
                states.push(
                    change(&message, message["id"].as_str().unwrap())["status"]["state"].clone(),
                );
                received += 1;
            }
        }
        let message = loop {
            let message = legacy.recv().await;
            if message["type"] == "data" {
                break message;
            }
        };
        assert!(message["payload"]["data"].is_object(), "{message}");
        read_sse_events(&mut sse, &mut sse_read, step).await;
    }
    assert_eq!(states.last().unwrap(), "SUCCEEDED");

    let metrics = scrape(&app).await;
    let delivered = |protocol: &str| {
        metrics.value(
            "registrar_gateway_subscription_events_delivered_total",
            &[("protocol", protocol)],
        )
    };
    assert_eq!(
        delivered("graphql-transport-ws"),
        9.0,
        "3 subscribers x 3 events"
    );
    assert_eq!(delivered("graphql-ws"), 3.0);
    assert_eq!(delivered("sse"), 3.0);
    assert_eq!(delivered("multipart"), 0.0);
    assert_eq!(
        metrics.value("registrar_gateway_events_published_total", &[]),
        3.0,
        "one per change, however many subscribe"
    );
}

/// With access keys on, `/metrics` (credential fingerprints, what is left of each
/// budget) is not public: on the main listener a scrape must present a key, as
/// `X-Gateway-Key` or (server mode) `Authorization: Bearer`, what Prometheus'
/// `authorization` setting sends; on `--metrics-listen` it is served as is.
#[tokio::test]
async fn with_access_keys_on_the_main_listener_answers_metrics_only_with_a_key() {
    let key = "scrape-key-0123";
    let app = TestApp::builder()
        .args(&["--access-key", key])
        .spawn()
        .await;
    let metrics = app.url("/metrics");
    for (header, value) in [("x-gateway-key", "wrong-key-0123"), ("accept", "*/*")] {
        let refused = app
            .http
            .get(&metrics)
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{header}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "ACCESS_DENIED");
    }
    let bearer = format!("Bearer {key}");
    for (header, value) in [("x-gateway-key", key), ("authorization", bearer.as_str())] {
        let scraped = app
            .http
            .get(&metrics)
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(scraped.status(), 200, "{header}");
        assert!(scraped.text().await.unwrap().contains("registrar_gateway_"));
    }

    let apart = TestApp::builder()
        .args(&["--access-key", key, "--metrics-listen", "127.0.0.1:0"])
        .spawn()
        .await;
    let address = apart.metrics_address.unwrap();
    let internal = apart
        .http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(internal.status(), 200, "the internal listener is not keyed");
    let main = apart.http.get(apart.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404, "nor served on the main listener");
}
