//! Who a request comes from, for fair shares: the gateway access key it presented
//! when access keys are on (one key, one client, wherever it connects from), else
//! its address. The address is the TCP peer's, unless the peer is one of
//! `--trusted-proxies`: then it is read from the one forwarding header those
//! proxies write (`--forwarded-header`), by the HTTP layer.
//!
//! IPv6 addresses count per /64, the block one host (or one subscriber) is given,
//! so an attacker cannot become millions of clients by rotating its interface id.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use clap::ValueEnum;
use ipnet::IpNet;

use crate::access::AccessKeyId;

/// One client, as fair shares count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// Every caller presenting this gateway access key.
    AccessKey(AccessKeyId),
    /// An address (IPv6: its /64).
    Address(IpAddr),
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccessKey(key) => write!(f, "access key #{}", key.position()),
            Self::Address(address) => write!(f, "{address}"),
        }
    }
}

impl ClientId {
    /// The client a caller is: its access key when it presented one, else `address`.
    pub fn of(access_key: Option<AccessKeyId>, address: ClientAddress) -> Self {
        match access_key {
            Some(key) => Self::AccessKey(key),
            None => Self::Address(address.0),
        }
    }
}

/// A caller's address, as fair shares see it (proxies resolved, IPv6 as its /64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    /// `address` as a client: IPv4 as is, an IPv4-mapped IPv6 address as its IPv4
    /// one, other IPv6 addresses as their /64.
    pub fn of(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

/// The address as counted (IPv6: its /64's first address), for the access key
/// throttle, which counts wrong keys per client address.
impl From<ClientAddress> for IpAddr {
    fn from(address: ClientAddress) -> Self {
        address.0
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The one forwarding header trusted proxies write the client's address in; the
/// other is ignored, so a client cannot pick its identity by sending it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, ...`: what nginx, AWS ALB, Traefik and
    /// Cloudflare append.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The proxies whose forwarding header names the client (`--trusted-proxies`),
/// and which header that is (`--forwarded-header`).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Proxies in `networks` (CIDRs; a bare address is a /32 or /128), writing `header`.
    pub fn new(networks: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { networks, header }
    }

    /// Whether `address` is one of the proxies.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks
            .iter()
            .any(|network| network.contains(&address))
    }

    /// The header the proxies write the client's address in.
    pub fn header(&self) -> ForwardedHeader {
        self.header
    }
}
