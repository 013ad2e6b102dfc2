//! The Redis URL: a secret, since `redis://user:password@host` carries a password.
//! It is parsed by the Redis client only; logs see [`RedisUrl::redacted`].

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS.
#[derive(Clone)]
pub struct RedisUrl(SecretString);

impl RedisUrl {
    /// Wraps a URL as given; checked by [`RedisUrl::check`] at start-up.
    pub fn new(url: &str) -> Self {
        Self(SecretString::from(url))
    }

    /// Whether the Redis client accepts the URL; the reason says what is wrong in
    /// plain words and never shows the URL.
    pub fn check(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(self.expose()).map_err(|_| "it is not a URL".to_owned())?;
        match url.scheme() {
            "redis" | "rediss" | "redis+unix" | "unix" => {}
            scheme => return Err(format!("its scheme is {scheme}:, not redis: or rediss:")),
        }
        if url.scheme().starts_with("redis") && !url.scheme().ends_with("unix") {
            if url.host_str().is_none_or(str::is_empty) {
                return Err("it names no host".to_owned());
            }
            let db = url.path().trim_start_matches('/');
            if !db.is_empty() && db.parse::<u32>().is_err() {
                return Err("the database after the host is not a number".to_owned());
            }
        }
        redis::Client::open(self.expose())
            .map(drop)
            .map_err(|_| "the Redis client cannot use it".to_owned())
    }

    /// Whether the URL asks for TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.expose().starts_with("rediss://")
    }

    pub(super) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Scheme, host and port only: what a log line may show.
    pub fn redacted(&self) -> String {
        match reqwest::Url::parse(self.expose()) {
            Ok(url) => {
                let host = url.host_str().unwrap_or("");
                match url.port() {
                    Some(port) => format!("{}://{host}:{port}", url.scheme()),
                    None => format!("{}://{host}", url.scheme()),
                }
            }
            Err(_) => "(unparsable)".to_owned(),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({}, redacted)", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let url = RedisUrl::new("rediss://user:hunter2@cache.internal:6380/2");
        let shown = format!("{url:?} {}", url.redacted());
        assert!(
            !shown.contains("hunter2") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.contains("rediss://cache.internal:6380"), "{shown}");
        assert!(url.check().is_ok());
        let refused = |url: &str| RedisUrl::new(url).check().unwrap_err();
        assert_eq!(
            refused("http://hunter2@x"),
            "its scheme is http:, not redis: or rediss:"
        );
        assert_eq!(
            refused("cache.internal:6379"),
            "its scheme is cache.internal:, not redis: or rediss:"
        );
        assert_eq!(refused("hunter2"), "it is not a URL");
        assert_eq!(
            refused("redis://:hunter2@cache/zero"),
            "the database after the host is not a number"
        );
    }
}
