//! The legacy `graphql-ws` protocol (subscriptions-transport-ws), served by
//! async-graphql-axum, with the access policy applied to `connection_init`. A loop
//! between it and the socket adds what it lacks: websocket pings (async-graphql does
//! not send the protocol's `ka`), the `connection_init` timeout, and the close frame
//! on shutdown, the refusal's `extensions.code` (async-graphql's
//! `connection_error` keeps only the message), and close reasons cut to the
//! 123 bytes a close frame holds (async-graphql closes with the whole parse
//! error, which quotes the client's input).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_graphql::{Data, ErrorExtensions};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};

use crate::access::AccessPolicy;
use crate::graphql::GraphqlError;
use crate::http::AppState;
use crate::metrics::Protocol;

use super::subscriptions::ConnectionSubscriptions;
use super::transport::{MAX_CLOSE_REASON, truncate};

/// Outgoing messages buffered between the protocol and the socket.
const OUTBOX: usize = 64;

/// Serves one legacy connection until either side ends it, no `connection_init`
/// comes within the init timeout, or the gateway stops.
pub(super) async fn serve(socket: WebSocket, state: AppState, protocol: GraphQLProtocol) {
    let settings = state.websocket;
    let _open = state.metrics.websocket_connection();
    let (mut socket_sink, socket_stream) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<Message>(OUTBOX);
    let mut data = Data::default();
    data.insert(ConnectionSubscriptions::bounded(
        settings.max_subscriptions_per_connection,
        state.metrics.subscriptions(Protocol::LegacyWs),
    ));
    let initialised = Arc::new(AtomicBool::new(false));
    let refusal = Arc::new(OnceLock::new());
    let graphql =
        GraphQLWebSocket::new_with_pair(outbox, socket_stream, state.schema.clone(), protocol)
            .with_data(data)
            .on_connection_init(admit(
                state.access.clone(),
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

/// The `connection_init` hook: the access policy admits the caller (and, in
/// pass-through mode, its Cloudflare credential joins the connection's data).
fn admit(
    access: AccessPolicy,
    initialised: Arc<AtomicBool>,
    refusal: Arc<OnceLock<&'static str>>,
) -> impl FnOnce(serde_json::Value) -> BoxFuture<'static, async_graphql::Result<Data>> + Send + 'static
{
    move |payload| {
        Box::pin(async move {
            initialised.store(true, Ordering::Release);
            let credential = access.admit_init_payload(&payload).map_err(|error| {
                let error = GraphqlError::from(error);
                let _ = refusal.set(error.code());
                error.extend()
            })?;
            let mut admitted = Data::default();
            if let Some(credential) = credential {
                admitted.insert(credential);
            }
            Ok(admitted)
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
