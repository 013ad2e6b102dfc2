//! `--verify-credentials`: one call to Cloudflare's token verification endpoint
//! (`GET /user/tokens/verify`, "Test whether a token works"; `docs/upstream-api.md`)
//! at start-up, so a mistyped, disabled or expired token stops the gateway with a
//! plain message instead of failing every query later. Only the answer's status and
//! the platform's own error texts are reported; never the token.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::model::Envelope;
use crate::credential::CredentialSecret;

/// Most of an answer read: a verification answer is a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why a token did not pass the check.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejected {
    /// Cloudflare answered with an error (an unknown token: 401, code 1000).
    #[error("Cloudflare does not accept it (HTTP {status}: {errors})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The platform's error codes and messages.
        errors: String,
    },
    /// Cloudflare knows the token but it cannot be used.
    #[error("Cloudflare says the token is {0}")]
    NotActive(String),
    /// The check could not be made.
    #[error("Cloudflare could not be asked ({0})")]
    Unreachable(String),
    /// The answer is not the documented one.
    #[error("Cloudflare's answer could not be read ({0})")]
    Unreadable(String),
}

/// `result` of a verification.
#[derive(Debug, Deserialize)]
struct TokenStatus {
    /// `active`, `disabled` or `expired`.
    status: String,
}

/// Checks `token` against `{base_url}/user/tokens/verify`, within `timeout`.
pub async fn verify_token(
    base_url: &Url,
    token: &CredentialSecret,
    timeout: Duration,
) -> Result<(), TokenRejected> {
    let http = reqwest::Client::builder()
        .user_agent(concat!("registrar-gateway/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| TokenRejected::Unreachable(error.without_url().to_string()))?;
    let mut url = base_url.clone();
    url.path_segments_mut()
        .map_err(|()| TokenRejected::Unreachable("the base URL cannot take a path".into()))?
        .pop_if_empty()
        .extend(["user", "tokens", "verify"]);
    let mut response = token
        .apply(http.get(url))
        .send()
        .await
        .map_err(|error| TokenRejected::Unreachable(error.without_url().to_string()))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| TokenRejected::Unreachable(error.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(TokenRejected::Unreadable("the answer is too long".into()));
        }
        body.extend_from_slice(&chunk);
    }
    judge(status, &body)
}

/// The verdict on one answer.
fn judge(status: StatusCode, body: &[u8]) -> Result<(), TokenRejected> {
    let envelope: Result<Envelope<TokenStatus>, _> = serde_json::from_slice(body);
    match envelope {
        Ok(envelope) if status.is_success() && envelope.success => match envelope.result {
            Some(token) if token.status == "active" => Ok(()),
            Some(token) => Err(TokenRejected::NotActive(bounded(&token.status))),
            None => Err(TokenRejected::Unreadable("no result".into())),
        },
        Ok(envelope) => Err(TokenRejected::Refused {
            status: status.as_u16(),
            errors: envelope
                .errors
                .iter()
                .take(3)
                .map(|error| format!("{} {}", error.code, bounded(&error.message)))
                .collect::<Vec<_>>()
                .join("; "),
        }),
        Err(_) if status.is_server_error() => Err(TokenRejected::Unreachable(format!(
            "HTTP {}",
            status.as_u16()
        ))),
        Err(_) if !status.is_success() => Err(TokenRejected::Refused {
            status: status.as_u16(),
            errors: "no readable error".into(),
        }),
        Err(error) => Err(TokenRejected::Unreadable(error.to_string())),
    }
}

/// At most 120 characters of an upstream text, cut at a character boundary.
fn bounded(text: &str) -> String {
    text.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_token_passes_and_others_say_why_not() {
        let ok = br#"{"success":true,"errors":[],"messages":[],"result":{"id":"f267e341f3dd4697bd3b9f71dd96247f","status":"active","not_before":"2018-07-01T05:20:00Z","expires_on":"2020-01-01T00:00:00Z"}}"#;
        assert!(judge(StatusCode::OK, ok).is_ok());
        let expired =
            br#"{"success":true,"errors":[],"messages":[],"result":{"id":"x","status":"expired"}}"#;
        assert_eq!(
            judge(StatusCode::OK, expired).unwrap_err().to_string(),
            "Cloudflare says the token is expired"
        );
        let invalid = br#"{"success":false,"errors":[{"code":1000,"message":"Invalid API Token"}],"messages":[],"result":null}"#;
        assert_eq!(
            judge(StatusCode::UNAUTHORIZED, invalid)
                .unwrap_err()
                .to_string(),
            "Cloudflare does not accept it (HTTP 401: 1000 Invalid API Token)"
        );
        assert_eq!(
            judge(StatusCode::BAD_GATEWAY, b"<html>")
                .unwrap_err()
                .to_string(),
            "Cloudflare could not be asked (HTTP 502)"
        );
    }
}
