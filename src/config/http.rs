//! The HTTP server's section: request limits, cross-origin policy, and whether
//! the explorer is served.

use std::time::Duration;

use clap::Args;

use crate::flags::duration;
use crate::http::HttpSettings;

/// The HTTP server's limits and cross-origin policy.
#[derive(Debug, Args)]
pub struct HttpConfig {
    /// Limit on handling one HTTP request (answers 408 past it).
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes (answers 413 past it).
    #[arg(long, env = "GATEWAY_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    /// Origins allowed to call the API from a browser (comma-separated; `*` for any).
    #[arg(long, env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Serve no pages for people: neither the GraphiQL explorer at `/` nor the live
    /// status pages at `/status/{domain}` (an API-only deployment).
    #[arg(long, env = "GATEWAY_DISABLE_EXPLORER")]
    pub disable_explorer: bool,
}

impl HttpConfig {
    /// The server's settings.
    pub fn settings(&self) -> HttpSettings {
        HttpSettings {
            request_timeout: self.request_timeout,
            body_limit: self.body_limit,
            cors_origins: self.cors_origins.clone(),
        }
    }
}
