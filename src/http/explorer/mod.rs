//! The GraphiQL explorer at `/`: GraphiQL 5 built from `web/explorer/` and served
//! from the binary itself, so it works offline and no request leaves the
//! gateway's origin. The page is rendered once at start-up (the version in its
//! title, asset names from the build's manifest, opening tabs, what the page must
//! explain); every response carries a Content-Security-Policy that allows nothing
//! but this origin.
//! `--disable-explorer` leaves these routes out.

mod assets;
mod tabs;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

pub use tabs::ExampleDomains;

use self::assets::Manifest;

const TEMPLATE: &str = include_str!("page.html");

/// What the page depends on besides the build.
#[derive(Clone, Debug)]
pub struct ExplorerSettings {
    /// The domains its opening tabs ask about.
    pub domains: ExampleDomains,
    /// Whether introspection is on (without it GraphiQL has no docs, and says why).
    pub introspection: bool,
    /// Whether callers need an access key (the headers editor then shows where it goes).
    pub access_keys: bool,
}

/// The rendered explorer; cheap to clone.
#[derive(Clone, Debug)]
pub struct Explorer {
    page: Bytes,
}

impl Explorer {
    /// Renders the page for `settings`.
    pub fn new(settings: &ExplorerSettings) -> Self {
        let manifest = Manifest::embedded();
        let headers = settings.access_keys.then(|| {
            let example = json!({ "X-Gateway-Key": "<your access key>" });
            serde_json::to_string_pretty(&example).expect("JSON values encode")
        });
        let config = json!({
            "tabs": tabs::tabs(&settings.domains, headers.as_deref()),
            "headers": headers.unwrap_or_default(),
            "introspection": settings.introspection,
            "accessKeys": settings.access_keys,
        });
        // Inside a <script> element: no `<` may close it, so every one is escaped.
        let config = config.to_string().replace('<', "\\u003c");
        let notice = match settings.introspection {
            true => "",
            false => {
                "<p class=\"explorer-notice\" role=\"status\">Introspection is disabled on this gateway \
                 (<code>--disable-introspection</code>), so the documentation explorer and \
                 autocompletion have no schema. Queries and subscriptions still run.</p>\n    "
            }
        };
        let page = TEMPLATE
            .replace("__VERSION__", env!("CARGO_PKG_VERSION"))
            .replace("__FAVICON__", &manifest.favicon)
            .replace("__STYLE__", &manifest.style)
            .replace("__SCRIPT__", &manifest.script)
            .replace("__NOTICE__", notice)
            .replace("__CONFIG__", &config);
        Self {
            page: Bytes::from(page),
        }
    }

    /// `/` (the page) and `/assets/{file}` (its hashed files).
    pub fn routes<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        Router::new()
            .route("/", get(page))
            .route("/assets/{file}", get(assets::serve))
            .with_state(self)
    }
}

/// `GET /`: the page, never cached stale (it names the current build's files); a
/// websocket client pointed here is told to use `/graphql`.
async fn page(State(explorer): State<Explorer>, headers: HeaderMap) -> Response {
    if let Some(refused) = super::misdirected_websocket(&headers) {
        return refused;
    }
    let csp = content_security_policy(headers.get(header::HOST));
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONTENT_SECURITY_POLICY, csp),
    ];
    (headers, explorer.page).into_response()
}

/// Everything from this origin only: scripts and workers from our files (no
/// inline script: the config block is data, not executed), connections to our
/// `graphql` endpoint over HTTP and websockets. Styles may be inline: Monaco and
/// GraphiQL set style attributes and elements at run time (without it Chromium
/// refuses them and the editor breaks; tests/interop/explorer.mjs fails on any
/// violation). The stylesheet embeds fonts and images as `data:` URLs.
fn content_security_policy(host: Option<&HeaderValue>) -> HeaderValue {
    // `'self'` covers ws/wss on the same host in CSP 3; the explicit websocket
    // sources are for browsers that predate that. A Host that is not a plain
    // host[:port] is left out rather than copied into the header.
    let websocket = host
        .and_then(|host| host.to_str().ok())
        .filter(|host| is_plain_authority(host))
        .map(|host| format!(" ws://{host} wss://{host}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; script-src 'self'; worker-src 'self'; \
         style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
         connect-src 'self'{websocket}; manifest-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).expect("the policy is visible ASCII")
}

/// `host` or `host:port`, bracketed IPv6 included, and nothing else.
fn is_plain_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_host_reaches_the_policy() {
        let policy = |host: &str| {
            let policy = content_security_policy(Some(&HeaderValue::from_str(host).unwrap()));
            policy.to_str().unwrap().to_owned()
        };
        assert!(
            policy("127.0.0.1:8080")
                .contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;")
        );
        assert!(policy("[::1]:80").contains("ws://[::1]:80 "));
        assert!(policy("evil; script-src *").contains("connect-src 'self';"));
        assert!(!policy("evil; script-src *").contains("evil"));
        assert!(
            content_security_policy(None)
                .to_str()
                .unwrap()
                .contains("script-src 'self';")
        );
    }
}
