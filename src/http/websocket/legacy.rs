//! The legacy `graphql-ws` protocol (subscriptions-transport-ws), served by
//! async-graphql-axum, with the access policy applied to `connection_init`. A loop
//! between it and the socket adds what it lacks: websocket pings (async-graphql does
//! not send the protocol's `ka`), the `connection_init` timeout, and the close frame
//! on shutdown, the refusal's `extensions.code` (async-graphql's
//! `connection_error` keeps only the message), and close reasons cut to the
//! 123 bytes a close frame holds (async-graphql closes with the whole parse
//! error, which quotes the client's input). async-graphql runs every `start`
//! (query, mutation or subscription) as a stream of its own, so [`Bounded`] holds
//! each one to `--max-subscriptions-per-connection` operations at once, as the
//! graphql-transport-ws side does.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use async_graphql::{Data, ErrorExtensions, Executor, Request, Response, ServerError};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};

use crate::access::AccessPolicy;
use crate::fair_share::ClientAddress;
use crate::graphql::GraphqlError;
use crate::http::AppState;
use crate::http::peer::client_id;
use crate::metrics::Protocol;

use super::counted::CountingSchema;
use super::subscriptions::ConnectionSubscriptions;
use super::transport::{MAX_CLOSE_REASON, truncate};

/// Outgoing messages buffered between the protocol and the socket.
const OUTBOX: usize = 64;

/// Serves one legacy connection until either side ends it, no `connection_init`
/// comes within the init timeout, or the gateway stops.
pub(super) async fn serve(
    socket: WebSocket,
    state: AppState,
    protocol: GraphQLProtocol,
    address: Option<ClientAddress>,
) {
    let settings = state.websocket;
    let _open = state.metrics.websocket_connection();
    let (mut socket_sink, socket_stream) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<Message>(OUTBOX);
    let mut data = Data::default();
    // [`Bounded`] bounds every operation; subscriptions are only counted.
    data.insert(ConnectionSubscriptions::counted(
        state.metrics.subscriptions(Protocol::LegacyWs),
    ));
    let initialised = Arc::new(AtomicBool::new(false));
    let refusal = Arc::new(OnceLock::new());
    let bounded = Bounded {
        schema: CountingSchema::new(&state, Protocol::LegacyWs),
        running: Arc::default(),
        max: settings.max_subscriptions_per_connection,
    };
    let graphql = GraphQLWebSocket::new_with_pair(outbox, socket_stream, bounded, protocol)
        .with_data(data)
        .on_connection_init(admit(
            state.schema.services().access.clone(),
            address,
            Arc::clone(&initialised),
            Arc::clone(&refusal),
        ))
        .serve();
    tokio::pin!(graphql);
    let init_deadline = tokio::time::sleep(settings.init_timeout);
    tokio::pin!(init_deadline);
    let start = tokio::time::Instant::now() + settings.keepalive;
    let mut keepalive = tokio::time::interval_at(start, settings.keepalive);
    loop {
        let message = tokio::select! {
            () = state.shutdown.cancelled() => close(close_code::AWAY, "server shutting down"),
            () = &mut init_deadline, if !initialised.load(Ordering::Acquire) => {
                close(4408, "Connection initialisation timeout")
            }
            () = &mut graphql => {
                // The protocol is over (the client left or broke it): flush what it queued.
                while let Ok(message) = outgoing.try_recv() {
                    let message = bounded_close(with_refusal_code(message, refusal.get().copied()));
                    if socket_sink.send(message).await.is_err() {
                        break;
                    }
                }
                break;
            }
            Some(message) = outgoing.next() => {
                bounded_close(with_refusal_code(message, refusal.get().copied()))
            }
            _ = keepalive.tick() => Message::Ping(Default::default()),
        };
        let closing = matches!(message, Message::Close(_));
        if socket_sink.send(message).await.is_err() || closing {
            break;
        }
    }
}

/// The schema as one legacy connection runs it: every operation (subscriptions,
/// and queries and mutations sent over the socket) holds one of `max` slots for as
/// long as its stream lives; one past them is answered `TOO_MANY_SUBSCRIPTIONS`
/// without running. (async-graphql starts each `start` message unbounded.)
#[derive(Clone)]
struct Bounded {
    /// The schema, counting each operation in the metrics.
    schema: CountingSchema,
    /// Operations of this connection running now.
    running: Arc<AtomicUsize>,
    max: usize,
}

impl Executor for Bounded {
    async fn execute(&self, request: Request) -> Response {
        self.schema.execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let taken = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < self.max).then_some(running + 1)
            });
        if taken.is_err() {
            let message = format!("at most {} operations at once on one connection", self.max);
            let refused = GraphqlError::TooManySubscriptions(message).extend();
            let mut error = ServerError::new(refused.message, None);
            error.extensions = refused.extensions;
            return futures::stream::once(async { Response::from_errors(vec![error]) }).boxed();
        }
        let slot = RunningOperation(Arc::clone(&self.running));
        Executor::execute_stream(&self.schema, request, session_data)
            .map(move |response| {
                // The slot is freed when the stream is dropped (ended, stopped or replaced).
                let _slot = &slot;
                response
            })
            .boxed()
    }
}

/// One running operation's slot; freed on drop.
struct RunningOperation(Arc<AtomicUsize>);

impl Drop for RunningOperation {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `connection_init` hook: the access policy admits the caller (and, in
/// pass-through mode, its Cloudflare credential joins the connection's data, as
/// does the client it is, for fair shares).
fn admit(
    access: AccessPolicy,
    address: Option<ClientAddress>,
    initialised: Arc<AtomicBool>,
    refusal: Arc<OnceLock<&'static str>>,
) -> impl FnOnce(serde_json::Value) -> BoxFuture<'static, async_graphql::Result<Data>> + Send + 'static
{
    move |payload| {
        Box::pin(async move {
            initialised.store(true, Ordering::Release);
            let from = address.map(IpAddr::from);
            let admitted = access.admit_init_payload(&payload, from).map_err(|error| {
                let error = GraphqlError::from(error);
                let _ = refusal.set(error.code());
                error.extend()
            })?;
            let mut data = Data::default();
            if let Some(client) = client_id(admitted.access_key, address) {
                data.insert(client);
            }
            if let Some(credential) = admitted.credential {
                data.insert(credential);
            }
            Ok(data)
        })
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// A close frame's reason cut to what the frame can carry; other messages unchanged.
fn bounded_close(message: Message) -> Message {
    match message {
        Message::Close(Some(CloseFrame { code, reason })) if reason.len() > MAX_CLOSE_REASON => {
            let reason = truncate(reason.as_str(), MAX_CLOSE_REASON).to_owned();
            Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
        }
        other => other,
    }
}

/// Adds the refusal's `extensions.code` to async-graphql's `connection_error`,
/// which carries only the message; every other message passes unchanged.
fn with_refusal_code(message: Message, code: Option<&'static str>) -> Message {
    let (Message::Text(text), Some(code)) = (&message, code) else {
        return message;
    };
    let Ok(mut parsed) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
        return message;
    };
    if parsed["type"] != "connection_error" || !parsed["payload"].is_object() {
        return message;
    }
    parsed["payload"]["extensions"] = serde_json::json!({ "code": code });
    Message::Text(parsed.to_string().into())
}
