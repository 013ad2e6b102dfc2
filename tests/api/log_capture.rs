//! Credentials never reach a log line, at any level: every event (TRACE and up, the
//! gateway's, the simulator's and its dependencies') is captured in a buffer while
//! queries run with server-held, passed-through, refused and wrong credentials and
//! access keys, over HTTP and both websocket protocols (secrets in
//! `connection_init`); then no secret may appear in it. The subscriber uses the
//! gateway's own filter. A test binary of its own (see `[[test]]` in Cargo.toml),
//! because the subscriber is process-global; it sits beside the suite to share its
//! start-up code.

// The suite's start-up code; this binary uses only some of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use registrar_simulator::Faults;
use serde_json::json;

/// Every log line written so far.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const SERVER_TOKEN: &str = "server-token-SECRET-1111";
const CLIENT_TOKEN: &str = "client-token-SECRET-2222";
const REVOKED_TOKEN: &str = "revoked-token-SECRET-3333";
const EMAIL: &str = "leaky.person@secret-mail.example";
const API_KEY: &str = "5ec2e7ab5ec2e7ab5ec2e7ab5ec2e7ab";
const ACCESS_KEY: &str = "access-key-SECRET-4444";
const WRONG_ACCESS_KEY: &str = "wrong-key-SECRET-5555";
const FILE_TOKEN: &str = "file-token-SECRET-6666";
const FILE_ACCESS_KEY: &str = "file-access-key-SECRET-7777";

