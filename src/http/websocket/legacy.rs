//! The legacy `graphql-ws` protocol (subscriptions-transport-ws), served by
//! async-graphql-axum, with the access policy applied to `connection_init`. A writer task between it and the socket adds websocket
//! pings (the protocol's own `ka` is not sent by async-graphql) and the close
//! frame on shutdown.

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};

use crate::graphql::ConnectionSubscriptions;
use crate::http::AppState;

/// Outgoing messages buffered between the protocol and the socket.
const OUTBOX: usize = 64;

/// Serves one legacy connection until either side ends it or the gateway stops.
pub(super) async fn serve(socket: WebSocket, state: AppState, protocol: GraphQLProtocol) {
    let settings = state.websocket;
    let (mut socket_sink, socket_stream) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<Message>(OUTBOX);
    let mut data = Data::default();
    data.insert(ConnectionSubscriptions::new(
        settings.max_subscriptions_per_connection,
    ));
    let access = state.access.clone();
    let admit = move |payload: serde_json::Value| async move {
        let credential = access
            .admit_init_payload(&payload)
            .map_err(|error| async_graphql::Error::new(error.to_string()))?;
        let mut admitted = Data::default();
        if let Some(credential) = credential {
            admitted.insert(credential);
        }
        Ok(admitted)
    };
    let graphql =
        GraphQLWebSocket::new_with_pair(outbox, socket_stream, state.schema.clone(), protocol)
            .with_data(data)
            .on_connection_init(admit)
            .serve();
    tokio::pin!(graphql);
    let mut keepalive = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.keepalive,
        settings.keepalive,
    );
    loop {
        let message = tokio::select! {
            () = state.shutdown.cancelled() => going_away(),
            () = &mut graphql => {
                // The protocol is over (the client left or broke it): flush what it queued, such as a close frame.
                while let Ok(message) = outgoing.try_recv() {
                    if socket_sink.send(message).await.is_err() {
                        break;
                    }
                }
                break;
            }
            Some(message) = outgoing.next() => message,
            _ = keepalive.tick() => Message::Ping(Default::default()),
        };
        let closing = matches!(message, Message::Close(_));
        if socket_sink.send(message).await.is_err() || closing {
            break;
        }
    }
}

fn going_away() -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::AWAY,
        reason: "server shutting down".into(),
    }))
}
