//! Connection hygiene with real slow sockets and short configured timers: headers
//! sent too slowly and idle keep-alive connections are closed, connections past
//! `--max-connections` get a coded 503, and shutdown runs drain (readiness 503),
//! listener closed, then a deadline for whatever is still open; websockets, event
//! streams and idle keep-alive connections do not wait for that deadline.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestApp, WATCH, connect, connect_ready};

/// A test fails instead of hanging when the server never closes a socket.
const PATIENCE: Duration = Duration::from_secs(10);

/// Reads until the server closes the socket; what it sent.
async fn read_until_closed(socket: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, socket.read_to_end(&mut answer)).await;
    match read.expect("the server closes the socket in time") {
        Ok(_) => {}
        // A reset is a close too.
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_sending_headers_too_slowly_is_disconnected() {
    let app = TestApp::builder()
        .args(&["--header-read-timeout", "200ms"])
        .spawn()
        .await;
    let mut socket = TcpStream::connect(app.address).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut socket).await;
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::builder()
        .args(&["--idle-timeout", "200ms"])
        .spawn()
        .await;
    let mut socket = TcpStream::connect(app.address).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn connections_past_the_cap_get_a_coded_503_and_healthz_answers_again_after() {
    let app = TestApp::builder()
        .args(&["--max-connections", "3"])
        .spawn()
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut socket = TcpStream::connect(app.address).await.unwrap();
        // A request in progress (headers not finished) holds the connection open.
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(socket);
    }
    // The refusal comes after the three are accepted: connect until one is refused.
    let mut refused = TcpStream::connect(app.address).await.unwrap();
    let answer = read_until_closed(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"TOO_MANY_CONNECTIONS\""), "{answer}");
    assert_eq!(app.upstream_calls(), 0);

    drop(held);
    // The server notices the three closed sockets as they close; healthz is served again.
    let served = async {
        loop {
            let response = app.http.get(app.url("/healthz")).send().await;
            if response.is_ok_and(|response| response.status() == 200) {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, served)
        .await
        .expect("healthz answers once connections are free");
}

#[tokio::test]
async fn shutdown_drains_with_readiness_503_then_closes_the_listener_then_drops_slow_sockets() {
    let app = TestApp::builder()
        .args(&[
            // Long enough for the readiness request below to be answered during the
            // drain on a loaded machine.
            "--shutdown-drain",
            "2s",
            "--shutdown-timeout",
            "300ms",
            "--header-read-timeout",
            "60s",
        ])
        .spawn()
        .await;
    let address = app.address;
    let http = reqwest::Client::new();
    let ready = format!("http://{address}/readyz");
    assert_eq!(http.get(&ready).send().await.unwrap().status(), 200);
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();

    app.begin_shutdown();
    // During the drain, new connections are still served, and readiness says 503.
    let during = reqwest::Client::new().get(&ready).send().await.unwrap();
    assert_eq!(during.status(), 503);
    assert_eq!(during.text().await.unwrap(), "draining");

    tokio::time::timeout(PATIENCE, app.stopped())
        .await
        .expect("the gateway stops by its deadline, slow socket or not");
    read_until_closed(&mut slow).await;
    assert!(
        TcpStream::connect(address).await.is_err(),
        "the listener is closed"
    );
}

/// A keep-alive connection to `address` that has been answered once and is idle.
async fn idle_keep_alive(address: SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 64];
    let read = tokio::time::timeout(PATIENCE, socket.read(&mut answer)).await;
    let read = read.expect("an answer in time").unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    socket
}

#[tokio::test]
async fn shutdown_closes_websockets_streams_and_keep_alive_connections_before_its_deadline() {
    // A deadline far beyond the test's patience: the gateway stops in time only if
    // nothing open waits for it.
    let app = TestApp::builder()
        .args(&[
            "--shutdown-drain",
            "100ms",
            "--shutdown-timeout",
            "300s",
            "--health-listen",
            "127.0.0.1:0",
        ])
        .spawn()
        .await;
    let mut modern = connect_ready(&app).await;
    modern.watch("1", "demo-pending.com", false).await;
    assert!(modern.recv().await["payload"]["data"].is_object());
    let mut legacy = connect(&app, "graphql-ws").await;
    legacy.send(json!({ "type": "connection_init" })).await;
    assert_eq!(legacy.recv().await["type"], "connection_ack");
    let watch = json!({ "query": WATCH, "variables": { "domain": "demo-pending.com" } });
    legacy.start("1", watch.clone()).await;
    assert_eq!(legacy.recv().await["type"], "data");
    let mut stream = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .json(&watch)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.chunk().await.unwrap().is_some(), "the first event");
    let mut keep_alive = idle_keep_alive(app.address).await;
    let mut health_keep_alive = idle_keep_alive(app.health_address.unwrap()).await;

    app.begin_shutdown();
    tokio::time::timeout(PATIENCE, app.stopped())
        .await
        .expect("the gateway stops without waiting for --shutdown-timeout");
    assert_eq!(modern.expect_close().await.0, 1001);
    assert_eq!(legacy.expect_close().await.0, 1001);
    let ended = async { while stream.chunk().await.unwrap().is_some() {} };
    tokio::time::timeout(PATIENCE, ended)
        .await
        .expect("the event stream has ended");
    read_until_closed(&mut keep_alive).await;
    read_until_closed(&mut health_keep_alive).await;
}
