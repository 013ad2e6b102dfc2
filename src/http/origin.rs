//! Who may reach the gateway from a browser. A web page on any site can open a
//! websocket to `127.0.0.1` (browsers apply no CORS to websockets) or, through DNS
//! rebinding, make its own host name resolve to it; either way it could read
//! statuses and spend the Cloudflare budget of a gateway its visitor runs. So:
//!
//! - a request carrying `Origin` (every websocket upgrade from a browser, every
//!   cross-site browser request) must come from the gateway's own origin or one of
//!   `--cors-origins`; else 403 `ORIGIN_NOT_ALLOWED`, before any upgrade;
//! - a gateway bound to loopback answers only to loopback host names (`localhost`,
//!   `*.localhost`, `127.0.0.1`, `[::1]`) plus `--allowed-hosts`; else 403
//!   `HOST_NOT_ALLOWED` (what Vite and Jupyter do). Bound beyond loopback, only a
//!   configured `--allowed-hosts` is enforced.
//!
//! Clients that send no `Origin` (curl, Node, server-side code) are not browsers
//! acting for a third-party page, and pass the origin check.
//!
//! Behind a proxy, "the gateway's own origin" is what the browser sees: the proxy
//! passes the browser's `Host` on (nginx `proxy_set_header Host $http_host`, port
//! included), or, where it rewrites `Host`, `--public-url` names the origins browsers
//! use. `X-Forwarded-Host` and `Forwarded: host=` are never believed: configuration
//! says it once, no request can claim it. Every refusal is logged with the `Origin`
//! and `Host` it compared and what was allowed, so an operator sees why.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::Refusal;

/// The origin and host rules, as configured.
#[derive(Clone, Debug)]
pub(super) struct OriginPolicy {
    /// Host names answered (lowercase, without port); `None` answers any host.
    /// Loopback names are always answered (health checks probe them).
    allowed_hosts: Option<Vec<String>>,
    /// Cross-origin browser origins allowed (`--cors-origins`); `*` allows any.
    cors_origins: Vec<String>,
    /// The gateway's own origins behind a proxy that rewrites `Host` (`--public-url`).
    public_origins: Vec<String>,
}

impl OriginPolicy {
    /// The policy of a gateway listening on `listen`.
    pub(super) fn new(
        listen: SocketAddr,
        allowed_hosts: &[String],
        cors_origins: &[String],
        public_origins: &[String],
    ) -> Self {
        let any_host = allowed_hosts.iter().any(|host| host == "*");
        let public_hosts = public_origins
            .iter()
            .filter_map(|origin| origin.split_once("://"))
            .map(|(_, authority)| host_name(authority));
        let listed: Vec<String> = allowed_hosts
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .chain(public_hosts)
            .collect();
        // Public URLs add names to a list in force; they never start one (their proxy
        // may send any `Host`).
        let unlisted = allowed_hosts.is_empty() && !listen.ip().is_loopback();
        Self {
            allowed_hosts: (!any_host && !unlisted).then_some(listed),
            cors_origins: cors_origins.to_vec(),
            public_origins: public_origins.to_vec(),
        }
    }

    /// Why a request may not be served, if it may not.
    fn refusal(&self, headers: &HeaderMap, uri: &Uri) -> Option<(Refusal, &'static str)> {
        let host = request_host(headers, uri);
        if let Some(allowed) = &self.allowed_hosts {
            let name = host.map(host_name).unwrap_or_default();
            if !is_loopback_name(&name) && !allowed.contains(&name) {
                let message = "this gateway does not answer to that host name (--allowed-hosts)";
                return Some((Refusal::HostNotAllowed, message));
            }
        }
        let origin = headers.get(header::ORIGIN)?;
        let origin = origin.to_str().unwrap_or_default();
        let same_origin = origin
            .split_once("://")
            .zip(host)
            .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host));
        let listed = self
            .cors_origins
            .iter()
            .chain(&self.public_origins)
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin));
        if same_origin || listed {
            return None;
        }
        let message = "requests from this origin are not allowed (--cors-origins)";
        Some((Refusal::OriginNotAllowed, message))
    }

    /// The host names answered, for a log line (`None`: any).
    fn allowed_hosts_shown(&self) -> Option<Vec<&str>> {
        let hosts = self.allowed_hosts.as_ref()?;
        Some(
            ["(loopback names)"]
                .into_iter()
                .chain(hosts.iter().map(String::as_str))
                .collect(),
        )
    }

    /// The origins allowed, for a log line.
    fn allowed_origins_shown(&self) -> Vec<&str> {
        let configured = self.public_origins.iter().chain(&self.cors_origins);
        ["(the Host's own)"]
            .into_iter()
            .chain(configured.map(String::as_str))
            .collect()
    }
}

