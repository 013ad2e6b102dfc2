//! One websocket connection of the fan-out scenario, speaking graphql-transport-ws:
//! `connection_init` / `connection_ack`, then one `subscribe` per subscriber with
//! distinct ids, then `next` / `complete` / `error` / `ping` until every
//! subscription completed or the run stops. Each event goes to the coordinator
//! stamped with the instant it was read.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use futures::{FutureExt, SinkExt, StreamExt, stream};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
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
/// The socket's read buffer. tungstenite zeroes the free part of its read buffer
/// (128 KiB by default) before every read, also one that finds nothing to read:
/// a sixth of the load generator's CPU at 50,000 subscribers, on the cores the
/// gateway runs on. Events are a few hundred bytes.
const READ_BUFFER: usize = 8 * 1024;

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
        Self::read(kind, fetched_at, ReadAt::now())
    }

    /// `kind`, read at `read`.
    pub(super) fn read(kind: Kind, fetched_at: Option<DateTime<Utc>>, read: ReadAt) -> Self {
        Self {
            kind,
            at: read.at,
            wall: read.wall,
            fetched_at,
        }
    }
}

/// When a message came off the socket: taken before it is parsed, so that the
/// load generator's own parsing of it is not counted as the gateway's latency.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadAt {
    at: Instant,
    wall: DateTime<Utc>,
}

impl ReadAt {
    pub(super) fn now() -> Self {
        Self {
            at: Instant::now(),
            wall: Utc::now(),
        }
    }
}

/// Opens every connection (a few at a time) and starts their tasks.
pub(super) async fn open_all(
    url: &str,
    domains: &[String],
    args: &FanoutArgs,
    events: UnboundedSender<Vec<Event>>,
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
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
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

/// Subscribes `group` and reports events until all completed or `stop`. The
/// messages already read when one arrives go to the coordinator in one batch: one
/// wake-up of the coordinator per burst rather than per event.
async fn drive(
    mut socket: Socket,
    group: Vec<(usize, String)>,
    events: UnboundedSender<Vec<Event>>,
    stop: CancellationToken,
) {
    let report = |kind, fetched_at| {
        let _ = events.send(vec![Event::now(kind, fetched_at)]);
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
    let mut read_messages = 0;
    while open > 0 && read_messages < group.len() * MAX_MESSAGES_PER_SUBSCRIPTION {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = socket.next() => message,
        };
        let mut batch = Vec::new();
        let mut next = message;
        loop {
            let Some(Ok(message)) = next else {
                let _ = events.send(batch);
                (0..open)
                    .for_each(|_| report(Kind::Failed("the connection ended".to_owned()), None));
                return;
            };
            read_messages += 1;
            let read = ReadAt::now();
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
                    batch.push(Event::read(kind, fetched_at, read));
                }
                None => {}
            }
            // Messages already received go in this batch; a pending read ends it.
            match socket.next().now_or_never() {
                Some(message) if open > 0 => next = message,
                _ => break,
            }
        }
        if !batch.is_empty() {
            let _ = events.send(batch);
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

/// The `type` of a server message; its other fields are skipped unparsed.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// A `next` message: its payload is what the scenario times and checks.
#[derive(Deserialize)]
struct NextMessage<'a> {
    #[serde(borrow)]
    payload: NextPayload<'a>,
}

/// A `next` payload (an execution result), as far as the scenario reads it: errors
/// (their presence), the change's `sequence` and its `status.fetchedAt`. Read into
/// borrowed fields, not a `serde_json::Value`: the load generator shares the cores
/// with the gateway and parses every event, so its reading is part of the latency.
#[derive(Deserialize)]
pub(super) struct NextPayload<'a> {
    #[serde(borrow, default)]
    data: Option<NextData<'a>>,
    #[serde(default)]
    errors: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextData<'a> {
    #[serde(borrow, default)]
    registration_status_changed: Option<Change<'a>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(default)]
    sequence: Option<u64>,
    #[serde(borrow, default)]
    status: Option<ChangeStatus<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeStatus<'a> {
    #[serde(borrow, default)]
    fetched_at: Option<Cow<'a, str>>,
}

