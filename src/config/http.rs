//! The HTTP server's section: request limits, cross-origin and host policy,
//! connection limits, the shutdown timers, and whether the explorer is served.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::flags::{duration, public_origin};
use crate::http::{ConnectionSettings, HttpSettings};

/// The HTTP server's limits and cross-origin policy.
#[derive(Debug, Args)]
pub struct HttpConfig {
    /// Limit on handling one HTTP request (answers 408 past it).
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes (answers 413 past it).
    #[arg(long, env = "GATEWAY_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    /// Origins allowed to call the API from a browser (comma-separated; `*` for any). Browser requests and websocket upgrades from any other origin than the gateway's own are refused 403 ORIGIN_NOT_ALLOWED.
    #[arg(long, env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Host names the gateway answers to besides loopback ones (comma-separated; `*` for any). Bound to loopback, other names are refused 403 HOST_NOT_ALLOWED (DNS rebinding); bound beyond loopback, only a set list is enforced.
    #[arg(long, env = "GATEWAY_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// URLs browsers reach the gateway at through a proxy that rewrites `Host` (comma-separated, e.g. `https://gateway.example.com`): their origins count as the gateway's own, and their host names are answered. Not needed behind a proxy that passes `Host` on (nginx `proxy_set_header Host $http_host`).
    #[arg(long, env = "GATEWAY_PUBLIC_URL", value_delimiter = ',', value_parser = public_origin)]
    pub public_url: Vec<String>,
    /// Time a client has to send a request's headers before its connection is closed (slow-header clients).
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_read_timeout: Duration,
    /// A connection that moves no byte either way for this long is closed (websockets have their own pings).
    #[arg(long, env = "GATEWAY_IDLE_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// Most connections (websockets included) open at once; one more is answered 503 TOO_MANY_CONNECTIONS and closed. Keep it under the process's file descriptor limit.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// Also serve `/healthz` and `/readyz` on this address, a listener of their own that no client shares (point orchestrators' probes here); they stay on the main listener too.
    #[arg(long, env = "GATEWAY_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// On SIGTERM, how long readiness answers 503 (so load balancers move away) before the listener closes.
    #[arg(long, env = "GATEWAY_SHUTDOWN_DRAIN", default_value = "3s", value_parser = duration)]
    pub shutdown_drain: Duration,
    /// Once the listener is closed, how long open requests and connections get to finish before they are dropped.
    #[arg(long, env = "GATEWAY_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub shutdown_timeout: Duration,
    /// Serve no pages for people: neither the GraphiQL explorer at `/` nor the live
    /// status pages at `/status/{domain}` (an API-only deployment).
    #[arg(long, env = "GATEWAY_DISABLE_EXPLORER")]
    pub disable_explorer: bool,
}

impl HttpConfig {
    /// The server's settings, for a gateway listening on `listen`.
    pub fn settings(&self, listen: SocketAddr) -> HttpSettings {
        HttpSettings {
            request_timeout: self.request_timeout,
            body_limit: self.body_limit,
            cors_origins: self.cors_origins.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            public_origins: self.public_url.clone(),
            listen,
        }
    }

    /// The listener's connection limits and shutdown timers.
    pub fn connection_settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            shutdown_drain: self.shutdown_drain,
            shutdown_timeout: self.shutdown_timeout,
        }
    }
}