/// The middleware: refuses what [`OriginPolicy`] does not allow, before routing.
pub(super) async fn guard(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    match policy.refusal(request.headers(), request.uri()) {
        None => next.run(request).await,
        Some((refusal, message)) => {
            let headers = request.headers();
            let text = |name| {
                headers
                    .get(name)
                    .and_then(|value: &HeaderValue| value.to_str().ok())
            };
            tracing::info!(
                code = refusal.code(),
                origin = text(header::ORIGIN),
                host = request_host(headers, request.uri()),
                forwarded_host = text(X_FORWARDED_HOST),
                allowed_hosts = ?policy.allowed_hosts_shown(),
                allowed_origins = ?policy.allowed_origins_shown(),
                "request refused by the origin policy"
            );
            refusal.rewrite(StatusCode::FORBIDDEN.into_response(), message)
        }
    }
}

/// Only logged, never believed (see the module's documentation).
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The host the request names: `Host`, else the URI's authority (HTTP/2).
fn request_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()))
}

/// A `Host` value's name, lowercase, without the port (IPv6 keeps its brackets).
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => host[..=end].to_owned(),
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
        _ => host,
    }
}

fn is_loopback_name(name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name.ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &OriginPolicy, host: &str, origin: Option<&str>) -> Option<&'static str> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        let uri = Uri::from_static("/graphql");
        policy
            .refusal(&headers, &uri)
            .map(|(refusal, _)| refusal.code())
    }

    #[test]
    fn a_loopback_gateway_answers_loopback_names_and_listed_hosts_only() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let policy = OriginPolicy::new(listen, &[], &[], &[]);
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:1",
            "[::1]:8080",
            "127.0.0.2",
        ] {
            assert_eq!(refused(&policy, host, None), None, "{host}");
        }
        assert_eq!(
            refused(&policy, "attacker.example", None),
            Some("HOST_NOT_ALLOWED")
        );
        assert_eq!(
            refused(&policy, "127.0.0.1.attacker.example:8080", None),
            Some("HOST_NOT_ALLOWED")
        );
        let listed = OriginPolicy::new(listen, &["gw.example".into()], &[], &[]);
        assert_eq!(refused(&listed, "gw.example:8080", None), None);
        let any = OriginPolicy::new(listen, &["*".into()], &[], &[]);
        assert_eq!(refused(&any, "attacker.example", None), None);
        let public = OriginPolicy::new("0.0.0.0:8080".parse().unwrap(), &[], &[], &[]);
        assert_eq!(refused(&public, "gw.example", None), None);
    }

    #[test]
    fn browsers_may_come_from_the_gateways_own_origin_or_a_listed_one() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let policy = OriginPolicy::new(listen, &[], &["https://app.example".into()], &[]);
        let host = "127.0.0.1:8080";
        assert_eq!(refused(&policy, host, Some("http://127.0.0.1:8080")), None);
        assert_eq!(refused(&policy, host, Some("https://app.example")), None);
        assert_eq!(
            refused(&policy, host, Some("https://evil.example")),
            Some("ORIGIN_NOT_ALLOWED")
        );
        assert_eq!(
            refused(&policy, host, Some("http://127.0.0.1:9999")),
            Some("ORIGIN_NOT_ALLOWED")
        );
        assert_eq!(
            refused(&policy, host, Some("null")),
            Some("ORIGIN_NOT_ALLOWED")
        );
    }
}
