//! Who may call the gateway, and whose Cloudflare credential a request uses.
//!
//! Three documented modes ([`CredentialMode`]): the gateway's own credential (the
//! default), the caller's own (`Authorization: Bearer` or `X-Auth-Email` +
//! `X-Auth-Key`, passed through), or the caller's when presented and the gateway's
//! otherwise. Independently, optional gateway access keys: callers present one in
//! `X-Gateway-Key` (or, in server mode only, as `Authorization: Bearer`, since that
//! header is not a Cloudflare credential there).
//!
//! HTTP headers and a websocket `connection_init` payload are read into the same
//! [`Presented`] values and admitted by the same [`AccessPolicy::admit`], which also
//! throttles a client address that keeps presenting wrong access keys
//! ([`MAX_WRONG_KEYS`] within [`WRONG_KEY_WINDOW`]: see `throttle.rs` for why the
//! right key is refused too meanwhile). Secrets are held as [`SecretString`]; access keys only as hashes.
//! No error, log line or `Debug` output here contains a presented value.

mod throttle;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use clap::ValueEnum;
use secrecy::{ExposeSecret, SecretString};

use crate::credential::{Credential, CredentialSecret, FingerprintKey};
use throttle::KeyThrottle;
pub use throttle::{MAX_WRONG_KEYS, WINDOW as WRONG_KEY_WINDOW};

/// Header carrying a gateway access key.
pub const ACCESS_KEY_HEADER: &str = "x-gateway-key";
/// Longest credential or key value accepted.
const MAX_SECRET_LEN: usize = 4096;

/// Whose Cloudflare credential upstream calls use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CredentialMode {
    /// The gateway's own (CLOUDFLARE_API_TOKEN, or CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY);
    /// callers' Cloudflare headers are ignored.
    Server,
    /// The caller's own, passed through; a request without one is refused (UNAUTHENTICATED).
    PassThrough,
    /// The caller's own when presented, else the gateway's.
    PassThroughOrServer,
}

/// Which configured access key a caller presented: its position in the list, so
/// fair shares can count every caller of one key as one client without holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccessKeyId(u16);

impl AccessKeyId {
    /// The key's position in `--access-key` / `GATEWAY_ACCESS_KEYS`, from 1.
    pub fn position(self) -> u32 {
        u32::from(self.0) + 1
    }
}

/// A caller the policy let in.
#[derive(Clone, Debug, Default)]
pub struct AdmittedCaller {
    /// The caller's own Cloudflare credential, when the mode uses one and it was presented.
    pub credential: Option<Credential>,
    /// The access key it presented, when access keys are configured.
    pub access_key: Option<AccessKeyId>,
}

/// Why a caller was not admitted. Messages name headers, never their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Access keys are configured and none was presented.
    #[error("this gateway requires an access key: send it in the X-Gateway-Key header{}", if *.bearer_allowed { " (or as Authorization: Bearer)" } else { "" })]
    MissingAccessKey {
        /// Whether `Authorization: Bearer` is accepted too (server mode).
        bearer_allowed: bool,
    },
    /// The access key presented is not one of the configured keys.
    #[error("the gateway access key presented is not valid")]
    WrongAccessKey,
    /// This client presented too many wrong access keys lately: every key it
    /// presents is refused (unchecked) until `retry_after` has passed.
    #[error("too many wrong gateway access keys from this client: every key it presents is refused for {}s", retry_after_seconds(*.retry_after))]
    Throttled {
        /// What is left of the client's window.
        retry_after: Duration,
    },
    /// A presented value is not well-formed (the name of the header or field).
    #[error(
        "the {0} credential is malformed: Authorization must be `Bearer <token>`, and every credential visible ASCII of at most 4096 characters"
    )]
    Malformed(&'static str),
    /// Half of a global API key.
    #[error("X-Auth-Email and X-Auth-Key must be sent together")]
    IncompleteApiKey,
    /// The mode needs the caller's own credential and none was presented.
    #[error(
        "this gateway uses the caller's own Cloudflare credential: send Authorization: Bearer <API token>, or X-Auth-Email and X-Auth-Key"
    )]
    NoCredential,
}

