//! The introspection documents real tools send pass under default limits and
//! describe the committed schema; their own bounds still refuse abuse.

use serde_json::Value;

use crate::support::TestApp;

const GRAPHQL_JS: &str = include_str!("../fixtures/introspection/graphql-js.graphql");
const GRAPHQL_CORE: &str = include_str!("../fixtures/introspection/graphql-core.graphql");

#[tokio::test]
async fn graphql_js_and_graphql_core_introspection_answer_under_default_limits() {
    let app = TestApp::builder().spawn().await;
    for (tool, document) in [("graphql-js", GRAPHQL_JS), ("graphql-core", GRAPHQL_CORE)] {
        let answer = app.query(document, Value::Null).await;
        assert_eq!(answer.get("errors"), None, "{tool}: {answer}");
        let schema = &answer["data"]["__schema"];
        assert_eq!(schema["queryType"]["name"], "Query", "{tool}");
        assert_eq!(schema["subscriptionType"]["name"], "Subscription", "{tool}");
        let types = schema["types"].as_array().unwrap();
        assert!(
            types.iter().any(|t| t["name"] == "RegistrationStatus"),
            "{tool} sees the schema's types"
        );
    }
}

#[tokio::test]
async fn a_deep_of_type_nest_and_an_introspection_flood_are_refused() {
    let app = TestApp::builder().spawn().await;
    let nest = format!(
        "{{ __type(name: \"Query\") {{ name{} }} }}",
        " ofType { name".repeat(25) + &" }".repeat(25)
    );
    let flood: String = (0..10)
        .map(|i| format!("s{i}: __schema {{ description }} "))
        .collect();
    for (query, code) in [
        (nest, "OPERATION_TOO_DEEP"),
        (format!("{{ {flood} }}"), "TOO_MANY_ROOT_FIELDS"),
    ] {
        let response = app.post_json(serde_json::json!({ "query": query })).await;
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["errors"][0]["extensions"]["code"], code, "{answer}");
    }
}
