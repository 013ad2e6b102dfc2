//! Who is on the other end of a request, for fair shares: the TCP peer the
//! listener recorded, and from it (through `--trusted-proxies` and their forwarding
//! header, see [`super::forwarded`]) and the access key
//! the caller was admitted with, its [`ClientId`].

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use crate::access::AccessKeyId;
use crate::fair_share::{ClientAddress, ClientId, FairShare};

/// The TCP peer of a request, as [`super::serve`] records it; absent only when the
/// router is served some other way.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self::of(&parts.extensions))
    }
}

impl Peer {
    /// The peer recorded in a request's extensions.
    pub(super) fn of(extensions: &Extensions) -> Self {
        let connected = extensions.get::<ConnectInfo<SocketAddr>>();
        Self(connected.map(|ConnectInfo(address)| *address))
    }

    /// The client's address: the peer's, or the one trusted proxies forwarded.
    pub(super) fn address(self, shares: &FairShare, headers: &HeaderMap) -> Option<ClientAddress> {
        let peer = self.0?;
        Some(super::forwarded::client_address(
            shares.trusted_proxies(),
            peer,
            headers,
        ))
    }
}

/// The client a caller is: its access key when admitted with one, else its address.
pub(super) fn client_id(
    access_key: Option<AccessKeyId>,
    address: Option<ClientAddress>,
) -> Option<ClientId> {
    match (access_key, address) {
        (Some(key), _) => Some(ClientId::AccessKey(key)),
        (None, Some(address)) => Some(ClientId::of(None, address)),
        (None, None) => None,
    }
}