impl AccessError {
    /// The stable `extensions.code`: `ACCESS_DENIED` for gateway access keys,
    /// `UNAUTHENTICATED` for Cloudflare credentials.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAccessKey { .. } | Self::WrongAccessKey => "ACCESS_DENIED",
            Self::Throttled { .. } => ACCESS_KEY_THROTTLED,
            Self::Malformed(_) | Self::IncompleteApiKey | Self::NoCredential => "UNAUTHENTICATED",
        }
    }

    /// For [`AccessError::Throttled`], the whole seconds to wait (at least 1), as
    /// `Retry-After` and `extensions.retryAfterSeconds` carry them.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::Throttled { retry_after } => Some(retry_after_seconds(*retry_after)),
            _ => None,
        }
    }
}

/// The `extensions.code` of [`AccessError::Throttled`].
pub const ACCESS_KEY_THROTTLED: &str = "ACCESS_KEY_THROTTLED";

fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The auth values a caller presented, from HTTP headers or a `connection_init` payload.
#[derive(Default)]
pub struct Presented {
    authorization: Option<SecretString>,
    email: Option<SecretString>,
    key: Option<SecretString>,
    access_key: Option<SecretString>,
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("authorization", &self.authorization.is_some())
            .field("email", &self.email.is_some())
            .field("key", &self.key.is_some())
            .field("access_key", &self.access_key.is_some())
            .finish()
    }
}

/// Whether the caller's Cloudflare credential fields (`Authorization`,
/// `X-Auth-Email`, `X-Auth-Key`) matter. In server mode they are documented as
/// ignored, so one the gateway could not use (a 5,000-character proxy JWT, a
/// non-ASCII key) is dropped rather than refused; `Authorization` then only
/// counts as an access key when it is a well-formed bearer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialFields {
    /// Read, and refused when malformed.
    Used,
    /// Read when well-formed, dropped otherwise.
    Ignored,
}

impl Presented {
    /// Reads `Authorization`, `X-Auth-Email`, `X-Auth-Key` and `X-Gateway-Key`.
    pub fn from_headers(
        headers: &HeaderMap,
        fields: CredentialFields,
    ) -> Result<Self, AccessError> {
        Self::read(fields, |name| match headers.get(name) {
            None => Ok(None),
            Some(value) => value.to_str().map(Some).map_err(|_| ()),
        })
    }

    /// Reads the same four names (case-insensitively) from a websocket
    /// `connection_init` payload such as `{"Authorization": "Bearer ..."}`; a missing
    /// or `null` payload presents nothing.
    pub fn from_init_payload(
        payload: &serde_json::Value,
        fields: CredentialFields,
    ) -> Result<Self, AccessError> {
        let object = match payload {
            serde_json::Value::Null => return Ok(Self::default()),
            serde_json::Value::Object(object) => object,
            _ => return Err(AccessError::Malformed("connection_init payload")),
        };
        Self::read(fields, |name| {
            let value = object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value);
            match value {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(text)) => Ok(Some(text.as_str())),
                Some(_) => Err(()),
            }
        })
    }

    fn read<'a>(
        fields: CredentialFields,
        mut get: impl FnMut(&str) -> Result<Option<&'a str>, ()>,
    ) -> Result<Self, AccessError> {
        let mut field = |name: &'static str, label: &'static str| {
            let value = get(name).map_err(|()| AccessError::Malformed(label))?;
            value
                .map(|value| well_formed(value).ok_or(AccessError::Malformed(label)))
                .transpose()
        };
        let mut credential = |name: &'static str, label: &'static str| {
            let read = field(name, label);
            match fields {
                CredentialFields::Used => read,
                CredentialFields::Ignored => Ok(read.unwrap_or(None)),
            }
        };
        let (authorization, email, key) = (
            credential("authorization", "Authorization")?,
            credential("x-auth-email", "X-Auth-Email")?,
            credential("x-auth-key", "X-Auth-Key")?,
        );
        Ok(Self {
            authorization,
            email,
            key,
            access_key: field(ACCESS_KEY_HEADER, "X-Gateway-Key")?,
        })
    }

    /// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
    fn bearer(&self) -> Result<Option<SecretString>, AccessError> {
        let Some(authorization) = &self.authorization else {
            return Ok(None);
        };
        match authorization.expose_secret().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
                Ok(Some(SecretString::from(token)))
            }
            _ => Err(AccessError::Malformed("Authorization")),
        }
    }
}

