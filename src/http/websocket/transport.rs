//! The `graphql-transport-ws` protocol, to the letter of its protocol document:
//! close 4400 on an invalid message, 4401 on subscribe before ack, 4403 when
//! `connection_init` is refused (access key), 4408 without `connection_init` in
//! time, 4409 on a duplicate active id, 4429 on a second init;
//! `error` (not `next`) for an operation that cannot start; server `ping`s; one task
//! per connection multiplexing every operation. A subscription that shares an
//! execution (see `graphql::fanout`) has its results pushed to the connection's
//! queue, so that a state change wakes each connection once and the work per
//! subscriber is its frame; any other operation is a stream the task polls.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::{ErrorExtensions, Request, ServerError, Variables};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{AbortHandle, BoxStream, SelectAll, SplitSink};
use futures::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::credential::Credential;
use crate::fair_share::{ClientAddress, ClientId};
use crate::graphql::{Delivered, FanoutResponse, GraphqlError, Recipient, SubscriptionAdmission};
use crate::http::AppState;
use crate::http::peer::client_id;
use crate::metrics::{GraphqlOutcome, Protocol};

use super::counted::{CountingSchema, StartedOperation, Uncounted};
use super::subscriptions::ConnectionSubscriptions;

/// The longest close reason a close frame can carry.
pub(super) const MAX_CLOSE_REASON: usize = 123;

/// Results queued per operation the connection may run before it counts as not
/// reading them (a subscription yields one per state change, a handful per workflow).
const QUEUED_PER_OPERATION: usize = 16;

/// Messages a client may send.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        /// Access key and, in pass-through mode, the caller's Cloudflare credential.
        #[serde(default)]
        payload: Option<Map<String, Value>>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    /// Accepted and type-checked per the protocol; no extension is implemented yet.
    #[serde(rename = "extensions")]
    _extensions: Option<Map<String, Value>>,
}

/// Messages the server sends, serialised straight from borrowed data.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    ConnectionAck,
    Ping,
    Pong,
    Error {
        id: &'a str,
        payload: &'a [ServerError],
    },
    Complete {
        id: &'a str,
    },
}

/// One operation's result, tagged with its operation and generation; `None` when it ended.
type Tagged = (Arc<Tag>, u64, Option<Arc<FanoutResponse>>);

/// An operation's id, and the start of its `next` messages.
struct Tag {
    id: String,
    /// `{"type":"next","id":<id>,"payload":`: a result shared by many subscribers is
    /// serialised once, and each subscriber's message is this prefix, the shared
    /// payload and `}`.
    next_prefix: String,
}

