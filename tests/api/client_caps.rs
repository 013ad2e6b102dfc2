//! One client cannot take the gateway: per client address, connections and
//! websockets are capped (429 with a code, before the gateway-wide cap), so another
//! address is still served; behind trusted proxies, websockets count per forwarded
//! client and the proxy's own connections are not capped; and `/healthz` and
//! `/readyz` on `--health-listen` answer while the main listener is full. Clients
//! at a second address bind their sockets to 127.0.0.2 (on loopback on Linux).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use registrar_gateway::config::GatewayConfig;
use registrar_gateway::startup::probe_health;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::support::{STATUS_QUERY, TestApp};

/// A test fails instead of hanging when the server never answers.
const PATIENCE: Duration = Duration::from_secs(20);
const FIRST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const SECOND: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

type Socket = WebSocketStream<TcpStream>;

/// A TCP connection to `address` from `local`.
async fn connect_from(local: IpAddr, address: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    socket.connect(address).await.unwrap()
}

/// A graphql-transport-ws socket from `local`, initialised; or the refusal's HTTP
/// status and body.
async fn websocket_from(
    local: IpAddr,
    address: SocketAddr,
    headers: &[(&str, &str)],
) -> Result<Socket, (u16, Value)> {
    let mut request = format!("ws://{address}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    for (name, value) in headers {
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let stream = connect_from(local, address).await;
    let mut socket = match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => socket,
        Err(Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return Err((response.status().as_u16(), body));
        }
        Err(other) => panic!("the upgrade is answered: {other}"),
    };
    let init = json!({ "type": "connection_init" }).to_string();
    futures::SinkExt::send(&mut socket, Message::Text(init.into()))
        .await
        .unwrap();
    let ack = tokio::time::timeout(PATIENCE, futures::StreamExt::next(&mut socket))
        .await
        .expect("an answer to connection_init")
        .expect("the socket is open")
        .expect("a message");
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack}");
    Ok(socket)
}

/// Reads what the server sends until it closes the socket.
async fn read_until_closed(socket: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, socket.read_to_end(&mut answer)).await;
    match read.expect("the server closes the socket in time") {
        Ok(_) => {}
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A connection from `local` holding itself open with a request in progress.
async fn held_connection(local: IpAddr, address: SocketAddr) -> TcpStream {
    let mut socket = connect_from(local, address).await;
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    socket
}

/// What a client at `local` gets: `/healthz`, then a status query.
async fn served_from(local: IpAddr, app: &TestApp) -> (u16, Value) {
    let http = reqwest::Client::builder()
        .local_address(local)
        .build()
        .unwrap();
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "/healthz from {local}");
    let body = json!({ "query": STATUS_QUERY, "variables": { "domain": "demo-succeeded.com" } });
    let answer = http
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&body)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// A gateway with the default per-client caps (the tests' defaults lift them).
async fn spawn_with_default_caps() -> TestApp {
    let defaults = GatewayConfig::from_args(["registrar-gateway"]).unwrap();
    let connections = defaults.fair_share.max_connections_per_client.to_string();
    let websockets = defaults.fair_share.max_websockets_per_client.to_string();
    TestApp::builder()
        .args(&[
            "--max-connections-per-client",
            &connections,
            "--max-websockets-per-client",
            &websockets,
        ])
        .spawn()
        .await
}

#[tokio::test]
async fn one_address_trying_520_websockets_holds_its_cap_and_another_address_is_served() {
    let app = spawn_with_default_caps().await;
    let (mut held, mut refused) = (Vec::new(), 0);
    for _ in 0..520 {
        match websocket_from(FIRST, app.address, &[]).await {
            Ok(socket) => held.push(socket),
            Err((status, body)) => {
                assert_eq!(
                    (status, code(&body)),
                    (429, "TOO_MANY_CLIENT_WEBSOCKETS"),
                    "{body}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(
        (held.len(), refused),
        (32, 488),
        "the default --max-websockets-per-client"
    );
    let (status, body) = served_from(SECOND, &app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "SUCCEEDED",
        "{body}"
    );
    assert!(
        websocket_from(SECOND, app.address, &[]).await.is_ok(),
        "the second address has websockets of its own"
    );
    drop(held.pop());
    let again = async {
        loop {
            if let Ok(socket) = websocket_from(FIRST, app.address, &[]).await {
                return socket;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, again)
        .await
        .expect("a closed websocket gives its place back");
}

#[tokio::test]
async fn one_address_at_its_connection_cap_gets_a_coded_429_before_the_gateway_cap() {
    let app = TestApp::builder()
        .args(&[
            "--max-connections-per-client",
            "4",
            "--max-connections",
            "6",
        ])
        .spawn()
        .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(held_connection(FIRST, app.address).await);
    }
    let mut refused = connect_from(FIRST, app.address).await;
    let answer = read_until_closed(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains("\"TOO_MANY_CLIENT_CONNECTIONS\""),
        "{answer}"
    );
    assert!(answer.contains("--max-connections-per-client"), "{answer}");

    let (status, body) = served_from(SECOND, &app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.upstream_calls(), 1, "only the second address's query");

    drop(held.pop());
    let again = async {
        loop {
            let mut socket = connect_from(FIRST, app.address).await;
            socket
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            if read_until_closed(&mut socket)
                .await
                .starts_with("HTTP/1.1 200")
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, again)
        .await
        .expect("a closed connection gives its place back");
}

#[tokio::test]
async fn behind_a_trusted_proxy_websockets_count_per_forwarded_client_and_its_connections_are_not_capped()
 {
    let app = TestApp::builder()
        .args(&[
            "--trusted-proxies",
            "127.0.0.1",
            "--max-websockets-per-client",
            "2",
            "--max-connections-per-client",
            "2",
        ])
        .spawn()
        .await;
    let alice = [("x-forwarded-for", "198.51.100.1")];
    let bob = [("x-forwarded-for", "198.51.100.2")];
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(websocket_from(FIRST, app.address, &alice).await.unwrap());
    }
    let (status, body) = websocket_from(FIRST, app.address, &alice)
        .await
        .unwrap_err();
    assert_eq!((status, code(&body)), (429, "TOO_MANY_CLIENT_WEBSOCKETS"));
    // The proxy holds three connections (past the per-client cap of 2): another
    // client behind it still gets its websockets.
    for _ in 0..2 {
        held.push(websocket_from(FIRST, app.address, &bob).await.unwrap());
    }
    // A client sending the header the proxies do not write is the proxy itself.
    let spoofed = [("forwarded", "for=198.51.100.3")];
    held.push(websocket_from(FIRST, app.address, &spoofed).await.unwrap());
}

#[tokio::test]
async fn the_health_listener_answers_while_the_main_listener_is_full() {
    let app = TestApp::builder()
        .args(&["--max-connections", "2", "--health-listen", "127.0.0.1:0"])
        .spawn()
        .await;
    let health = app.health_address.expect("a health listener");
    let _held = [
        held_connection(FIRST, app.address).await,
        held_connection(SECOND, app.address).await,
    ];
    let mut refused = connect_from(FIRST, app.address).await;
    let answer = read_until_closed(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    for (path, body) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = reqwest::get(format!("http://{health}{path}"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), body);
    }
    probe_health(health)
        .await
        .expect("the container health check probes the health listener");
    let graphql = reqwest::get(format!("http://{health}/graphql"))
        .await
        .unwrap();
    assert_eq!(
        graphql.status(),
        404,
        "the health listener serves health alone"
    );
}
