//! Hostile input, table-driven: every rejected input gets its own clear code (or
//! HTTP status) and makes no upstream call at all.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::support::{GRAPHQL_RESPONSE_JSON, STATUS_QUERY, TestApp};

/// What a rejected input must get back.
enum Expect {
    /// A field error with this code (HTTP 200, the error has a path).
    FieldError(&'static str),
    /// A request error with this code (HTTP 400, no `data`).
    RequestError(&'static str),
    /// This HTTP status, before GraphQL.
    Http(u16),
}

async fn send(app: &TestApp, body: String) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn status_query(domain: &str) -> String {
    json!({ "query": STATUS_QUERY, "variables": { "domain": domain } }).to_string()
}

fn account_query(account: &str) -> String {
    let variables = json!({ "domain": "demo-succeeded.com", "accountId": account });
    json!({ "query": STATUS_QUERY, "variables": variables }).to_string()
}

fn list_query(count: usize) -> String {
    let domains: Vec<String> = (0..count).map(|i| format!("d{i}.com")).collect();
    let query = "query($d: [String!]!) { registrationStatuses(domains: $d) { state } }";
    json!({ "query": query, "variables": { "d": domains } }).to_string()
}

fn raw_query(query: &str) -> String {
    json!({ "query": query }).to_string()
}

fn aliases(count: usize) -> String {
    let fields: String = (0..count)
        .map(|i| format!("a{i}:registrationStatus(domain:\"demo-succeeded.com\"){{state}} "))
        .collect();
    raw_query(&format!("{{ {fields}}}"))
}

/// Nine levels of fragments, each spreading the next eight times: 8^9 fields if
/// expanded naively, within the depth limit (12), so only the complexity limit
/// refuses it.
fn fragment_bomb() -> String {
    let mut query = String::from(r#"{ registrationStatus(domain: "a.com") { ...F0 } }"#);
    for n in 0..8 {
        let spreads = format!("...F{} ", n + 1).repeat(8);
        query.push_str(&format!(
            " fragment F{n} on RegistrationStatus {{ {spreads}}}"
        ));
    }
    query.push_str(" fragment F8 on RegistrationStatus { state }");
    raw_query(&query)
}

/// A chain of `length` named fragments, each spreading the next:
/// `{...a}fragment a on Query{...b}fragment b on Query{...c}...`. Its brackets nest
/// one deep, so only the walk through the spreads can see how deep it goes. Names
/// are one or two letters, to fit as long a chain as possible in the body limit.
fn fragment_chain(length: usize) -> String {
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    let name = |n: usize| match n / letters.len() {
        0 => letters[n].to_string(),
        high => format!("{}{}", letters[high - 1], letters[n % letters.len()]),
    };
    let mut query = format!("{{...{}}}", name(0));
    for n in 0..length {
        let next = if n + 1 == length {
            "__typename".to_string()
        } else {
            format!("...{}", name(n + 1))
        };
        query.push_str(&format!("fragment {} on Query{{{next}}}", name(n)));
    }
    raw_query(&query)
}

fn cases() -> Vec<(&'static str, String, Expect)> {
    use Expect::*;
    let bad_domain = FieldError("BAD_USER_INPUT");
    let long_label = format!("{}.com", "a".repeat(64));
    let long_name = format!("{}com", "abcdefghi.".repeat(26));
    let deep = format!("{{ {} }}", "a { ".repeat(13) + "b" + &" }".repeat(13));
    vec![
        (
            "path traversal",
            status_query("../../etc/passwd"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "encoded slash",
            status_query("a%2Fb.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "query string",
            status_query("example.com?x=1"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "fragment",
            status_query("example.com#top"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "NUL",
            status_query("exam\u{0}ple.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "inner space",
            status_query("exam ple.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "leading space",
            status_query(" example.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "newline",
            status_query("example.com\n"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "tab",
            status_query("example\t.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "label over 63",
            status_query(&long_label),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "name over 253",
            status_query(&long_name),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "single label",
            status_query("localhost"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "empty label",
            status_query("example..com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "leading hyphen",
            status_query("-example.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "bad punycode",
            status_query("xn--zz.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "empty punycode",
            status_query("xn--.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "zero-width joiner",
            status_query("exa\u{200d}mple.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "bidi override",
            status_query("exa\u{202e}mple.com"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "emoji-only IDN label",
            status_query("\u{1F600}.\u{0301}com"),
            FieldError("BAD_USER_INPUT"),
        ),
        ("empty", status_query(""), FieldError("BAD_USER_INPUT")),
        (
            "account over 32",
            account_query(&"a".repeat(33)),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "account with symbols",
            account_query("0123456789abcdef-0123456789abcd"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "account traversal",
            account_query("../other"),
            FieldError("BAD_USER_INPUT"),
        ),
        (
            "account empty",
            account_query(""),
            FieldError("BAD_USER_INPUT"),
        ),
        ("list over --max-domains", list_query(6), bad_domain),
        (
            "list over --max-lookups",
            list_query(11),
            RequestError("TOO_MANY_LOOKUPS"),
        ),
        (
            "1000 aliases",
            aliases(1000),
            RequestError("TOO_MANY_ROOT_FIELDS"),
        ),
        (
            "21 aliases",
            aliases(21),
            RequestError("TOO_MANY_ROOT_FIELDS"),
        ),
        (
            "too deep",
            raw_query(&deep),
            RequestError("OPERATION_TOO_DEEP"),
        ),
        (
            "bracket bomb",
            raw_query(&"{a".repeat(20_000)),
            RequestError("OPERATION_TOO_DEEP"),
        ),
        (
            "fragment bomb",
            fragment_bomb(),
            RequestError("OPERATION_TOO_COMPLEX"),
        ),
        (
            "chain of 2,400 fragments",
            fragment_chain(2_400),
            RequestError("OPERATION_TOO_DEEP"),
        ),
        (
            "fragment cycle",
            raw_query("{ ...A } fragment A on QueryRoot { ...A }"),
            RequestError("OPERATION_TOO_DEEP"),
        ),
        (
            "introspection",
            raw_query("{ __schema { types { name } } }"),
            RequestError("INTROSPECTION_DISABLED"),
        ),
        (
            "oversized body",
            status_query(&"a".repeat(70_000)),
            Http(413),
        ),
        (
            "batch",
            format!("[{},{}]", status_query("a.com"), status_query("b.com")),
            Http(400),
        ),
    ]
}

#[tokio::test]
async fn every_rejected_input_gets_its_code_and_makes_no_upstream_call() {
    let app = TestApp::builder()
        .args(&[
            "--max-domains",
            "5",
            "--max-lookups",
            "10",
            "--disable-introspection",
        ])
        .spawn()
        .await;
    for (name, body, expected) in cases() {
        let (status, answer) = send(&app, body).await;
        let code = &answer["errors"][0]["extensions"]["code"];
        match expected {
            Expect::FieldError(expected) => {
                assert_eq!(
                    (status, code.as_str()),
                    (200, Some(expected)),
                    "{name}: {answer}"
                );
                assert!(answer["errors"][0]["path"].is_array(), "{name}: {answer}");
            }
            Expect::RequestError(expected) => {
                assert_eq!(
                    (status, code.as_str()),
                    (400, Some(expected)),
                    "{name}: {answer}"
                );
                assert!(answer.get("data").is_none(), "{name}: {answer}");
                let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("limit") || message.contains("disabled"),
                    "{name}: {message}"
                );
            }
            Expect::Http(expected) => assert_eq!(status, expected, "{name}: {answer}"),
        }
        assert_eq!(app.upstream_calls(), 0, "{name} reached the upstream");
    }
}

#[tokio::test]
async fn within_the_limits_the_same_shapes_are_served() {
    let app = TestApp::builder()
        .args(&["--max-domains", "5", "--max-lookups", "10"])
        .spawn()
        .await;
    let (status, answer) = send(&app, aliases(3)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["a2"]["state"], "SUCCEEDED");
    let (status, answer) = send(&app, raw_query("{ __schema { queryType { name } } }")).await;
    assert_eq!(status, 200, "introspection is on by default: {answer}");
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query");
    let chain = r#"{ ...A } fragment A on Query { ...B } fragment B on Query { ...C }
        fragment C on Query { registrationStatus(domain: "demo-succeeded.com") { state } }"#;
    let (status, answer) = send(&app, raw_query(chain)).await;
    assert_eq!(status, 200, "a chain of 3 fragments: {answer}");
    assert_eq!(answer["data"]["registrationStatus"]["state"], "SUCCEEDED");
    assert_eq!(app.upstream_calls(), 1, "the chain's lookup is cached");
}

/// No answer echoes an input whole: a 60 KB bad domain, account id, field name,
/// operation name or document is answered in under 4 KB, whatever the path.
#[tokio::test]
async fn a_60_kb_bad_input_is_answered_in_under_4_kb() {
    let app = TestApp::builder().spawn().await;
    let long = "x".repeat(60 * 1024);
    let bodies = [
        json!({ "query": "query($d: String!) { registrationStatus(domain: $d) { state } }", "variables": { "d": format!("{long}.com") } }),
        json!({ "query": format!("{{ registrationStatus(domain: \"{long}.com\") {{ state }} }}") }),
        json!({ "query": "query($a: ID) { registrationStatus(domain: \"a.com\", accountId: $a) { state } }", "variables": { "a": long } }),
        json!({ "query": format!("{{ {long} }}") }),
        json!({ "query": "{ __typename }", "operationName": long }),
        json!({ "query": format!("{{ registrationStatus(domain: {long}) {{ state }} }}") }),
        json!({ "query": format!("{{ registrationStatus(domain: \"a.com\") {{ {long} }} }}") }),
        json!({ "query": format!("query {{ registrationStatus(domain: \"a.com\", {long}: 1) {{ state }} }}") }),
        json!({ "query": format!("\"{long}") }),
    ];
    for body in bodies {
        let (status, answer) = send(&app, body.to_string()).await;
        let size = answer.to_string().len();
        assert!(
            size < 4096,
            "HTTP {status}, {size} bytes: {}",
            &answer.to_string()[..300]
        );
    }
    assert_eq!(app.upstream_calls(), 0);
}

/// A request id a caller sends is echoed (and logged) only when it is short and
/// plain; two `Host` headers are refused.
#[tokio::test]
async fn odd_request_ids_are_replaced_and_two_host_headers_refused() {
    let app = TestApp::builder().spawn().await;
    let echoed = |id: &str| {
        let request = app.http.get(app.url("/healthz")).header("x-request-id", id);
        async move {
            let response = request.send().await.unwrap();
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(echoed("req-42.a_b:c").await, "req-42.a_b:c");
    let long = "a".repeat(3 * 1024);
    for odd in [long.as_str(), "<script>alert(1)</script>", "a b"] {
        let replaced = echoed(odd).await;
        assert_ne!(replaced, odd);
        assert_eq!(replaced.len(), 36, "a fresh UUID: {replaced}");
    }

    let mut socket = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let request = "GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut socket, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"BAD_REQUEST\""), "{answer}");
}