impl Tag {
    fn new(id: String) -> Self {
        let quoted = serde_json::Value::String(id.clone()).to_string();
        let next_prefix = format!(r#"{{"type":"next","id":{quoted},"payload":"#);
        Self { id, next_prefix }
    }

    /// The `next` message carrying `result`.
    fn next(&self, result: &FanoutResponse) -> String {
        let payload = result.json();
        let mut message = String::with_capacity(self.next_prefix.len() + payload.len() + 1);
        message.push_str(&self.next_prefix);
        // The payload is serde_json's output, so UTF-8.
        message.push_str(std::str::from_utf8(payload).unwrap_or("null"));
        message.push('}');
        message
    }
}

/// What the connection loop does next.
enum Flow {
    Continue,
    Close(u16, String),
    Disconnected,
}

/// A running operation.
struct Operation {
    generation: u64,
    running: Running,
    responded: bool,
    /// A subscription: each result it sends is an event delivered.
    subscription: bool,
}

/// Where a running operation's results come from.
enum Running {
    /// Its stream, in [`Connection::streams`], stopped through this handle.
    Stream(AbortHandle),
    /// A shared execution pushing to [`Connection::queue`]; dropping this unsubscribes.
    Delivered {
        _subscription: Delivered,
        /// CountingSchema in the metrics at its first result.
        uncounted: Option<Uncounted>,
    },
}

impl Operation {
    /// Stops the operation; no result of it is sent after.
    fn stop(self) {
        if let Running::Stream(abort) = self.running {
            abort.abort();
        }
    }
}

/// The results shared executions push to one connection, in order per operation.
struct Queue {
    receiver: mpsc::Receiver<Tagged>,
    sender: mpsc::Sender<Tagged>,
    /// Set when a result found the queue full: the client is not reading.
    overrun: Arc<AtomicBool>,
}

impl Queue {
    fn new(max_operations: usize) -> Self {
        let capacity = max_operations
            .saturating_mul(QUEUED_PER_OPERATION)
            .clamp(QUEUED_PER_OPERATION, tokio::sync::Semaphore::MAX_PERMITS);
        let (sender, receiver) = mpsc::channel(capacity);
        Self {
            receiver,
            sender,
            overrun: Arc::default(),
        }
    }
}

/// One subscriber's results into its connection's [`Queue`], tagged.
struct ToConnection {
    sender: mpsc::Sender<Tagged>,
    overrun: Arc<AtomicBool>,
    tag: Arc<Tag>,
    generation: u64,
}

impl Recipient for ToConnection {
    fn deliver(&self, result: Option<Arc<FanoutResponse>>) {
        let tagged = (Arc::clone(&self.tag), self.generation, result);
        // A closed queue is a connection gone: nothing to do.
        if let Err(mpsc::error::TrySendError::Full(_)) = self.sender.try_send(tagged) {
            self.overrun.store(true, Ordering::Relaxed);
        }
    }
}

struct Connection {
    state: AppState,
    /// Runs each operation, counted in the metrics.
    schema: CountingSchema,
    sink: SplitSink<WebSocket, Message>,
    /// Counts subscriptions in the gauge; the bound is [`Connection::max_operations`].
    subscriptions: Arc<dyn SubscriptionAdmission>,
    operations: HashMap<String, Operation>,
    streams: SelectAll<BoxStream<'static, Tagged>>,
    queue: Queue,
    generations: u64,
    /// The caller's own Cloudflare credential, admitted at `connection_init`.
    credential: Option<Credential>,
    /// The client's address, from the upgrade request.
    address: Option<ClientAddress>,
    /// The client, for fair shares: known once `connection_init` is admitted.
    client: Option<ClientId>,
    init_received: bool,
    acknowledged: bool,
}

/// Serves one connection until either side closes it or the gateway stops.
pub(super) async fn serve(socket: WebSocket, state: AppState, address: Option<ClientAddress>) {
    let settings = state.websocket;
    let _open = state.metrics.websocket_connection();
    let (sink, mut incoming) = socket.split();
    let gauge = state.metrics.subscriptions(Protocol::TransportWs);
    let mut connection = Connection {
        subscriptions: ConnectionSubscriptions::counted(gauge),
        schema: CountingSchema::new(&state, Protocol::TransportWs),
        state,
        sink,
        operations: HashMap::new(),
        streams: SelectAll::new(),
        queue: Queue::new(settings.max_subscriptions_per_connection),
        generations: 0,
        credential: None,
        address,
        client: None,
        init_received: false,
        acknowledged: false,
    };
    let init_deadline = tokio::time::sleep(settings.init_timeout);
    tokio::pin!(init_deadline);
    let start = tokio::time::Instant::now() + settings.keepalive;
    let mut keepalive = tokio::time::interval_at(start, settings.keepalive);
    let shutdown = connection.state.shutdown.clone();
    loop {
        let flow = tokio::select! {
            () = shutdown.cancelled() => Flow::Close(1001, "server shutting down".to_owned()),
            () = &mut init_deadline, if !connection.acknowledged => {
                Flow::Close(4408, "Connection initialisation timeout".to_owned())
            }
            message = incoming.next() => match message {
                Some(Ok(message)) => connection.on_message(message).await,
                Some(Err(_)) | None => Flow::Disconnected,
            },
            Some(tagged) = connection.streams.next(), if !connection.streams.is_empty() => {
                connection.on_responses(tagged).await
            }
            Some(tagged) = connection.queue.receiver.recv() => connection.on_queued(tagged).await,
            _ = keepalive.tick(), if connection.acknowledged => connection.send(ServerMessage::Ping).await,
        };
        let flow = match flow {
            Flow::Continue => connection.flush().await,
            other => other,
        };
        match flow {
            Flow::Continue => {}
            Flow::Close(code, reason) => {
                connection.close(code, &reason).await;
                break;
            }
            Flow::Disconnected => break,
        }
    }
}

impl Connection {
    async fn on_message(&mut self, message: Message) -> Flow {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return invalid("binary messages are not part of the protocol"),
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
            Message::Close(_) => return Flow::Disconnected,
        };
        match serde_json::from_str::<ClientMessage>(text.as_str()) {
            Ok(message) => self.on_client_message(message).await,
            Err(error) => {
                // serde's message may quote the value (a credential in a malformed
                // connection_init, say): neither the close reason nor the log shows it.
                tracing::debug!(line = error.line(), column = error.column(), kind = ?error.classify(), "invalid websocket message");
                invalid("Invalid message received")
            }
        }
    }

