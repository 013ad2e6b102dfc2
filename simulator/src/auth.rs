//! Credentials as the platform checks them: the format of each auth header first
//! (6003 with a 61xx cause), then presence (9106), then whether the credential is
//! accepted (403, code 10000 "Authentication error").
//!
//! The format rules are ours (the platform does not publish them) and are
//! documented in `docs/simulator.md`.

use parking_lot::RwLock;
use std::collections::HashSet;

use axum::http::HeaderMap;

/// The credential a request authenticates with; borrowed from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PresentedCredential<'a> {
    /// `Authorization: Bearer <token>`.
    Token(&'a str),
    /// `X-Auth-Email` plus `X-Auth-Key`; the key identifies the user.
    ApiKey {
        /// The account email.
        email: &'a str,
        /// The Global API Key.
        key: &'a str,
    },
}

/// Why a request's credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthFailure {
    /// 9106: no usable credential.
    Missing,
    /// 6003 / 6111: `Authorization` is not `Bearer <token>`.
    MalformedAuthorization,
    /// 6003 / 6103: `X-Auth-Key` is not a key.
    MalformedKey,
    /// 6003 / 6102: `X-Auth-Email` is not an email address.
    MalformedEmail,
    /// 403 / 10000: well-formed but not accepted.
    Refused,
    /// 403 / 9109: a valid credential without access to the account in the path.
    Forbidden,
}

impl PresentedCredential<'_> {
    /// The string rate limits and refusals are keyed by.
    pub(super) fn key(&self) -> &str {
        match self {
            Self::Token(token) => token,
            Self::ApiKey { key, .. } => key,
        }
    }
}

/// A short tag that identifies a credential (token or API key) without revealing it:
/// the first 16 hex digits of its blake3 hash. Echoed as `context.credential_tag`
/// when the simulator tags answers, so tests can tell whose view an answer is.
pub fn credential_tag(credential: &str) -> String {
    blake3::hash(credential.as_bytes()).to_hex()[..16].to_owned()
}

/// Longest header value considered; longer ones are malformed.
const MAX_CREDENTIAL_LEN: usize = 4096;

/// Reads and format-checks the auth headers.
pub(super) fn credential(headers: &HeaderMap) -> Result<PresentedCredential<'_>, AuthFailure> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap_or("\u{0}"))
    };
    let bearer = header("authorization")
        .map(|value| parse_bearer(value).ok_or(AuthFailure::MalformedAuthorization))
        .transpose()?;
    let key = header("x-auth-key")
        .map(|value| {
            valid_key(value)
                .then_some(value)
                .ok_or(AuthFailure::MalformedKey)
        })
        .transpose()?;
    let email = header("x-auth-email")
        .map(|value| {
            valid_email(value)
                .then_some(value)
                .ok_or(AuthFailure::MalformedEmail)
        })
        .transpose()?;
    match (bearer, email, key) {
        (Some(token), _, _) => Ok(PresentedCredential::Token(token)),
        (None, Some(email), Some(key)) => Ok(PresentedCredential::ApiKey { email, key }),
        _ => Err(AuthFailure::Missing),
    }
}

/// `Bearer <token>` (scheme case-insensitive), the token being visible ASCII.
fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let visible = |b: u8| b.is_ascii_graphic();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= MAX_CREDENTIAL_LEN
        && token.bytes().all(visible);
    well_formed.then_some(token)
}

/// A Global API Key is 37 lowercase hex characters; we accept 1 to 64 hex digits.
fn valid_key(value: &str) -> bool {
    (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `local@domain.tld` in visible ASCII, at most 254 characters.
fn valid_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    value.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && value.bytes().all(|b| b.is_ascii_graphic())
        && !domain.contains('@')
}

/// Credentials the simulator refuses (403); everything well-formed else is accepted.
#[derive(Debug, Default)]
pub(super) struct RefusedCredentials {
    /// Tokens or API keys; read on every request, so a `RwLock` shared by readers.
    refused: RwLock<HashSet<String>>,
}

impl RefusedCredentials {
    /// Refuses these tokens or API keys from now on.
    pub(super) fn new(refused: impl IntoIterator<Item = String>) -> Self {
        Self {
            refused: RwLock::new(refused.into_iter().collect()),
        }
    }

    /// Checks a well-formed credential.
    pub(super) fn admit(&self, credential: &PresentedCredential<'_>) -> Result<(), AuthFailure> {
        let refused = self.refused.read();
        if refused.contains(credential.key()) {
            Err(AuthFailure::Refused)
        } else {
            Ok(())
        }
    }

    /// Adds a refused token or key.
    pub(super) fn refuse(&self, credential: String) {
        self.write().insert(credential);
    }

    /// Accepts every well-formed credential again.
    pub(super) fn clear(&self) {
        self.write().clear();
    }

    /// The refused tokens or keys.
    pub(super) fn list(&self) -> Vec<String> {
        let refused = self.refused.read();
        let mut list: Vec<String> = refused.iter().cloned().collect();
        list.sort();
        list
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, HashSet<String>> {
        self.refused.write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn header_formats_are_checked_before_presence() {
        let cases = [
            (vec![], AuthFailure::Missing),
            (
                vec![("authorization", "Token abc")],
                AuthFailure::MalformedAuthorization,
            ),
            (
                vec![("authorization", "Bearer ")],
                AuthFailure::MalformedAuthorization,
            ),
            (vec![("x-auth-key", "not hex!")], AuthFailure::MalformedKey),
            (
                vec![("x-auth-email", "nobody")],
                AuthFailure::MalformedEmail,
            ),
            (
                vec![("x-auth-email", "a@example.com")],
                AuthFailure::Missing,
            ),
            (
                vec![("x-auth-key", "c2547eb745079dac9320b638f5e225cf483cc")],
                AuthFailure::Missing,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                credential(&headers(&pairs)).err(),
                Some(expected),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn a_bearer_token_or_an_email_and_key_pair_authenticates() {
        let token = headers(&[("authorization", "Bearer abc-123_XYZ")]);
        assert_eq!(
            credential(&token),
            Ok(PresentedCredential::Token("abc-123_XYZ"))
        );
        let pair = headers(&[
            ("x-auth-email", "a@example.com"),
            ("x-auth-key", "c2547eb7"),
        ]);
        assert_eq!(
            credential(&pair),
            Ok(PresentedCredential::ApiKey {
                email: "a@example.com",
                key: "c2547eb7"
            })
        );
    }

    #[test]
    fn refused_credentials_are_refused_until_cleared() {
        let refused = RefusedCredentials::new(["bad".to_owned()]);
        assert_eq!(
            refused.admit(&PresentedCredential::Token("bad")),
            Err(AuthFailure::Refused)
        );
        assert_eq!(refused.admit(&PresentedCredential::Token("good")), Ok(()));
        refused.clear();
        assert_eq!(refused.admit(&PresentedCredential::Token("bad")), Ok(()));
    }
}
