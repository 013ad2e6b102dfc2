//! One websocket connection of the fan-out scenario, speaking graphql-transport-ws:
//! `connection_init` / `connection_ack`, then one `subscribe` per subscriber with
//! distinct ids, then `next` / `complete` / `error` / `ping` until every
//! subscription completed or the run stops. Each event goes to the coordinator
//! stamped with the instant it was read.

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::{CONNECT_CONCURRENCY, FanoutArgs};
use crate::error::BenchError;

/// The subprotocol spoken.
const PROTOCOL: &str = "graphql-transport-ws";
/// The subscription every subscriber sends. `fetchedAt` is when the poll's answer
/// reached the gateway: the start of the gateway's own fan-out.
pub(super) const SUBSCRIPTION: &str = "subscription($domain: String!) { registrationStatusChanged(domain: $domain) \
    { sequence previousState status { state updatedAt fetchedAt } } }";
/// Limit on the handshake and `connection_ack`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages read per subscription at most (a bound on the read loop).
const MAX_MESSAGES_PER_SUBSCRIPTION: usize = 64;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What happened to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// The current status (sequence 1).
    Initial,
    /// A state change (sequence 2 and later).
    Changed,
    /// The server completed the subscription.
    Completed,
    /// An `error` message, an error in `next`, or the connection ended early.
    Failed(String),
}

/// One event and when it was read.
#[derive(Debug)]
pub(super) struct Event {
    /// What happened.
    pub kind: Kind,
    /// When it was read off the socket.
    pub at: Instant,
    /// The wall clock then (the gateway runs on the same machine, same clock).
    pub wall: DateTime<Utc>,
    /// The event's `status.fetchedAt`: when the gateway had the poll's answer.
    pub fetched_at: Option<DateTime<Utc>>,
}

impl Event {
    /// `kind`, read now.
    pub(super) fn now(kind: Kind, fetched_at: Option<DateTime<Utc>>) -> Self {
        Self {
            kind,
            at: Instant::now(),
            wall: Utc::now(),
            fetched_at,
        }
    }
}

/// Opens every connection (a few at a time) and starts their tasks.
pub(super) async fn open_all(
    url: &str,
    domains: &[String],
    args: &FanoutArgs,
    events: UnboundedSender<Event>,
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, BenchError> {
    let per_connection = args.per_connection.max(1);
    let subscribers: Vec<(usize, String)> = (0..args.subscribers as usize)
        .map(|id| (id, domains[id % domains.len()].clone()))
        .collect();
    let groups: Vec<Vec<(usize, String)>> = subscribers
        .chunks(per_connection)
        .map(<[_]>::to_vec)
        .collect();
    let opened: Vec<Result<JoinHandle<()>, BenchError>> = stream::iter(groups)
        .map(|group| {
            let (events, stop) = (events.clone(), stop.clone());
            async move {
                let socket = connect(url).await?;
                Ok(tokio::spawn(drive(socket, group, events, stop)))
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    opened.into_iter().collect()
}

/// Handshake with the subprotocol, then `connection_init` until `connection_ack`.
async fn connect(url: &str) -> Result<Socket, BenchError> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static(PROTOCOL));
    let handshake = async {
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        socket
            .send(text(json!({ "type": "connection_init" })))
            .await?;
        while let Some(message) = socket.next().await {
            if message_type(&message?).as_deref() == Some("connection_ack") {
                return Ok(socket);
            }
        }
        Err(BenchError::Unexpected(
            "the connection closed before connection_ack".to_owned(),
        ))
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| BenchError::Unexpected("no connection_ack in time".to_owned()))?
}

/// Subscribes `group` and reports events until all completed or `stop`.
async fn drive(
    mut socket: Socket,
    group: Vec<(usize, String)>,
    events: UnboundedSender<Event>,
    stop: CancellationToken,
) {
    let report = |kind, fetched_at| {
        let _ = events.send(Event::now(kind, fetched_at));
    };
    let mut open = group.len();
    for (id, domain) in &group {
        let payload = json!({ "query": SUBSCRIPTION, "variables": { "domain": domain } });
        let subscribe = json!({ "id": id.to_string(), "type": "subscribe", "payload": payload });
        if let Err(error) = socket.send(text(subscribe)).await {
            (0..open).for_each(|_| report(Kind::Failed(format!("subscribe: {error}")), None));
            return;
        }
    }
    for _ in 0..group.len() * MAX_MESSAGES_PER_SUBSCRIPTION {
        if open == 0 {
            break;
        }
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = socket.next() => message,
        };
        let Some(Ok(message)) = message else {
            (0..open).for_each(|_| report(Kind::Failed("the connection ended".to_owned()), None));
            return;
        };
        match classify(&message) {
            Some(Classified::Ping) => {
                let _ = socket.send(text(json!({ "type": "pong" }))).await;
            }
            Some(Classified::Event {
                kind,
                ends,
                fetched_at,
            }) => {
                open = open.saturating_sub(usize::from(ends));
                report(kind, fetched_at);
            }
            None => {}
        }
    }
    let _ = socket.close(None).await;
}

/// A server message the scenario reacts to.
enum Classified {
    Ping,
    /// An event; `ends` when the subscription is over (`complete` or `error`).
    Event {
        kind: Kind,
        ends: bool,
        fetched_at: Option<DateTime<Utc>>,
    },
}

fn classify(message: &Message) -> Option<Classified> {
    let Message::Text(body) = message else {
        return None;
    };
    let value: Value = serde_json::from_str(body.as_str()).ok()?;
    let (kind, ends) = match value["type"].as_str()? {
        "ping" => return Some(Classified::Ping),
        "complete" => (Kind::Completed, true),
        "error" => (Kind::Failed(value["payload"].to_string()), true),
        "next" => (next_kind(&value["payload"]), false),
        _ => return None,
    };
    let fetched_at = fetched_at(&value["payload"]);
    Some(Classified::Event {
        kind,
        ends,
        fetched_at,
    })
}

/// The kind of a `next` payload (an execution result), for either transport.
pub(super) fn next_kind(payload: &Value) -> Kind {
    if payload.get("errors").is_some() {
        return Kind::Failed(payload["errors"].to_string());
    }
    match payload["data"]["registrationStatusChanged"]["sequence"].as_u64() {
        Some(1) => Kind::Initial,
        Some(_) => Kind::Changed,
        None => Kind::Failed(format!("next without a sequence: {payload}")),
    }
}

/// The `status.fetchedAt` of a `next` payload, for either transport.
pub(super) fn fetched_at(payload: &Value) -> Option<DateTime<Utc>> {
    let text = payload["data"]["registrationStatusChanged"]["status"]["fetchedAt"].as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

fn message_type(message: &Message) -> Option<String> {
    let Message::Text(body) = message else {
        return None;
    };
    let value: Value = serde_json::from_str(body.as_str()).ok()?;
    value["type"].as_str().map(str::to_owned)
}

fn text(value: Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}