/// Visible ASCII (spaces allowed inside, for `Bearer <token>`), 1 to 4096 bytes.
fn well_formed(value: &str) -> Option<SecretString> {
    let value = value.trim();
    let visible = value
        .bytes()
        .all(|byte| byte == b' ' || byte.is_ascii_graphic());
    (visible && !value.is_empty() && value.len() <= MAX_SECRET_LEN)
        .then(|| SecretString::from(value))
}

/// The gateway's access rules; cheap to clone.
#[derive(Clone)]
pub struct AccessPolicy {
    inner: Arc<AccessPolicyState>,
}

struct AccessPolicyState {
    mode: CredentialMode,
    /// The gateway's own credential; `None` only in the pass-through modes.
    server: Option<Credential>,
    /// blake3 hashes of the access keys: compared in constant time, never stored in clear.
    access_keys: Vec<blake3::Hash>,
    /// Fingerprints callers' credentials under the same key as the server's.
    fingerprint_key: FingerprintKey,
    /// Wrong access keys per client address.
    throttle: KeyThrottle,
}

impl fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessPolicy")
            .field("mode", &self.inner.mode)
            .field("server_credential", &self.inner.server.is_some())
            .field("access_keys", &self.inner.access_keys.len())
            .finish()
    }
}

impl AccessPolicy {
    /// The rules for `mode`, with `server` as the gateway's credential and callers
    /// required to present one of `access_keys` (none required when empty).
    pub fn new(
        mode: CredentialMode,
        server: Option<Credential>,
        access_keys: &[SecretString],
        fingerprint_key: FingerprintKey,
    ) -> Self {
        let access_keys = access_keys
            .iter()
            .map(|key| blake3::hash(key.expose_secret().as_bytes()))
            .collect();
        Self {
            inner: Arc::new(AccessPolicyState {
                mode,
                server,
                access_keys,
                fingerprint_key,
                throttle: KeyThrottle::new(),
            }),
        }
    }

    /// Checks the access key (when keys are configured) and returns which one it was
    /// and the caller's own Cloudflare credential when the mode uses one and it was
    /// presented. `from` is the client's address as fair shares count it (IPv6 per
    /// /64, behind trusted proxies the forwarded client): one that presented
    /// [`MAX_WRONG_KEYS`] wrong keys is refused [`AccessError::Throttled`] whatever
    /// it presents, until its window passes; without an address nothing is throttled.
    pub fn admit(
        &self,
        presented: &Presented,
        from: Option<IpAddr>,
    ) -> Result<AdmittedCaller, AccessError> {
        let access_key = self.throttled_access_key(presented, from)?;
        let credential = self.callers_credential(presented)?;
        Ok(AdmittedCaller {
            credential,
            access_key,
        })
    }