    async fn on_client_message(&mut self, message: ClientMessage) -> Flow {
        match message {
            ClientMessage::ConnectionInit { .. } if self.init_received => {
                Flow::Close(4429, "Too many initialisation requests".to_owned())
            }
            ClientMessage::ConnectionInit { payload } => {
                self.init_received = true;
                let payload = payload.map_or(Value::Null, Value::Object);
                match self
                    .state
                    .schema
                    .services()
                    .access
                    .admit_init_payload(&payload, self.address.map(IpAddr::from))
                {
                    Ok(admitted) => {
                        self.client = client_id(admitted.access_key, self.address);
                        self.credential = admitted.credential;
                        self.acknowledged = true;
                        self.send(ServerMessage::ConnectionAck).await
                    }
                    // The protocol's refusal of an init is 4403; a throttled
                    // client is told why (its code) and when to come back.
                    Err(error) => match error.retry_after_seconds() {
                        Some(seconds) => Flow::Close(
                            4403,
                            format!("Forbidden: {}, retry in {seconds}s", error.code()),
                        ),
                        None => Flow::Close(4403, "Forbidden".to_owned()),
                    },
                }
            }
            ClientMessage::Ping {} => self.send(ServerMessage::Pong).await,
            ClientMessage::Pong {} => Flow::Continue,
            ClientMessage::Subscribe { .. } if !self.acknowledged => {
                Flow::Close(4401, "Unauthorized".to_owned())
            }
            ClientMessage::Subscribe { id, .. } if self.operations.contains_key(&id) => {
                Flow::Close(4409, format!("Subscriber for {id} already exists"))
            }
            ClientMessage::Subscribe { id, .. }
                if self.operations.len() >= self.max_operations() =>
            {
                self.refuse_too_many(&id).await
            }
            ClientMessage::Subscribe { id, payload } => {
                self.start(id, payload);
                Flow::Continue
            }
            ClientMessage::Complete { id } => {
                if let Some(operation) = self.operations.remove(&id) {
                    operation.stop();
                }
                Flow::Continue
            }
        }
    }

    /// Operations (subscriptions and single-result ones) running at once on one connection.
    fn max_operations(&self) -> usize {
        self.state.websocket.max_subscriptions_per_connection
    }

    /// Refuses an operation past the connection's bound with the protocol's `error`.
    async fn refuse_too_many(&mut self, id: &str) -> Flow {
        let message = format!(
            "at most {} operations at once on one connection",
            self.max_operations()
        );
        let refused = GraphqlError::TooManySubscriptions(message).extend();
        let mut error = ServerError::new(refused.message, None);
        error.extensions = refused.extensions;
        self.send(ServerMessage::Error {
            id,
            payload: &[error],
        })
        .await
    }

    /// Starts an operation; its responses arrive through `self.queue` when it
    /// shares an execution, else through `self.streams`.
    fn start(&mut self, id: String, payload: SubscribePayload) {
        let mut request = Request::new(payload.query);
        if let Some(credential) = &self.credential {
            request = request.data(credential.clone());
        }
        if let Some(client) = self.client {
            request = request.data(client);
        }
        if let Some(name) = payload.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = payload.variables {
            request = request.variables(Variables::from_json(Value::Object(variables)));
        }
        self.generations += 1;
        let generation = self.generations;
        let tag = Arc::new(Tag::new(id.clone()));
        let delivery = ToConnection {
            sender: self.queue.sender.clone(),
            overrun: Arc::clone(&self.queue.overrun),
            tag: Arc::clone(&tag),
            generation,
        };
        let admission = Some(Arc::clone(&self.subscriptions));
        let subscription = self.schema.is_subscription(&request);
        let running = match self
            .schema
            .subscribe_delivered(request, admission, Box::new(delivery))
        {
            StartedOperation::Delivered(subscription, uncounted) => Running::Delivered {
                _subscription: subscription,
                uncounted: Some(uncounted),
            },
            StartedOperation::Stream(results) => {
                let (results, abort) = futures::stream::abortable(results);
                let ended =
                    futures::stream::once(std::future::ready((Arc::clone(&tag), generation, None)));
                let tagged = results
                    .map(move |result| (Arc::clone(&tag), generation, Some(result)))
                    .chain(ended);
                self.streams.push(tagged.boxed());
                Running::Stream(abort)
            }
        };
        let operation = Operation {
            generation,
            running,
            responded: false,
            subscription,
        };
        self.operations.insert(id, operation);
    }

