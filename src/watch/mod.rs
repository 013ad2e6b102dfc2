//! `registrar-gateway watch <domain>`: follows one registration through a running
//! gateway's `registrationStatusChanged` subscription (graphql-transport-ws), so a
//! shell or a CI job can wait for it without writing a websocket client. It shows
//! each change as it comes ([`output`]) and exits with a code per outcome
//! ([`Outcome::exit_code`]), documented in `docs/settings.md`.

mod output;

use std::process::ExitCode;

use clap::Args;
use futures::{SinkExt, StreamExt};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::flags::{http_url, secret};

pub use output::Output;

/// The subscription `watch` runs: everything a person needs to act on a status.
const SUBSCRIPTION: &str = "subscription Watch($domain: String!, $accountId: ID) {
  registrationStatusChanged(domain: $domain, accountId: $accountId) {
    sequence
    previousState
    status {
      domainName state rawState completed updatedAt nextCheckAt
      actionRequired { action confirmationSentTo }
      blocked { blockedBy detail }
      error { code message }
      registration { domainName expiresAt }
    }
  }
}";

/// `registrar-gateway watch`: its arguments.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The domain whose registration to follow.
    pub domain: String,
    /// The gateway's GraphQL endpoint (http(s):// or ws(s)://; its address alone means /graphql).
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8080/graphql", value_parser = http_or_ws_url)]
    pub url: Url,
    /// The Cloudflare account the registration is in; the gateway's default account when omitted.
    #[arg(long, env = "CLOUDFLARE_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// The gateway access key, when the gateway requires one (sent in `connection_init`).
    #[arg(long, env = "GATEWAY_ACCESS_KEY", hide_env_values = true, value_parser = secret)]
    pub access_key: Option<SecretString>,
    /// One JSON object per line (each change, then the outcome) instead of text.
    #[arg(long, env = "GATEWAY_WATCH_JSON")]
    pub json: bool,
}

/// How a watched registration ended, or why it could not be followed.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The workflow succeeded: the domain is registered.
    Succeeded,
    /// The workflow failed (its error says why).
    Failed,
    /// The workflow waits for the user to act (the action is printed).
    ActionRequired,
    /// The workflow stayed blocked past the gateway's `--blocked-max-watch`.
    BlockedPastTheLimit,
    /// The registration could not be followed: the message says why.
    Error(String),
}

impl Outcome {
    /// The process exit code: 0 succeeded, 3 failed, 4 action required, 5 blocked
    /// past the limit, 1 any error (2 is the command line's own, for bad usage).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Succeeded => 0,
            Self::Error(_) => 1,
            Self::Failed => 3,
            Self::ActionRequired => 4,
            Self::BlockedPastTheLimit => 5,
        }
    }

    /// Its name in the JSON outcome line.
    fn name(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::ActionRequired => "action_required",
            Self::BlockedPastTheLimit => "blocked_past_the_limit",
            Self::Error(_) => "error",
        }
    }
}

/// Follows the registration until it ends; prints as it goes; the exit code.
pub async fn run(args: WatchArgs) -> ExitCode {
    let mut output = Output::for_stdout(args.json);
    let outcome = follow(&args, &mut output)
        .await
        .unwrap_or_else(Outcome::Error);
    output.outcome(&args.domain, &outcome);
    ExitCode::from(outcome.exit_code())
}

/// The subscription, message by message, until its end; `Err` when it cannot run.
async fn follow(args: &WatchArgs, output: &mut Output) -> Result<Outcome, String> {
    let url = websocket_url(&args.url);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|error| format!("{url} is not a websocket URL: {error}"))?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|error| refused(&url, error))?;
    let init = match &args.access_key {
        Some(key) => {
            json!({ "type": "connection_init", "payload": { "X-Gateway-Key": key.expose_secret() } })
        }
        None => json!({ "type": "connection_init" }),
    };
    let subscribe = json!({
        "type": "subscribe",
        "id": "watch",
        "payload": {
            "query": SUBSCRIPTION,
            "variables": { "domain": args.domain, "accountId": args.account_id },
        },
    });
    let send_failed = |error: tokio_tungstenite::tungstenite::Error| {
        format!("the gateway closed the connection: {error}")
    };
    socket
        .send(Message::text(init.to_string()))
        .await
        .map_err(send_failed)?;
    let mut last_state: Option<String> = None;
    while let Some(message) = socket.next().await {
        let message =
            message.map_err(|error| format!("the connection to the gateway broke: {error}"))?;
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => return Err(closed(frame.as_ref())),
            _ => continue,
        };
        let message: Value = serde_json::from_str(&text)
            .map_err(|_| "the gateway sent a message that is not JSON".to_owned())?;
        match message["type"].as_str() {
            Some("connection_ack") => {
                socket
                    .send(Message::text(subscribe.to_string()))
                    .await
                    .map_err(send_failed)?;
            }
            Some("ping") => {
                let pong = json!({ "type": "pong" }).to_string();
                socket
                    .send(Message::text(pong))
                    .await
                    .map_err(send_failed)?;
            }
            Some("next") => {
                let payload = &message["payload"];
                if let Some(errors) = payload["errors"].as_array().filter(|e| !e.is_empty()) {
                    return Ok(from_errors(errors));
                }
                let change = &payload["data"]["registrationStatusChanged"];
                output.change(change);
                last_state = change["status"]["state"].as_str().map(str::to_owned);
            }
            Some("error") => {
                let errors = message["payload"].as_array().cloned().unwrap_or_default();
                return Ok(from_errors(&errors));
            }
            Some("complete") => return Ok(ended(last_state.as_deref())),
            _ => {}
        }
    }
    Err("the gateway closed the connection before the registration ended".to_owned())
}