    fn callers_credential(&self, presented: &Presented) -> Result<Option<Credential>, AccessError> {
        if self.inner.mode == CredentialMode::Server {
            return Ok(None);
        }
        let credentials = match (presented.bearer()?, &presented.email, &presented.key) {
            (Some(token), _, _) => CredentialSecret::ApiToken(token),
            (None, Some(email), Some(key)) => CredentialSecret::GlobalApiKey {
                email: email.clone(),
                key: key.clone(),
            },
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(AccessError::IncompleteApiKey);
            }
            (None, None, None) => return Ok(None),
        };
        Ok(Some(Credential::new(
            credentials,
            &self.inner.fingerprint_key,
        )))
    }

    /// [`AccessPolicy::admit`] for an HTTP request's headers.
    pub fn admit_headers(
        &self,
        headers: &HeaderMap,
        from: Option<IpAddr>,
    ) -> Result<AdmittedCaller, AccessError> {
        let presented = Presented::from_headers(headers, self.credential_fields())?;
        self.admit(&presented, from)
    }

    /// [`AccessPolicy::admit`] for a websocket `connection_init` payload.
    pub fn admit_init_payload(
        &self,
        payload: &serde_json::Value,
        from: Option<IpAddr>,
    ) -> Result<AdmittedCaller, AccessError> {
        let presented = Presented::from_init_payload(payload, self.credential_fields())?;
        self.admit(&presented, from)
    }

    /// [`AccessPolicy::check_access_key`] behind the throttle: a throttled address
    /// is refused before its key is compared, and a wrong key counts against it.
    fn throttled_access_key(
        &self,
        presented: &Presented,
        from: Option<IpAddr>,
    ) -> Result<Option<AccessKeyId>, AccessError> {
        let throttle = &self.inner.throttle;
        let now = Instant::now();
        if let Some(address) = from.filter(|_| !self.inner.access_keys.is_empty()) {
            throttle
                .check(address, now)
                .map_err(|retry_after| AccessError::Throttled { retry_after })?;
        }
        let checked = self.check_access_key(presented);
        if let (Err(AccessError::WrongAccessKey), Some(address)) = (&checked, from) {
            throttle.wrong_key(address, now);
        }
        checked
    }

    /// Server mode never relays a caller's credential, so it ignores malformed ones.
    fn credential_fields(&self) -> CredentialFields {
        match self.inner.mode {
            CredentialMode::Server => CredentialFields::Ignored,
            CredentialMode::PassThrough | CredentialMode::PassThroughOrServer => {
                CredentialFields::Used
            }
        }
    }

    /// The credential an upstream call uses: the caller's when admitted with one,
    /// else the gateway's when the mode allows it.
    pub fn credential_for<'a>(
        &'a self,
        caller: Option<&'a Credential>,
    ) -> Result<&'a Credential, AccessError> {
        match (self.inner.mode, caller) {
            (CredentialMode::Server, _) | (_, None) => {
                let server = (self.inner.mode != CredentialMode::PassThrough)
                    .then_some(self.inner.server.as_ref())
                    .flatten();
                server.ok_or(AccessError::NoCredential)
            }
            (_, Some(caller)) => Ok(caller),
        }
    }

    /// The configured key `presented` carries; `None` when no keys are configured.
    fn check_access_key(&self, presented: &Presented) -> Result<Option<AccessKeyId>, AccessError> {
        if self.inner.access_keys.is_empty() {
            return Ok(None);
        }
        let bearer_allowed = self.inner.mode == CredentialMode::Server;
        let presented_key = match (&presented.access_key, bearer_allowed) {
            (Some(key), _) => key.clone(),
            (None, true) => presented
                .bearer()
                .ok()
                .flatten()
                .ok_or(AccessError::MissingAccessKey { bearer_allowed })?,
            (None, false) => return Err(AccessError::MissingAccessKey { bearer_allowed }),
        };
        let hash = blake3::hash(presented_key.expose_secret().as_bytes());
        // `blake3::Hash` equality is constant-time; every key is compared.
        let matched = self
            .inner
            .access_keys
            .iter()
            .enumerate()
            .fold(None, |found, (position, key)| {
                found.or((*key == hash).then_some(position))
            });
        matched
            .and_then(|position| u16::try_from(position).ok())
            .map(|position| Some(AccessKeyId(position)))
            .ok_or(AccessError::WrongAccessKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(mode: CredentialMode, keys: &[&str]) -> AccessPolicy {
        let key = FingerprintKey::random();
        let server = Credential::new(CredentialSecret::ApiToken("server-token".into()), &key);
        let keys: Vec<SecretString> = keys.iter().map(|k| SecretString::from(*k)).collect();
        AccessPolicy::new(mode, Some(server), &keys, key)
    }

    fn payload(value: serde_json::Value) -> Presented {
        Presented::from_init_payload(&value, CredentialFields::Used).unwrap()
    }

    #[test]
    fn the_callers_credential_takes_precedence_only_in_the_pass_through_modes() {
        let token = payload(json!({ "Authorization": "Bearer client-token" }));
        let server = policy(CredentialMode::Server, &[]);
        assert!(server.admit(&token, None).unwrap().credential.is_none());
        let either = policy(CredentialMode::PassThroughOrServer, &[]);
        let caller = either.admit(&token, None).unwrap().credential.unwrap();
        let used = either.credential_for(Some(&caller)).unwrap();
        assert_eq!(used.fingerprint(), caller.fingerprint());
        let fallback = either.credential_for(None).unwrap();
        assert_ne!(fallback.fingerprint(), caller.fingerprint());
        let pass_through = policy(CredentialMode::PassThrough, &[]);
        assert_eq!(
            pass_through.credential_for(None).unwrap_err(),
            AccessError::NoCredential
        );
    }

    #[test]
    fn malformed_or_partial_credentials_are_refused_without_echoing_them() {
        let pass_through = policy(CredentialMode::PassThrough, &[]);
        let cases = [
            (
                json!({ "authorization": "Basic c2VjcmV0" }),
                AccessError::Malformed("Authorization"),
            ),
            (
                json!({ "X-Auth-Email": "me@example.com" }),
                AccessError::IncompleteApiKey,
            ),
            (
                json!({ "X-Auth-Key": "line\nbreak" }),
                AccessError::Malformed("X-Auth-Key"),
            ),
            (
                json!({ "X-Auth-Key": 42 }),
                AccessError::Malformed("X-Auth-Key"),
            ),
            (
                json!("Bearer x"),
                AccessError::Malformed("connection_init payload"),
            ),
        ];
        for (value, expected) in cases {
            let error = Presented::from_init_payload(&value, CredentialFields::Used)
                .and_then(|presented| pass_through.admit(&presented, None))
                .unwrap_err();
            assert_eq!(error, expected, "{value}");
            assert!(
                !error.to_string().contains("c2VjcmV0")
                    && !error.to_string().contains("me@example.com")
            );
        }
        let pair = payload(json!({ "x-auth-email": "me@example.com", "x-auth-key": "0123abcd" }));
        assert!(
            pass_through
                .admit(&pair, None)
                .unwrap()
                .credential
                .is_some()
        );
    }

    #[test]
    fn access_keys_are_read_from_their_header_or_in_server_mode_from_bearer() {
        let server = policy(CredentialMode::Server, &["key-one", "key-two"]);
        assert_eq!(
            server.admit(&Presented::default(), None).unwrap_err(),
            AccessError::MissingAccessKey {
                bearer_allowed: true
            }
        );
        let second = server
            .admit(&payload(json!({ "X-Gateway-Key": "key-two" })), None)
            .unwrap();
        assert_eq!(second.access_key.map(AccessKeyId::position), Some(2));
        assert!(
            server
                .admit(&payload(json!({ "Authorization": "Bearer key-one" })), None)
                .is_ok()
        );
        assert_eq!(
            server
                .admit(&payload(json!({ "X-Gateway-Key": "key-three" })), None)
                .unwrap_err(),
            AccessError::WrongAccessKey
        );
        let pass_through = policy(CredentialMode::PassThrough, &["key-one"]);
        let bearer_only = payload(json!({ "Authorization": "Bearer key-one" }));
        assert_eq!(
            pass_through.admit(&bearer_only, None).unwrap_err(),
            AccessError::MissingAccessKey {
                bearer_allowed: false
            }
        );
        let both =
            payload(json!({ "Authorization": "Bearer cf-token", "X-Gateway-Key": "key-one" }));
        assert!(
            pass_through
                .admit(&both, None)
                .unwrap()
                .credential
                .is_some()
        );
    }

    #[test]
    fn an_address_with_too_many_wrong_keys_is_refused_even_the_right_one_and_alone() {
        let server = policy(CredentialMode::Server, &["key-one"]);
        let (guesser, other): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let wrong = payload(json!({ "X-Gateway-Key": "guess" }));
        let right = payload(json!({ "X-Gateway-Key": "key-one" }));
        for _ in 0..MAX_WRONG_KEYS {
            assert_eq!(
                server.admit(&wrong, Some(guesser)).unwrap_err(),
                AccessError::WrongAccessKey
            );
        }
        let refused = server.admit(&right, Some(guesser)).unwrap_err();
        assert_eq!(refused.code(), ACCESS_KEY_THROTTLED);
        let wait = refused.retry_after_seconds().unwrap();
        assert!((1..=WRONG_KEY_WINDOW.as_secs()).contains(&wait), "{wait}");
        assert!(server.admit(&right, Some(other)).is_ok());
        // Without keys configured there is nothing to guess, and nothing is throttled.
        let open = policy(CredentialMode::Server, &[]);
        assert!(open.admit(&wrong, Some(guesser)).is_ok());
    }

    #[test]
    fn debug_output_shows_no_presented_value() {
        let presented =
            payload(json!({ "Authorization": "Bearer secret-token", "X-Gateway-Key": "k" }));
        let printed = format!("{presented:?} {:?}", policy(CredentialMode::Server, &["k"]));
        assert!(
            !printed.contains("secret-token") && !printed.contains("\"k\""),
            "{printed}"
        );
    }
}
