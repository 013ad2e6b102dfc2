//! GraphQL over websockets on `/graphql`: the `graphql-transport-ws` protocol (our
//! own implementation, to the letter of its protocol document) and the legacy
//! `graphql-ws` protocol of subscriptions-transport-ws (served by async-graphql-axum).
//! Both bound subscriptions per connection, ping idle sockets and close on shutdown;
//! one client address holds at most `--max-websockets-per-client` sockets (one more
//! upgrade is answered 429 `TOO_MANY_CLIENT_WEBSOCKETS`).

mod counted;
mod legacy;
mod subscriptions;
mod transport;

use std::time::Duration;

use async_graphql_axum::GraphQLProtocol;
use axum::extract::FromRequestParts;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::error_body;
use super::media::JSON;
use super::peer::Peer;
use crate::fair_share::TOO_MANY_CLIENT_WEBSOCKETS;

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes queued before a write reaches the socket (a flush writes sooner).
const WRITE_BUFFER: usize = 8 * 1024;
/// Most bytes queued for one slow client.
const MAX_WRITE_BUFFER: usize = 1024 * 1024;

/// Websocket limits and timers.
#[derive(Clone, Copy, Debug)]
pub struct WsSettings {
    /// How long a socket may stay open without `connection_init`.
    pub init_timeout: Duration,
    /// Interval of server pings.
    pub keepalive: Duration,
    /// Most subscriptions on one connection.
    pub max_subscriptions_per_connection: usize,
    /// Largest message accepted from a client, in bytes.
    pub max_message_size: usize,
}

/// The subprotocols we speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subprotocol {
    /// `graphql-transport-ws`, spoken by the graphql-ws library (GraphiQL, Apollo, urql).
    TransportWs,
    /// `graphql-ws`, the legacy subscriptions-transport-ws protocol.
    Legacy,
}

impl Subprotocol {
    fn name(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::Legacy => "graphql-ws",
        }
    }

    /// The protocol to speak: `graphql-transport-ws` whenever the client offers it.
    fn choose(headers: &HeaderMap) -> Option<Self> {
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(',').map(str::trim))
            .collect();
        [Self::TransportWs, Self::Legacy]
            .into_iter()
            .find(|protocol| offered.contains(&protocol.name()))
    }
}

/// Accepts a websocket upgrade on `/graphql` and serves the chosen protocol.
pub(super) async fn upgrade(
    state: AppState,
    parts: &mut Parts,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = Subprotocol::choose(&parts.headers) else {
        let message = "websocket subprotocol must be graphql-transport-ws or graphql-ws";
        return (StatusCode::BAD_REQUEST, message).into_response();
    };
    // Who the client is, as far as the connection tells; its access key (if any)
    // comes with `connection_init`.
    let address =
        Peer::of(&parts.extensions).address(&state.schema.services().shares, &parts.headers);
    // The client address's place among its websockets, held while the socket lives.
    let held = match address.map(|address| state.schema.services().shares.hold_websocket(address)) {
        Some(Err(refused)) => {
            let body = error_body(TOO_MANY_CLIENT_WEBSOCKETS, &refused.to_string());
            let json = [(header::CONTENT_TYPE, JSON)];
            return (StatusCode::TOO_MANY_REQUESTS, json, body).into_response();
        }
        Some(Ok(held)) => Some(held),
        None => None,
    };
    let upgrade = upgrade
        .protocols([protocol.name()])
        .max_message_size(state.websocket.max_message_size)
        // The library's defaults (128 KiB each way) cost about 1 MiB of RSS per idle
        // socket; messages here are a few hundred bytes, and a browser tab holds one socket.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        // A client that stops reading cannot make the gateway buffer without bound:
        // past this, writes fail and the connection closes.
        .max_write_buffer_size(MAX_WRITE_BUFFER);
    match protocol {
        Subprotocol::TransportWs => upgrade.on_upgrade(move |socket| async move {
            transport::serve(socket, state, address).await;
            drop(held);
        }),
        Subprotocol::Legacy => {
            // Only `graphql-ws` was offered among the protocols we know, so the
            // extractor agrees with our choice.
            match GraphQLProtocol::from_request_parts(parts, &state).await {
                Ok(legacy) => upgrade.on_upgrade(move |socket| async move {
                    legacy::serve(socket, state, legacy, address).await;
                    drop(held);
                }),
                Err(status) => status.into_response(),
            }
        }
    }
}

/// Whether a request asks for a websocket.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(value: &str) -> Option<Subprotocol> {
        let mut headers = HeaderMap::new();
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value.parse().unwrap());
        Subprotocol::choose(&headers)
    }

    #[test]
    fn the_modern_protocol_wins_whatever_the_client_order() {
        assert_eq!(
            offered("graphql-ws, graphql-transport-ws"),
            Some(Subprotocol::TransportWs)
        );
        assert_eq!(offered("graphql-ws"), Some(Subprotocol::Legacy));
        assert_eq!(offered("mqtt"), None);
        assert_eq!(Subprotocol::choose(&HeaderMap::new()), None);
    }
}
