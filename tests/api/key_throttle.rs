//! Guessing access keys: one client address that presented too many wrong keys
//! is refused `ACCESS_KEY_THROTTLED` on every path that checks a key (POST, GET,
//! SSE, both websocket protocols, the status page, `/metrics`), the right key
//! included, before any upstream call; another address is served as before.
//! Clients at a second address bind their sockets to 127.0.0.2 (on loopback on Linux).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use registrar_gateway::access::{MAX_WRONG_KEYS, WRONG_KEY_WINDOW};
use reqwest::header::{ACCEPT, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{STATUS_QUERY, TestApp};

/// A test fails instead of hanging when the server never answers.
const PATIENCE: Duration = Duration::from_secs(20);
const GUESSER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const NEIGHBOUR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const RIGHT: &str = "the-right-key";
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// An HTTP client whose connections come from `local`.
fn client_at(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local)
        .build()
        .unwrap()
}

/// The status query as a POST body.
fn status_query() -> Value {
    json!({ "query": STATUS_QUERY, "variables": { "domain": "demo-succeeded.com" } })
}

/// A websocket from `local` speaking `protocol`, after its `connection_init` with `key`.
async fn initialised(
    local: IpAddr,
    address: SocketAddr,
    protocol: &str,
    key: &str,
) -> WebSocketStream<TcpStream> {
    let mut request = format!("ws://{address}/graphql")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    let stream = socket.connect(address).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("the upgrade succeeds");
    let init = json!({ "type": "connection_init", "payload": { "X-Gateway-Key": key } });
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    socket
}

/// The first frame other than a ping the server sends.
async fn answer(socket: &mut WebSocketStream<TcpStream>) -> Message {
    loop {
        let next = tokio::time::timeout(PATIENCE, socket.next()).await;
        match next.expect("an answer to connection_init") {
            Some(Ok(Message::Ping(_))) => continue,
            Some(Ok(message)) => return message,
            other => panic!("the socket ended without an answer: {other:?}"),
        }
    }
}

/// One wrong key over each path that checks keys, then more POSTs up to the limit.
async fn guess_everywhere(app: &TestApp, http: &reqwest::Client) {
    let wrong = [("x-gateway-key", "a-guess")];
    let mut guesses = 0;
    for path in [
        "/graphql?query=%7B__typename%7D",
        "/status/demo-succeeded.com",
        "/metrics",
    ] {
        let answer = http
            .get(app.url(path))
            .header(wrong[0].0, wrong[0].1)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{path}");
        guesses += 1;
    }
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut socket = initialised(GUESSER, app.address, protocol, "a-guess").await;
        assert!(
            !answer(&mut socket)
                .await
                .to_string()
                .contains("connection_ack"),
            "{protocol}"
        );
        guesses += 1;
    }
    while guesses < MAX_WRONG_KEYS {
        let answer = http
            .post(app.url("/graphql"))
            .header(wrong[0].0, wrong[0].1)
            .header(ACCEPT, GRAPHQL_RESPONSE)
            .json(&status_query())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(code(&body), "ACCESS_DENIED", "{body}");
        guesses += 1;
    }
}

/// A throttled HTTP answer: 429, a `Retry-After` within the window, and the code
/// in the body (plain text on the status page).
async fn assert_throttled(answer: reqwest::Response, what: &str) {
    assert_eq!(answer.status(), 429, "{what}");
    let retry_after: u64 = answer.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=WRONG_KEY_WINDOW.as_secs()).contains(&retry_after),
        "{what}: Retry-After {retry_after}"
    );
    let body = answer.text().await.unwrap();
    assert!(!body.contains(RIGHT), "{what}: {body}");
    if let Ok(body) = serde_json::from_str::<Value>(&body) {
        assert_eq!(code(&body), "ACCESS_KEY_THROTTLED", "{what}: {body}");
        let seconds = &body["errors"][0]["extensions"]["retryAfterSeconds"];
        assert_eq!(seconds.as_u64(), Some(retry_after), "{what}: {body}");
    } else {
        assert!(
            body.contains("too many wrong gateway access keys"),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn an_address_guessing_keys_is_throttled_on_every_path_and_another_is_served() {
    let app = TestApp::builder()
        .args(&["--access-key", RIGHT])
        .spawn()
        .await;
    let guesser = client_at(GUESSER);
    guess_everywhere(&app, &guesser).await;

    // Now even the right key is refused, on every path, before any upstream call.
    let right = [("x-gateway-key", RIGHT)];
    let post = |accept: &'static str| {
        guesser
            .post(app.url("/graphql"))
            .header(right[0].0, right[0].1)
            .header(ACCEPT, accept)
            .json(&status_query())
            .send()
    };
    assert_throttled(post(GRAPHQL_RESPONSE).await.unwrap(), "POST").await;
    assert_throttled(post("text/event-stream").await.unwrap(), "SSE").await;
    for (path, what) in [
        ("/graphql?query=%7B__typename%7D", "GET"),
        ("/status/demo-succeeded.com", "status page"),
        ("/metrics", "metrics"),
    ] {
        let answer = guesser
            .get(app.url(path))
            .header(right[0].0, right[0].1)
            .header(ACCEPT, GRAPHQL_RESPONSE)
            .send()
            .await
            .unwrap();
        assert_throttled(answer, what).await;
    }
    let mut modern = initialised(GUESSER, app.address, "graphql-transport-ws", RIGHT).await;
    match answer(&mut modern).await {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4403);
            assert!(frame.reason.contains("ACCESS_KEY_THROTTLED"), "{frame}");
        }
        other => panic!("graphql-transport-ws: expected 4403, got {other:?}"),
    }
    let mut legacy = initialised(GUESSER, app.address, "graphql-ws", RIGHT).await;
    let refusal: Value = match answer(&mut legacy).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("graphql-ws: expected connection_error, got {other:?}"),
    };
    assert_eq!(refusal["type"], "connection_error", "{refusal}");
    assert_eq!(
        refusal["payload"]["extensions"]["code"], "ACCESS_KEY_THROTTLED",
        "{refusal}"
    );
    assert_eq!(app.upstream_calls(), 0, "nothing reached the upstream");

    // Another address, with the right key, is served on HTTP and websockets alike.
    let neighbour = client_at(NEIGHBOUR);
    let answer_of_neighbour = neighbour
        .post(app.url("/graphql"))
        .header(right[0].0, right[0].1)
        .header(ACCEPT, GRAPHQL_RESPONSE)
        .json(&status_query())
        .send()
        .await
        .unwrap();
    assert_eq!(answer_of_neighbour.status(), 200);
    let body: Value = answer_of_neighbour.json().await.unwrap();
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "SUCCEEDED",
        "{body}"
    );
    let mut socket = initialised(NEIGHBOUR, app.address, "graphql-transport-ws", RIGHT).await;
    let ack = answer(&mut socket).await;
    assert!(ack.to_string().contains("connection_ack"), "{ack}");
}

#[tokio::test]
async fn missing_keys_are_refused_but_not_counted_as_guesses() {
    let app = TestApp::builder()
        .args(&["--access-key", RIGHT])
        .spawn()
        .await;
    let http = client_at(GUESSER);
    for _ in 0..MAX_WRONG_KEYS * 2 {
        let answer = http
            .post(app.url("/graphql"))
            .header(ACCEPT, GRAPHQL_RESPONSE)
            .json(&status_query())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    let answer = http
        .post(app.url("/graphql"))
        .header("x-gateway-key", RIGHT)
        .header(ACCEPT, GRAPHQL_RESPONSE)
        .json(&status_query())
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        200,
        "a client that forgot its key guessed nothing"
    );
}