#[tokio::test]
async fn no_token_key_or_email_appears_in_trace_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        // The gateway's own filter, as `RUST_LOG=trace` makes it.
        .with_env_filter(registrar_gateway::telemetry::filter("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let simulator = support::spawn_simulator().await.handle;
    simulator.refuse_credential(REVOKED_TOKEN);
    let server = support::TestApp::builder()
        .simulator(simulator.clone())
        .token(SERVER_TOKEN)
        .args(&["--access-key", ACCESS_KEY])
        .spawn()
        .await;
    for headers in [
        vec![("x-gateway-key", ACCESS_KEY)],
        vec![("authorization", &*format!("Bearer {ACCESS_KEY}"))],
    ] {
        server.status_with(&headers, "demo-succeeded.com").await;
    }
    server
        .status_with(&[("x-gateway-key", WRONG_ACCESS_KEY)], "demo-succeeded.com")
        .await;

    // Secrets from files, as container secret stores mount them (newline included).
    let secrets = std::env::temp_dir().join(format!("gw-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&secrets).unwrap();
    let (token_file, keys_file) = (secrets.join("token"), secrets.join("keys"));
    std::fs::write(&token_file, format!("{FILE_TOKEN}\n")).unwrap();
    std::fs::write(&keys_file, format!("{FILE_ACCESS_KEY}\n")).unwrap();
    let tagging = registrar_simulator::SimulatorSettings::default().tag_credentials();
    let tagging = support::spawn_simulator_with(tagging).await.handle;
    let from_files = support::TestApp::builder()
        .simulator(tagging)
        .args(&[
            "--api-token-file",
            token_file.to_str().unwrap(),
            "--access-keys-file",
            keys_file.to_str().unwrap(),
        ])
        .spawn()
        .await;
    let (status, body) = from_files
        .status_with(&[("x-gateway-key", FILE_ACCESS_KEY)], "demo-succeeded.com")
        .await;
    assert_eq!(status, 200, "{body}");
    let tag = &body["data"]["registrationStatus"]["context"]["credential_tag"];
    let expected = registrar_simulator::credential_tag(FILE_TOKEN);
    assert_eq!(
        tag,
        &json!(expected),
        "the file's token, newline dropped: {body}"
    );
    let (status, _) = from_files.status_with(&[], "demo-succeeded.com").await;
    assert_eq!(status, 401, "the key file's key is required");

    let pass_through = support::TestApp::builder()
        .simulator(simulator.clone())
        .token(REVOKED_TOKEN)
        .args(&[
            "--credential-mode",
            "pass-through-or-server",
            "--cache-ttl-error",
            "0s",
        ])
        .spawn()
        .await;
    let bearer = format!("Bearer {CLIENT_TOKEN}");
    let revoked = format!("Bearer {REVOKED_TOKEN}");
    for headers in [
        vec![("authorization", bearer.as_str())],
        vec![("x-auth-email", EMAIL), ("x-auth-key", API_KEY)],
        vec![("authorization", revoked.as_str())],
        vec![],
        vec![("x-auth-email", EMAIL)],
        vec![("authorization", "Basic bm90LWEtYmVhcmVy")],
    ] {
        pass_through.status_with(&headers, "demo-pending.com").await;
    }
    // Both websocket protocols, with every secret in `connection_init`: the
    // access key to the keyed gateway, the caller's credentials to pass-through.
    let server_payload = json!({ "X-Gateway-Key": ACCESS_KEY });
    let wrong_payload = json!({ "x-gateway-key": WRONG_ACCESS_KEY });
    let bearer_payload = json!({ "Authorization": bearer });
    let key_payload = json!({ "X-Auth-Email": EMAIL, "X-Auth-Key": API_KEY });
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        for (app, payload) in [
            (&server, &server_payload),
            (&server, &wrong_payload),
            (&pass_through, &bearer_payload),
            (&pass_through, &key_payload),
        ] {
            watch_once(app, protocol, payload).await;
        }
    }

    simulator
        .set_faults(Faults {
            error_share: 1.0,
            ..Faults::default()
        })
        .unwrap();
    pass_through
        .status_with(&[("authorization", bearer.as_str())], "demo-failed.com")
        .await;

    // Last, as this client is refused from here on: wrong keys until it is throttled,
    // then the right one, refused; the throttle's warning is captured too.
    for _ in 0..registrar_gateway::access::MAX_WRONG_KEYS {
        let wrong = [("x-gateway-key", WRONG_ACCESS_KEY)];
        server.status_with(&wrong, "demo-succeeded.com").await;
    }
    let (status, _) = server
        .status_with(&[("x-gateway-key", ACCESS_KEY)], "demo-succeeded.com")
        .await;
    assert_eq!(status, 429, "the client is throttled");

    let logs = captured.text();
    assert!(
        logs.contains("retrying an upstream call") && logs.contains("TRACE"),
        "the gateway's events at every level were captured"
    );
    assert!(
        logs.contains("too many wrong access keys"),
        "the throttle's warning is among the captured lines"
    );
    for secret in [
        SERVER_TOKEN,
        CLIENT_TOKEN,
        REVOKED_TOKEN,
        EMAIL,
        API_KEY,
        ACCESS_KEY,
        WRONG_ACCESS_KEY,
        FILE_TOKEN,
        FILE_ACCESS_KEY,
        "bm90LWEtYmVhcmVy",
    ] {
        let line = logs.lines().find(|line| line.contains(secret));
        assert!(
            line.is_none(),
            "{secret} leaked: {}",
            line.unwrap_or_default()
        );
    }

    // Readiness answers 503 while draining, as planned: a warning, not an error.
    server.begin_shutdown();
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let logs = captured.text();
    let planned = logs
        .lines()
        .filter(|line| line.contains("request answered 503"));
    assert!(planned.clone().count() >= 1, "the drain's 503 is logged");
    assert!(
        planned.clone().all(|line| line.contains(" WARN ")),
        "{:?}",
        planned.collect::<Vec<_>>()
    );
    let as_error = logs
        .lines()
        .find(|line| line.contains(" ERROR ") && line.contains("503"));
    assert!(as_error.is_none(), "{}", as_error.unwrap_or_default());
}

/// Opens a websocket speaking `protocol`, sends `connection_init` with `payload`,
/// and, when acknowledged, runs one subscription to its first answer.
async fn watch_once(app: &support::TestApp, protocol: &str, payload: &serde_json::Value) {
    let mut client = support::connect(app, protocol).await;
    client
        .send(json!({ "type": "connection_init", "payload": payload }))
        .await;
    let acknowledged = matches!(
        client.next_frame().await,
        tokio_tungstenite::tungstenite::Message::Text(text) if text.contains("connection_ack")
    );
    if acknowledged {
        let query = r#"subscription { registrationStatusChanged(domain: "demo-pending.com") { sequence } }"#;
        client.start("1", json!({ "query": query })).await;
        client.recv().await;
    }
    client.close().await;
}
