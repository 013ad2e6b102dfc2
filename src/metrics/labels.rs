//! The values each label may take: closed enums, so every series is known in
//! advance and no input can mint a new one.

use async_graphql::parser::types::OperationType;
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// An enum whose variants are label values, written as their `as_str`.
macro_rules! label_values {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, so each series can start at zero.
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            /// The position of this value in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}

label_values! {
    /// How one upstream HTTP request ended.
    UpstreamOutcome {
        /// 200 with a status.
        Ok => "ok",
        /// 404: no workflow for the domain (a definite answer).
        NotFound => "not_found",
        /// The credential was refused.
        Auth => "auth",
        /// 429.
        RateLimited => "rate_limited",
        /// Another 4xx.
        Rejected => "rejected",
        /// 5xx, or no connection.
        Unavailable => "unavailable",
        /// No complete answer in time.
        Timeout => "timeout",
        /// An answer that is not the documented envelope.
        Invalid => "invalid",
    }
}

label_values! {
    /// How a client's status lookup was answered.
    Lookup {
        /// Fresh in the cache.
        Hit => "hit",
        /// This lookup started the upstream call.
        Miss => "miss",
        /// Joined an upstream call already in flight for the same key.
        Collapsed => "collapsed",
        /// Missing here, found in the cache the replicas share in Redis (another
        /// replica's upstream call, or one it was making): no upstream call.
        Shared => "shared",
        /// The upstream failed; a stale status was served.
        Stale => "stale",
    }
}

label_values! {
    /// The protocol a subscription runs over.
    Protocol {
        /// `graphql-transport-ws` (graphql-ws library: GraphiQL, Apollo, urql).
        TransportWs => "graphql-transport-ws",
        /// `graphql-ws` (legacy subscriptions-transport-ws).
        LegacyWs => "graphql-ws",
        /// GraphQL over Server-Sent Events (graphql-sse, `EventSource`).
        Sse => "sse",
        /// `multipart/mixed` over HTTP (Apollo Client's `HttpLink`, GraphiQL).
        Multipart => "multipart",
    }
}

label_values! {
    /// How a GraphQL operation reached the gateway: one HTTP request (answered
    /// with one response, or streamed) or one operation on a websocket.
    Transport {
        /// GraphQL over HTTP (GET or POST), answered with one response.
        Http => "http",
        /// An HTTP request answered with Server-Sent Events (graphql-sse).
        Sse => "sse",
        /// An HTTP request answered with `multipart/mixed` (Apollo, GraphiQL).
        Multipart => "multipart",
        /// An operation on a `graphql-transport-ws` websocket.
        TransportWs => "graphql-transport-ws",
        /// An operation on a legacy `graphql-ws` websocket.
        LegacyWs => "graphql-ws",
    }
}

impl Transport {
    /// The transports whose operations are HTTP requests, timed from request to
    /// response headers; websocket operations have no such latency. They lead
    /// [`Transport::ALL`], so their [`Transport::index`] indexes this too.
    pub const REQUESTS: &[Self] = &[Self::Http, Self::Sse, Self::Multipart];
}

label_values! {
    /// The type of a GraphQL operation.
    OperationKind {
        /// `query`.
        Query => "query",
        /// `mutation`.
        Mutation => "mutation",
        /// `subscription`.
        Subscription => "subscription",
        /// Not known: the document did not parse or names no single operation.
        Unknown => "unknown",
    }
}

impl From<Option<OperationType>> for OperationKind {
    /// The label of the operation a request runs; `Unknown` when none is known.
    fn from(operation: Option<OperationType>) -> Self {
        match operation {
            Some(OperationType::Query) => Self::Query,
            Some(OperationType::Mutation) => Self::Mutation,
            Some(OperationType::Subscription) => Self::Subscription,
            None => Self::Unknown,
        }
    }
}

label_values! {
    /// How a GraphQL operation ended.
    GraphqlOutcome {
        /// Data and no errors.
        Ok => "ok",
        /// Executed, with errors in the response (e.g. an upstream failure).
        Error => "error",
        /// Not executed: unparseable, invalid or over a limit.
        RequestError => "request_error",
    }
}