    /// Forwards one response: `error` when the operation could not start, else
    /// `next`; `complete` when its stream ends. Responses of operations the client
    /// completed (or an older operation under a reused id) are dropped.
    async fn on_response(&mut self, (tag, generation, result): Tagged) -> Flow {
        let id = tag.id.as_str();
        let Some(operation) = self
            .operations
            .get_mut(id)
            .filter(|op| op.generation == generation)
        else {
            return Flow::Continue;
        };
        let Some(result) = result else {
            self.operations.remove(id);
            return self.send(ServerMessage::Complete { id }).await;
        };
        if let Running::Delivered { uncounted, .. } = &mut operation.running
            && let Some(uncounted) = uncounted.take()
        {
            uncounted.settle(result.outcome());
        }
        if !operation.responded && result.outcome() == GraphqlOutcome::RequestError {
            if let Some(operation) = self.operations.remove(id) {
                operation.stop();
            }
            return self
                .send(ServerMessage::Error {
                    id,
                    payload: &result.response().errors,
                })
                .await;
        }
        operation.responded = true;
        if operation.subscription {
            self.schema.delivered();
        }
        self.feed(tag.next(&result)).await
    }

    /// Queues a message; [`Connection::flush`] writes what is queued.
    async fn send(&mut self, message: ServerMessage<'_>) -> Flow {
        let text = match serde_json::to_string(&message) {
            Ok(text) => text,
            Err(error) => return Flow::Close(1011, format!("could not encode a message: {error}")),
        };
        self.feed(text).await
    }

    /// Queues a message already encoded.
    async fn feed(&mut self, text: String) -> Flow {
        match self.sink.feed(Message::Text(text.into())).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Disconnected,
        }
    }

    /// Forwards `first` and every other response already waiting, so a burst of
    /// events (one state change, many subscribers) goes out in one write.
    async fn on_responses(&mut self, first: Tagged) -> Flow {
        let mut flow = self.on_response(first).await;
        while matches!(flow, Flow::Continue) {
            let Some(Some(tagged)) = self.streams.next().now_or_never() else {
                break;
            };
            flow = self.on_response(tagged).await;
        }
        flow
    }

    /// Forwards `first` and every other result already queued by shared
    /// executions; closes the connection when results found its queue full.
    async fn on_queued(&mut self, first: Tagged) -> Flow {
        let mut flow = self.on_response(first).await;
        while matches!(flow, Flow::Continue) {
            let Ok(tagged) = self.queue.receiver.try_recv() else {
                break;
            };
            flow = self.on_response(tagged).await;
        }
        match flow {
            Flow::Continue if self.queue.overrun.load(Ordering::Relaxed) => {
                Flow::Close(1013, "results were not read in time".to_owned())
            }
            flow => flow,
        }
    }

    async fn flush(&mut self) -> Flow {
        match self.sink.flush().await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Disconnected,
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: truncate(reason, MAX_CLOSE_REASON).into(),
        };
        // The peer may already be gone; there is nothing more to do then.
        let _ = self.sink.send(Message::Close(Some(frame))).await;
    }
}

fn invalid(reason: &str) -> Flow {
    Flow::Close(4400, reason.to_owned())
}

/// `text` cut to at most `max` bytes on a character boundary.
pub(super) fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use async_graphql::Response;

    use super::*;

    fn delivery(queue: &Queue, id: &str, generation: u64) -> ToConnection {
        ToConnection {
            sender: queue.sender.clone(),
            overrun: Arc::clone(&queue.overrun),
            tag: Arc::new(Tag::new(id.to_owned())),
            generation,
        }
    }

    #[test]
    fn a_connection_queues_results_in_order_up_to_its_bound_then_counts_as_not_reading() {
        let mut queue = Queue::new(1);
        let first = delivery(&queue, "a", 1);
        let bound = QUEUED_PER_OPERATION;
        for _ in 0..bound - 1 {
            first.deliver(Some(Arc::new(FanoutResponse::new(Response::default()))));
        }
        first.deliver(None);
        assert!(!queue.overrun.load(Ordering::Relaxed));
        delivery(&queue, "b", 2).deliver(None);
        assert!(queue.overrun.load(Ordering::Relaxed));
        let mut read = Vec::new();
        while let Ok((tag, generation, result)) = queue.receiver.try_recv() {
            read.push((tag.id.clone(), generation, result.is_some()));
        }
        assert_eq!(read.len(), bound);
        assert!(
            read[..bound - 1]
                .iter()
                .all(|item| item == &("a".to_owned(), 1, true))
        );
        assert_eq!(read[bound - 1], ("a".to_owned(), 1, false));
    }

    #[test]
    fn a_next_message_is_the_operation_prefix_the_shared_payload_and_a_brace() {
        let result = FanoutResponse::new(Response::new(async_graphql::Value::Null));
        let message = Tag::new(r#"x"y"#.to_owned()).next(&result);
        let parsed: serde_json::Value = serde_json::from_str(&message).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({ "type": "next", "id": "x\"y", "payload": { "data": null } })
        );
    }
}
