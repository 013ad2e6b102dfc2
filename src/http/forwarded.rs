//! The client's address behind trusted proxies: read from the one forwarding header
//! they write (`--forwarded-header`: `X-Forwarded-For`, or RFC 7239 `Forwarded`),
//! never from the other, so a client cannot choose its identity by sending the
//! header the proxies leave alone. Only the hops our own proxies appended can be
//! believed (a client can write anything to the left), so the client is the
//! rightmost hop that is not itself a trusted proxy.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;

use crate::fair_share::{ClientAddress, ForwardedHeader, TrustedProxies};

/// Most forwarded hops read from a request's headers (bounded work per request).
const MAX_HOPS: usize = 32;

/// The address of the client behind `peer` (the TCP peer), given the request's headers.
pub(super) fn client_address(
    proxies: &TrustedProxies,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> ClientAddress {
    let peer = peer.ip().to_canonical();
    if !proxies.trusts(peer) {
        return ClientAddress::of(peer);
    }
    let hops = match proxies.header() {
        ForwardedHeader::Forwarded => forwarded_hops(headers),
        ForwardedHeader::XForwardedFor => x_forwarded_for_hops(headers),
    };
    // From the right: each hop appended by a proxy we trust is believed, up to the
    // first that is not a trusted proxy. An unreadable hop (`unknown`, an
    // obfuscated name) stops the walk at the last proxy that spoke for it.
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(address) => {
                client = address.to_canonical();
                if !proxies.trusts(client) {
                    break;
                }
            }
            None => break,
        }
    }
    ClientAddress::of(client)
}

/// `X-Forwarded-For: client, proxy1, proxy2` (every header line, in order).
fn x_forwarded_for_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    list_items(headers, "x-forwarded-for")
        .into_iter()
        .map(|item| parse_node(item.trim()))
        .collect()
}

/// RFC 7239 `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`:
/// the `for` parameter of each element, in order.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    list_items(headers, "forwarded")
        .into_iter()
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(value.trim().trim_matches('"')))
            })?
        })
        .collect()
}

/// The comma-separated items of every `name` header line, at most [`MAX_HOPS`]
/// (the rightmost ones: those our proxies appended).
fn list_items<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    let mut items: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let excess = items.len().saturating_sub(MAX_HOPS);
    items.drain(..excess);
    items
}

/// An address with or without a port: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`; anything else (`unknown`, `_hidden`) is unreadable.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(address) = node.parse::<SocketAddr>() {
        return Some(address.ip());
    }
    let bracketed = node.strip_prefix('[')?.split(']').next()?;
    bracketed.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(networks: &[&str], header: ForwardedHeader) -> TrustedProxies {
        let networks = networks.iter().map(|n| n.parse().unwrap()).collect();
        TrustedProxies::new(networks, header)
    }

    fn xff(networks: &[&str]) -> TrustedProxies {
        proxies(networks, ForwardedHeader::XForwardedFor)
    }

    fn address_of(trusted: &TrustedProxies, peer: &str, headers: &[(&str, &str)]) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, value.parse().unwrap());
        }
        let peer: SocketAddr = peer.parse().unwrap();
        client_address(trusted, peer, &map).to_string()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let spoofed = [("x-forwarded-for", "198.51.100.7")];
        assert_eq!(
            address_of(&none, "203.0.113.9:5000", &spoofed),
            "203.0.113.9"
        );
        let trusted = xff(&["10.0.0.0/8"]);
        assert_eq!(
            address_of(&trusted, "203.0.113.9:5000", &spoofed),
            "203.0.113.9",
            "a peer that is not a trusted proxy is the client, whatever it forwards"
        );
        assert_eq!(
            address_of(&trusted, "10.1.2.3:5000", &spoofed),
            "198.51.100.7"
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = xff(&["10.0.0.0/8", "192.0.2.1/32"]);
        // The client wrote the first entry itself; our proxies appended the rest.
        let chain = [(
            "x-forwarded-for",
            "1.1.1.1, 198.51.100.7, 192.0.2.1, 10.0.0.5",
        )];
        assert_eq!(address_of(&trusted, "10.9.9.9:1", &chain), "198.51.100.7");
        let split = [
            ("x-forwarded-for", "1.1.1.1, 198.51.100.7"),
            ("x-forwarded-for", "10.0.0.5"),
        ];
        assert_eq!(address_of(&trusted, "10.9.9.9:1", &split), "198.51.100.7");
        let all_trusted = [("x-forwarded-for", "10.0.0.7, 10.0.0.5")];
        assert_eq!(address_of(&trusted, "10.9.9.9:1", &all_trusted), "10.0.0.7");
        let unknown = [("x-forwarded-for", "198.51.100.7, unknown")];
        assert_eq!(address_of(&trusted, "10.9.9.9:1", &unknown), "10.9.9.9");
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let headers = [
            ("x-forwarded-for", "198.51.100.1"),
            (
                "forwarded",
                "for=198.51.100.2;proto=https, for=\"[2001:db8:1:2::9]:4711\";by=10.0.0.1",
            ),
        ];
        let x_forwarded_for = xff(&["10.0.0.0/8"]);
        assert_eq!(
            address_of(&x_forwarded_for, "10.0.0.1:1", &headers),
            "198.51.100.1",
            "a client-sent Forwarded is ignored where proxies write X-Forwarded-For"
        );
        let forwarded = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        assert_eq!(
            address_of(&forwarded, "10.0.0.1:1", &headers),
            "2001:db8:1:2::"
        );
        let with_port = [("forwarded", "for=\"198.51.100.3:80\"")];
        assert_eq!(
            address_of(&forwarded, "10.0.0.1:1", &with_port),
            "198.51.100.3"
        );
        let only_xff = [("x-forwarded-for", "198.51.100.1")];
        assert_eq!(
            address_of(&forwarded, "10.0.0.1:1", &only_xff),
            "10.0.0.1",
            "without the configured header, the proxy itself is the client"
        );
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let none = TrustedProxies::default();
        let a = address_of(&none, "[2001:db8:0:1::1]:1", &[]);
        let b = address_of(&none, "[2001:db8:0:1:ffff::2]:1", &[]);
        assert_eq!(
            (a.as_str(), b.as_str()),
            ("2001:db8:0:1::", "2001:db8:0:1::")
        );
        assert_eq!(address_of(&none, "[::ffff:192.0.2.4]:1", &[]), "192.0.2.4");
    }

    #[test]
    fn only_the_last_hops_are_read() {
        let trusted = xff(&["10.0.0.0/8"]);
        let long = vec!["10.0.0.1"; 10_000].join(",");
        let headers = [("x-forwarded-for", long.as_str())];
        assert_eq!(address_of(&trusted, "10.0.0.2:1", &headers), "10.0.0.1");
    }
}
