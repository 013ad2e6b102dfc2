//! A websocket client for tests, speaking either subprotocol over a real socket.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

/// A test fails instead of hanging when an expected message never comes.
const PATIENCE: Duration = Duration::from_secs(20);

/// The subscription every test watches with, every field a client uses.
pub(crate) const WATCH: &str = r#"subscription($domain: String!, $keep: Boolean! = false) {
  registrationStatusChanged(domain: $domain, keepWatchingActionRequired: $keep) {
    sequence previousState
    status { domainName state completed error { code } actionRequired { action confirmationSentTo } }
  }
}"#;

/// One websocket connection to the gateway's `/graphql`.
pub(crate) struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
}

/// Opens a websocket offering `protocols`.
pub(crate) async fn connect(app: &TestApp, protocols: &str) -> WsClient {
    connect_to(app.address, protocols).await
}

/// Opens a websocket to the gateway at `address` (a replica process) offering `protocols`.
pub(crate) async fn connect_to(address: SocketAddr, protocols: &str) -> WsClient {
    let mut request = format!("ws://{address}/graphql")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|value| value.to_str().unwrap().to_owned());
    WsClient { socket, protocol }
}

/// A graphql-transport-ws connection, initialised and acknowledged.
pub(crate) async fn connect_ready(app: &TestApp) -> WsClient {
    connect_ready_to(app.address).await
}

/// A graphql-transport-ws connection to the gateway at `address`, initialised and acknowledged.
pub(crate) async fn connect_ready_to(address: SocketAddr) -> WsClient {
    let mut client = connect_to(address, "graphql-transport-ws").await;
    client.send(json!({ "type": "connection_init" })).await;
    assert_eq!(client.recv().await["type"], "connection_ack");
    client
}

impl WsClient {
    pub(crate) async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub(crate) async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("the socket is open");
    }

    /// Starts operation `id` with `payload` in the chosen subprotocol's words
    /// (`start` in the legacy graphql-ws, `subscribe` in graphql-transport-ws).
    pub(crate) async fn start(&mut self, id: &str, payload: Value) {
        let start = match self.protocol.as_deref() {
            Some("graphql-ws") => "start",
            _ => "subscribe",
        };
        self.send(json!({ "type": start, "id": id, "payload": payload }))
            .await;
    }

    /// Subscribes `id` to a domain's changes (graphql-transport-ws).
    pub(crate) async fn watch(
        &mut self,
        id: &str,
        domain: &str,
        keep_watching_action_required: bool,
    ) {
        let variables = json!({ "domain": domain, "keep": keep_watching_action_required });
        let payload = json!({ "query": WATCH, "variables": variables });
        self.send(json!({ "type": "subscribe", "id": id, "payload": payload }))
            .await;
    }

    /// The next protocol message; websocket-level pings are answered by the library.
    pub(crate) async fn recv(&mut self) -> Value {
        loop {
            match self.next_frame().await {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON messages"),
                Message::Close(frame) => panic!("closed while a message was expected: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The close frame the server sends next, as (code, reason).
    pub(crate) async fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.next_frame().await {
                Message::Close(Some(frame)) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Message::Close(None) => return (u16::from(CloseCode::Status), String::new()),
                Message::Text(text) => panic!("expected a close, got {text}"),
                _ => continue,
            }
        }
    }

    /// The next websocket frame, pings included.
    pub(crate) async fn next_frame(&mut self) -> Message {
        let next = tokio::time::timeout(PATIENCE, self.socket.next()).await;
        match next.expect("a message within the test's patience") {
            Some(Ok(message)) => message,
            Some(Err(Error::ConnectionClosed | Error::AlreadyClosed)) | None => {
                Message::Close(None)
            }
            Some(Err(error)) => panic!("websocket error: {error}"),
        }
    }

    /// Closes the connection from the client side.
    pub(crate) async fn close(mut self) {
        self.socket.close(None).await.ok();
    }
}

/// The `registrationStatusChanged` payload of a `next` (or legacy `data`) message for `id`.
pub(crate) fn change(message: &Value, id: &str) -> Value {
    assert_eq!(message["id"], id, "{message}");
    assert!(message["payload"]["errors"].is_null(), "{message}");
    message["payload"]["data"]["registrationStatusChanged"].clone()
}
