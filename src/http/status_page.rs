//! The live status page for people, `/status/{domain}` (`?accountId=` for another
//! account than the gateway's): a small server-rendered page with no external
//! assets, showing the state, what the user must do, why it waits, when it was
//! last checked and the changes seen, kept live over SSE by `EventSource` (which
//! reconnects by itself and resumes with `Last-Event-ID`). It reads through the
//! same GraphQL schema, access policy and credentials as every other caller, and
//! is served beside the explorer (off with `--disable-explorer`), under a CSP that
//! allows only its own nonce-tagged script and style and connections to itself.

use std::net::IpAddr;

use async_graphql::{Request, Variables};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::graphql::{Caller, access_refusal_headers};
use super::peer::{Peer, client_id};
use crate::domain::{AccountId, DomainName};

const PAGE: &str = include_str!("status_page.html");

/// The status fields the page shows.
const FIELDS: &str = "state completed updatedAt fetchedAt \
    actionRequired { action confirmationSentTo } error { code message }";

/// `?accountId=`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageParams {
    account_id: Option<String>,
}

/// `GET /status/{domain}`.
pub(super) async fn page(
    State(state): State<AppState>,
    Path(domain): Path<String>,
    Query(params): Query<PageParams>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let services = state.schema.services();
    let address = peer.address(&services.shares, &headers);
    let admitted = match services
        .access
        .admit_headers(&headers, address.map(IpAddr::from))
    {
        Ok(admitted) => admitted,
        Err(error) => {
            let mut refused = plain(StatusCode::UNAUTHORIZED, &error.to_string());
            access_refusal_headers(&mut refused, &error);
            return refused;
        }
    };
    let client = client_id(admitted.access_key, address);
    let caller = Caller { admitted, client };
    let Ok(domain) = DomainName::parse(&domain) else {
        return plain(StatusCode::BAD_REQUEST, "not a valid domain name");
    };
    let account = match params.account_id.as_deref().map(AccountId::parse) {
        None => None,
        Some(Ok(account)) => Some(account),
        Some(Err(_)) => return plain(StatusCode::BAD_REQUEST, "not a valid account id"),
    };
    let variables =
        json!({ "domain": domain.as_str(), "account": account.as_ref().map(AccountId::as_str) });
    let query = format!(
        "query($domain: String!, $account: ID) {{ registrationStatus(domain: $domain, accountId: $account) {{ {FIELDS} }} }}"
    );
    let request = Request::new(query).variables(Variables::from_json(variables.clone()));
    let request = caller.into_data(request);
    let response = state.schema.execute(request).await;
    let current = serde_json::to_value(&response.data).unwrap_or_default();
    let status = &current["registrationStatus"];
    let view = match (status.is_null(), response.errors.first()) {
        (_, Some(error)) => View::unavailable(&error.message),
        (true, None) => {
            View::unavailable("Cloudflare has no registration workflow for this domain.")
        }
        (false, None) => View::of(status),
    };
    render(domain.as_str(), &view, &variables)
}

/// What the page shows of a status (the page's script words it the same way).
struct View {
    state: String,
    action: String,
    blocked: String,
    checked: String,
}

impl View {
    fn of(status: &Value) -> Self {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let state = text(&status["state"]);
        let needed = &status["actionRequired"];
        let action = match needed.is_null() {
            true => "Nothing".to_owned(),
            false => {
                let action = needed["action"]
                    .as_str()
                    .unwrap_or("see your Cloudflare dashboard");
                match needed["confirmationSentTo"].as_str() {
                    Some(to) => format!("{action} (sent to {to})"),
                    None => action.to_owned(),
                }
            }
        };
        let blocked = match state.as_str() {
            "BLOCKED" => "Waiting on a third party (such as the registry); this can take hours.",
            "ACTION_REQUIRED" => "Waiting for you.",
            _ => "—",
        };
        let state = match status["error"]["message"].as_str() {
            Some(message) => format!("{state}: {message}"),
            None => state,
        };
        Self {
            state,
            action,
            blocked: blocked.to_owned(),
            checked: text(&status["fetchedAt"]),
        }
    }

    fn unavailable(message: &str) -> Self {
        Self {
            state: message.to_owned(),
            action: "—".to_owned(),
            blocked: "—".to_owned(),
            checked: "—".to_owned(),
        }
    }
}

fn render(domain: &str, view: &View, variables: &Value) -> Response {
    let nonce = format!("{:032x}", rand::random::<u128>());
    let subscription = format!(
        "subscription($domain: String!, $account: ID) {{ registrationStatusChanged(domain: $domain, accountId: $account, keepWatchingActionRequired: true) {{ sequence resynced previousState status {{ {FIELDS} }} }} }}"
    );
    let watch = json!({ "query": subscription, "variables": variables }).to_string();
    let html = PAGE
        .replace("__NONCE__", &nonce)
        .replace("__DOMAIN__", &escape(domain))
        .replace("__STATE__", &escape(&view.state))
        .replace("__ACTION__", &escape(&view.action))
        .replace("__BLOCKED__", &escape(&view.blocked))
        .replace("__CHECKED__", &escape(&view.checked))
        // JSON in a script element: `<` escaped so nothing can close it.
        .replace("__WATCH__", &watch.replace('<', "\\u003c"));
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

/// Text as HTML character data or a quoted attribute value.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_open_markup() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
