//! Upstream credentials, held as secrets, and the keyed fingerprint that partitions
//! cached data, pollers and budgets by credential without ever storing the secret.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// How the gateway authenticates to Cloudflare: one of the two schemes the
/// registrar operations accept.
#[derive(Clone)]
pub enum CredentialSecret {
    /// `Authorization: Bearer <token>`.
    ApiToken(SecretString),
    /// `X-Auth-Email` + `X-Auth-Key` (a global API key); always sent together.
    GlobalApiKey {
        /// The account's login email (treated as a secret too: it identifies the key).
        email: SecretString,
        /// The global API key.
        key: SecretString,
    },
}

impl CredentialSecret {
    /// Adds this credential's headers to an upstream request.
    /// Every value is marked sensitive: HTTP/2 never indexes it (HPACK) and header
    /// dumps redact it.
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::ApiToken(token) => request.bearer_auth(token.expose_secret()),
            Self::GlobalApiKey { email, key } => {
                let request = sensitive_header(request, "X-Auth-Email", email);
                sensitive_header(request, "X-Auth-Key", key)
            }
        }
    }

    fn scheme(&self) -> &'static str {
        match self {
            Self::ApiToken(_) => "api_token",
            Self::GlobalApiKey { .. } => "global_api_key",
        }
    }
}

/// Adds a header marked sensitive. A value that is not a valid header (refused at
/// configuration and at the HTTP edge already) becomes reqwest's builder error,
/// which does not show the value.
fn sensitive_header(
    request: reqwest::RequestBuilder,
    name: &'static str,
    secret: &SecretString,
) -> reqwest::RequestBuilder {
    match reqwest::header::HeaderValue::from_str(secret.expose_secret()) {
        Ok(mut value) => {
            value.set_sensitive(true);
            request.header(name, value)
        }
        Err(_) => request.header(name, secret.expose_secret()),
    }
}

impl fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialSecret({}, redacted)", self.scheme())
    }
}

/// A secret key for [`Fingerprint`]s, random per process, so a fingerprint seen in a
/// log or a cache key cannot be tested against guessed tokens.
#[derive(Clone)]
pub struct FingerprintKey([u8; 32]);

impl FingerprintKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(redacted)")
    }
}

/// A keyed hash of a credential: equal for equal credentials, reveals nothing of them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 16]);

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl Fingerprint {
    /// The first 8 hex digits: enough to tell a handful of credentials apart in a
    /// metric label or on a dashboard, too few to identify one outside this process.
    pub fn short(&self) -> String {
        self.0[..4]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// A credential's secret together with its fingerprint: what callers hand to the cache and
/// the client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Credential {
    secret: std::sync::Arc<CredentialSecret>,
    fingerprint: Fingerprint,
}

impl Credential {
    /// Fingerprints `secret` under `key`.
    pub fn new(secret: CredentialSecret, key: &FingerprintKey) -> Self {
        let mut hasher = blake3::Hasher::new_keyed(&key.0);
        match &secret {
            CredentialSecret::ApiToken(token) => {
                hasher
                    .update(b"token\0")
                    .update(token.expose_secret().as_bytes());
            }
            CredentialSecret::GlobalApiKey { email, key } => {
                hasher
                    .update(b"key\0")
                    .update(email.expose_secret().as_bytes())
                    .update(b"\0")
                    .update(key.expose_secret().as_bytes());
            }
        }
        let mut fingerprint = [0; 16];
        fingerprint.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        Self {
            secret: std::sync::Arc::new(secret),
            fingerprint: Fingerprint(fingerprint),
        }
    }

    /// The keyed hash that identifies this credential in caches and logs.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub(crate) fn secret(&self) -> &CredentialSecret {
        &self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> CredentialSecret {
        CredentialSecret::ApiToken(SecretString::from(value))
    }

    #[test]
    fn fingerprints_are_stable_per_key_and_distinct_per_credential() {
        let key = FingerprintKey::random();
        let a = Credential::new(token("secret-a"), &key);
        assert_eq!(
            a.fingerprint(),
            Credential::new(token("secret-a"), &key).fingerprint()
        );
        assert_ne!(
            a.fingerprint(),
            Credential::new(token("secret-b"), &key).fingerprint()
        );
        let other_key = FingerprintKey::random();
        assert_ne!(
            a.fingerprint(),
            Credential::new(token("secret-a"), &other_key).fingerprint()
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = FingerprintKey::random();
        let credential = Credential::new(
            CredentialSecret::GlobalApiKey {
                email: SecretString::from("me@example.com"),
                key: SecretString::from("0123456789abcdef"),
            },
            &key,
        );
        let printed = format!("{credential:?} {key:?}");
        assert!(!printed.contains("me@example.com") && !printed.contains("0123456789abcdef"));
    }
}
