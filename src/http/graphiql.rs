//! The GraphiQL explorer at `/`, wired to `/graphql` for queries and the same path
//! (as a websocket) for subscriptions, opening on a query that works as is.

use axum::body::Bytes;
use axum::response::Html;

const PAGE: &str = include_str!("graphiql.html");

/// The page, with `default_query` in the editor.
pub fn page(default_query: &str) -> Html<Bytes> {
    let quoted = serde_json::to_string(default_query).expect("a string always encodes as JSON");
    // A query cannot close the script element: `<` is escaped inside the JSON string.
    Html(Bytes::from(PAGE.replace(
        "__DEFAULT_QUERY__",
        &quoted.replace('<', "\\u003c"),
    )))
}

/// The editor's opening document: the status of `domain`.
pub fn example_query(domain: &str) -> String {
    format!(
        "# Welcome to registrar-gateway. Run this query with the ▶ button.\n\
         query Status {{\n  registrationStatus(domain: \"{domain}\") {{\n    domainName\n    state\n    completed\n    updatedAt\n    actionRequired {{ action confirmationSentTo }}\n    error {{ code message }}\n    ageSeconds\n  }}\n}}\n"
    )
}
