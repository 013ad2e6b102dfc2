//! The explorer's opening tabs: one of each thing a client does with the gateway
//! (look up one registration, a dashboard of several, watch one change), each
//! runnable as is against the demo domains of the sandbox.

use serde::Serialize;
use serde_json::json;

/// One GraphiQL tab (its `TabDefinition`).
#[derive(Debug, Serialize)]
pub(super) struct Tab {
    query: String,
    variables: String,
    /// Headers are the same in every tab; `None` leaves the headers editor empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<String>,
}

/// The domains the tabs ask about.
#[derive(Clone, Debug)]
pub struct ExampleDomains {
    /// The one-registration query's domain.
    pub single: String,
    /// The dashboard query's domains.
    pub dashboard: Vec<String>,
    /// The subscription's domain (one whose workflow ends on its own).
    pub watched: String,
}

impl ExampleDomains {
    /// The sandbox's demo registrations (see `simulator/src/demo.rs`).
    pub fn sandbox() -> Self {
        Self {
            single: "demo-action-required.com".into(),
            dashboard: [
                "demo-succeeds.com",
                "demo-fails.com",
                "demo-action-required.com",
                "demo-blocked.com",
            ]
            .map(String::from)
            .into(),
            watched: "demo-succeeds.com".into(),
        }
    }

    /// The upstream API documentation's example domain, against a real account.
    pub fn example() -> Self {
        Self {
            single: "example.com".into(),
            dashboard: vec!["example.com".into(), "example.net".into()],
            watched: "example.com".into(),
        }
    }
}

const STATUS: &str = "\
# The status of one registration. Run it with the ▶ button (or Ctrl-Enter);
# the domain is in the Variables editor below.
query RegistrationStatus($domain: String!) {
  registrationStatus(domain: $domain) {
    domainName
    state
    completed
    updatedAt
    actionRequired { action confirmationSentTo }
    error { code message }
    ageSeconds
    stale
  }
}
";

const DASHBOARD: &str = "\
# A dashboard: several registrations in one request, fetched concurrently.
# A failure for one domain is an error at its list index; the others still answer.
query Dashboard($domains: [String!]!) {
  registrationStatuses(domains: $domains) {
    domainName
    state
    completed
    updatedAt
  }
}
";

const WATCH: &str = "\
# Every change of one registration as it happens (over a websocket), until its
# workflow ends. The demo workflows move every few seconds, and start over once
# they have ended and nobody looked for 2 s: run it again to see one from the start.
# accountId null is the gateway's account; in the sandbox, any other id (letters
# and digits) has demos of its own, started on its first request.
subscription Watch($domain: String!, $accountId: ID) {
  registrationStatusChanged(domain: $domain, accountId: $accountId) {
    sequence
    previousState
    status { state completed updatedAt }
  }
}
";

/// The three tabs, with `headers` (if any) in each.
pub(super) fn tabs(domains: &ExampleDomains, headers: Option<&str>) -> Vec<Tab> {
    let tab = |query: &str, variables: serde_json::Value| Tab {
        query: query.to_owned(),
        variables: serde_json::to_string_pretty(&variables).expect("JSON values encode"),
        headers: headers.map(str::to_owned),
    };
    vec![
        tab(STATUS, json!({ "domain": domains.single })),
        tab(DASHBOARD, json!({ "domains": domains.dashboard })),
        tab(
            WATCH,
            json!({ "domain": domains.watched, "accountId": null }),
        ),
    ]
}