fn classify(message: &Message) -> Option<Classified> {
    let Message::Text(body) = message else {
        return None;
    };
    let body = body.as_str();
    let envelope: Envelope<'_> = serde_json::from_str(body).ok()?;
    match envelope.kind.as_ref() {
        "ping" => Some(Classified::Ping),
        "complete" => Some(Classified::Event {
            kind: Kind::Completed,
            ends: true,
            fetched_at: None,
        }),
        "error" => {
            // Rare: the whole message, parsed for its payload, is the failure's reason.
            let value: Value = serde_json::from_str(body).ok()?;
            Some(Classified::Event {
                kind: Kind::Failed(value["payload"].to_string()),
                ends: true,
                fetched_at: None,
            })
        }
        "next" => {
            let (kind, fetched_at) = match serde_json::from_str::<NextMessage<'_>>(body) {
                Ok(next) => next.payload.read(|| {
                    let value: Value = serde_json::from_str(body).unwrap_or_default();
                    value["payload"].clone()
                }),
                Err(error) => (Kind::Failed(format!("next with bad JSON: {error}")), None),
            };
            Some(Classified::Event {
                kind,
                ends: false,
                fetched_at,
            })
        }
        _ => None,
    }
}

impl NextPayload<'_> {
    /// The kind of the event and its `status.fetchedAt`, for either transport;
    /// `whole` gives the payload as JSON for a failure's reason.
    pub(super) fn read(&self, whole: impl FnOnce() -> Value) -> (Kind, Option<DateTime<Utc>>) {
        if self.errors.is_some() {
            let payload = whole();
            return (Kind::Failed(payload["errors"].to_string()), None);
        }
        let change = self
            .data
            .as_ref()
            .and_then(|data| data.registration_status_changed.as_ref());
        let kind = match change.and_then(|change| change.sequence) {
            Some(1) => Kind::Initial,
            Some(_) => Kind::Changed,
            None => Kind::Failed(format!("next without a sequence: {}", whole())),
        };
        let fetched_at = change
            .and_then(|change| change.status.as_ref())
            .and_then(|status| status.fetched_at.as_deref())
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.with_timezone(&Utc));
        (kind, fetched_at)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: &str) -> Option<(Kind, bool, Option<DateTime<Utc>>)> {
        match classify(&Message::Text(Utf8Bytes::from(body.to_owned())))? {
            Classified::Ping => None,
            Classified::Event {
                kind,
                ends,
                fetched_at,
            } => Some((kind, ends, fetched_at)),
        }
    }

    #[test]
    fn messages_are_read_as_the_gateway_writes_them() {
        let next = r#"{"type":"next","id":"7","payload":{"data":{"registrationStatusChanged":
            {"sequence":2,"previousState":"PENDING","status":{"state":"IN_PROGRESS",
            "updatedAt":"2026-11-30T07:29:59Z","fetchedAt":"2026-11-30T07:30:00.123456789+00:00"}}}}}"#;
        let fetched = DateTime::parse_from_rfc3339("2026-11-30T07:30:00.123456789Z").unwrap();
        assert_eq!(
            event(next),
            Some((Kind::Changed, false, Some(fetched.with_timezone(&Utc))))
        );
        let first = r#"{"type":"next","id":"7","payload":{"data":{"registrationStatusChanged":{"sequence":1}}}}"#;
        assert_eq!(event(first), Some((Kind::Initial, false, None)));
        assert_eq!(
            event(r#"{"id":"7","type":"complete"}"#),
            Some((Kind::Completed, true, None))
        );
        assert!(matches!(
            classify(&Message::Text(r#"{"type":"ping"}"#.into())),
            Some(Classified::Ping)
        ));
    }

    #[test]
    fn errors_and_missing_fields_are_failures_with_their_reason() {
        let errors =
            r#"{"type":"next","id":"1","payload":{"data":null,"errors":[{"message":"boom"}]}}"#;
        assert!(
            matches!(event(errors), Some((Kind::Failed(reason), false, None)) if reason.contains("boom"))
        );
        let refused = r#"{"type":"error","id":"1","payload":[{"message":"too many"}]}"#;
        assert!(
            matches!(event(refused), Some((Kind::Failed(reason), true, None)) if reason.contains("too many"))
        );
        let no_sequence =
            r#"{"type":"next","id":"1","payload":{"data":{"registrationStatusChanged":null}}}"#;
        assert!(matches!(
            event(no_sequence),
            Some((Kind::Failed(_), false, None))
        ));
        assert_eq!(event(r#"{"type":"pong"}"#), None);
    }
}