/// The outcome of a subscription that completed after `state`.
fn ended(state: Option<&str>) -> Outcome {
    match state {
        Some("SUCCEEDED") => Outcome::Succeeded,
        Some("FAILED") => Outcome::Failed,
        Some("ACTION_REQUIRED") => Outcome::ActionRequired,
        Some(state) => Outcome::Error(format!(
            "the workflow ended in a state this version does not know ({state})"
        )),
        None => Outcome::Error("the subscription ended before any status".to_owned()),
    }
}

/// The outcome of GraphQL errors: past the blocked limit, or an error.
fn from_errors(errors: &[Value]) -> Outcome {
    let first = errors.first().cloned().unwrap_or_default();
    let code = first["extensions"]["code"].as_str().unwrap_or("");
    let message = first["message"]
        .as_str()
        .unwrap_or("an error without a message");
    match code {
        "WATCH_EXPIRED" => Outcome::BlockedPastTheLimit,
        "" => Outcome::Error(message.to_owned()),
        code => Outcome::Error(format!("{message} ({code})")),
    }
}

/// Why the websocket could not open: the gateway's own message when it answered.
fn refused(url: &Url, error: tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    let said = match &error {
        Error::Http(response) => response
            .body()
            .as_deref()
            .and_then(|body| serde_json::from_slice::<Value>(body).ok())
            .and_then(|body| body["errors"][0]["message"].as_str().map(str::to_owned)),
        _ => None,
    };
    match said {
        Some(message) => format!("{url} refused the websocket: {message}"),
        None => format!("cannot open a websocket to {url}: {error}"),
    }
}

/// Why the gateway closed the socket, from its close code.
fn closed(frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    let Some(frame) = frame else {
        return "the gateway closed the connection".to_owned();
    };
    match u16::from(frame.code) {
        4403 => {
            "the gateway refused the access key: pass it with --access-key or GATEWAY_ACCESS_KEY"
                .to_owned()
        }
        1001 => "the gateway is shutting down".to_owned(),
        code => format!(
            "the gateway closed the connection ({code} {})",
            frame.reason
        ),
    }
}

/// `url` with its scheme for websockets (`http` -> `ws`, `https` -> `wss`).
fn websocket_url(url: &Url) -> Url {
    let mut url = url.clone();
    let scheme = match url.scheme() {
        "https" | "wss" => "wss",
        _ => "ws",
    };
    url.set_scheme(scheme)
        .expect("ws and wss replace http and https");
    url
}

/// An absolute `http(s)://` or `ws(s)://` URL; the gateway's own address (no path,
/// as it prints it at start-up) means its endpoint, `/graphql`.
fn http_or_ws_url(value: &str) -> Result<Url, String> {
    let mut url = match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") => url,
        _ => http_url(value)?,
    };
    if url.path() == "/" {
        url.set_path("/graphql");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_own_exit_code() {
        let codes = [
            Outcome::Succeeded,
            Outcome::Error(String::new()),
            Outcome::Failed,
            Outcome::ActionRequired,
            Outcome::BlockedPastTheLimit,
        ]
        .map(|outcome| outcome.exit_code());
        assert_eq!(codes, [0, 1, 3, 4, 5]);
    }

    #[test]
    fn http_urls_become_websocket_urls() {
        let url = |text: &str| websocket_url(&http_or_ws_url(text).unwrap()).to_string();
        assert_eq!(
            url("http://127.0.0.1:8080/graphql"),
            "ws://127.0.0.1:8080/graphql"
        );
        assert_eq!(
            url("https://api.example.com/graphql"),
            "wss://api.example.com/graphql"
        );
        assert_eq!(
            url("wss://api.example.com/graphql"),
            "wss://api.example.com/graphql"
        );
        assert!(http_or_ws_url("api.example.com").is_err());
    }

    #[test]
    fn the_gateways_address_alone_means_its_endpoint() {
        let url = |text: &str| http_or_ws_url(text).unwrap().to_string();
        assert_eq!(
            url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/graphql"
        );
        assert_eq!(url("ws://127.0.0.1:8080/"), "ws://127.0.0.1:8080/graphql");
        // Behind a proxy under a prefix, the endpoint given is the endpoint used.
        assert_eq!(
            url("https://example.com/registrar/graphql"),
            "https://example.com/registrar/graphql"
        );
    }
}
