//! Compiled queries answer exactly what async-graphql answers. A property test
//! generates documents in the compiled subset's grammar (aliases, field orders,
//! repeated and conflicting fields, nesting, `__typename`, variables or
//! literals, named or anonymous operations, operation names sent or not, right
//! or wrong) and simulator states (every demo workflow, no workflow, a domain to
//! normalise, a malformed domain, an account the upstream refuses), runs each
//! through async-graphql ([`GatewaySchema::execute`], which never takes the
//! compiled path) and through the compiled path of the same gateway, and
//! compares the bytes. The fields it selects are the schema's, as the compiled
//! path's one table compiles them; another test walks the schema and fails for a
//! field that table neither compiles nor declines. Then, over real sockets, the
//! compiled path is shown to be taken (its metric) with the same answer, over
//! HTTP, graphql-transport-ws and SSE.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::LazyLock;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use async_graphql::{Request, Variables};
use axum::http::HeaderMap;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use registrar_gateway::fair_share::{ClientAddress, ClientId};
use registrar_gateway::graphql::{Compiled, GatewaySchema, SchemaShape, compiled_fields};
use serde_json::{Value, json};

use crate::support::{self, ACCOUNT, TestApp, scrape};

/// An account the simulator refuses (403): the lookup fails after it was paid for.
const FORBIDDEN: &str = "ffffffffffffffffffffffffffffffff";

/// Every demo workflow state, no workflow, a name to normalise, a malformed name.
const DOMAINS: [&str; 12] = [
    "demo-succeeds.com",
    "demo-fails.com",
    "demo-action-required.com",
    "demo-unknown-completed.com",
    "demo-blocked.com",
    "demo-pending.com",
    "demo-in-progress.com",
    "demo-succeeded.com",
    "demo-failed.com",
    "no-workflow-here.com",
    "Demo-Blocked.COM.",
    "not a domain",
];

/// What documents select, derived from the schema and the compiled path's table:
/// the leaf fields of `RegistrationStatus` the compiled path compiles (`ageSeconds`
/// apart, see [`AGE_KEYS`]), and its object fields with their compiled leaves.
struct Shape {
    leaves: Vec<&'static str>,
    objects: Vec<(&'static str, Vec<&'static str>)>,
}

static SHAPE: LazyLock<Shape> = LazyLock::new(|| {
    let schema = schema_objects();
    let tables: HashMap<_, _> = compiled_fields().into_iter().collect();
    let compiled = |type_name: &str| -> Vec<(&'static str, Option<String>)> {
        let fields = &schema[type_name];
        tables[type_name]
            .iter()
            .filter(|(_, compiled)| *compiled)
            .map(|(name, _)| {
                let returns = fields
                    .iter()
                    .find(|(field, _)| field == name)
                    .and_then(|(_, returns)| schema.contains_key(returns).then(|| returns.clone()));
                (*name, returns)
            })
            .collect()
    };
    let (mut leaves, mut objects) = (Vec::new(), Vec::new());
    for (name, object) in compiled("RegistrationStatus") {
        match object {
            None if name != "ageSeconds" => leaves.push(name),
            None => {}
            Some(object) => {
                let inner = compiled(&object)
                    .into_iter()
                    .filter(|(_, nested)| nested.is_none())
                    .map(|(name, _)| name)
                    .collect();
                objects.push((name, inner));
            }
        }
    }
    Shape { leaves, objects }
});

/// The schema's object types: each field's name and the named type it returns.
fn schema_objects() -> HashMap<String, Vec<(String, String)>> {
    fn named(ty: &Type) -> String {
        match &ty.base {
            BaseType::Named(name) => name.to_string(),
            BaseType::List(inner) => named(inner),
        }
    }
    let sdl = registrar_gateway::graphql::sdl(SchemaShape::Standalone);
    let document = parse_schema(&sdl).expect("the schema's SDL parses");
    document
        .definitions
        .into_iter()
        .filter_map(|definition| {
            let TypeSystemDefinition::Type(definition) = definition else {
                return None;
            };
            let TypeKind::Object(object) = definition.node.kind else {
                return None;
            };
            let fields = object
                .fields
                .into_iter()
                .map(|field| (field.node.name.node.to_string(), named(&field.node.ty.node)))
                .collect();
            Some((definition.node.name.node.to_string(), fields))
        })
        .collect()
}

/// The compiled path's table and the schema agree: every field of every type the
/// compiled path serves (from `RegistrationStatus` down) is in the table, compiled
/// or declined, and the table names no field the schema lacks. A field added to
/// the schema fails here until the compiled path handles or declines it.
#[test]
fn every_field_of_the_types_the_compiled_path_serves_is_compiled_or_declined() {
    let schema = schema_objects();
    let tables: HashMap<_, _> = compiled_fields().into_iter().collect();
    let (mut unlisted, mut visited) = (Vec::new(), HashSet::new());
    let mut to_visit = vec!["RegistrationStatus".to_owned()];
    while let Some(type_name) = to_visit.pop() {
        if !visited.insert(type_name.clone()) {
            continue;
        }
        let table = tables
            .get(type_name.as_str())
            .unwrap_or_else(|| panic!("the compiled path serves {type_name} but has no table"));
        let fields = &schema[&type_name];
        for (field, returns) in fields {
            match table.iter().find(|(name, _)| name == field) {
                None => unlisted.push(format!("{type_name}.{field}")),
                Some((_, true)) if schema.contains_key(returns) => to_visit.push(returns.clone()),
                Some(_) => {}
            }
        }
        for (name, _) in table {
            assert!(
                *name == "__typename" || fields.iter().any(|(field, _)| field == name),
                "{type_name}.{name} is in the compiled table but not in the schema"
            );
        }
    }
    assert!(
        unlisted.is_empty(),
        "fields the compiled path neither compiles nor declines (add each to its type's \
         FIELDS table in src/graphql/compiled/plan.rs): {unlisted:?}"
    );
    assert_eq!(
        visited.len(),
        tables.len(),
        "every table is reached from RegistrationStatus"
    );
}

/// Aliases; `state` and `links` are also field names, so some documents conflict
/// (two fields under one key) and async-graphql refuses them.
const ALIASES: [&str; 5] = ["a", "b", "renamed", "state", "links"];

/// The response keys `ageSeconds` is asked under (read at request time, so the
/// comparison masks its value and checks its order instead).
const AGE_KEYS: [&str; 3] = ["ageSeconds", "age", "howOld"];

#[derive(Clone, Debug)]
enum Pick {
    Leaf(Option<usize>, usize),
    Age(usize),
    Object(Option<usize>, usize, Vec<(Option<usize>, usize)>),
}

#[derive(Clone, Debug)]
enum Account {
    Absent,
    Literal(&'static str),
    /// A variable declared `ID!` (true) or `ID`, and its value (`None`: left out).
    Variable(bool, Option<&'static str>),
}

#[derive(Clone, Debug)]
struct Case {
    named: bool,
    /// The operation name sent: none, the document's, or another.
    send_name: usize,
    root_alias: Option<usize>,
    domain: usize,
    domain_variable: bool,
    account: Account,
    picks: Vec<Pick>,
    separator: usize,
}

fn alias() -> impl Strategy<Value = Option<usize>> {
    prop::option::weighted(0.3, 0..ALIASES.len())
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        4 => (alias(), 0..SHAPE.leaves.len()).prop_map(|(alias, name)| Pick::Leaf(alias, name)),
        1 => (0..AGE_KEYS.len()).prop_map(Pick::Age),
        2 => (0..SHAPE.objects.len()).prop_flat_map(|object| {
            let fields = SHAPE.objects[object].1.len();
            (
                prop::option::weighted(0.2, 0..2usize),
                Just(object),
                prop::collection::vec((prop::option::weighted(0.2, 0..2usize), 0..fields), 1..5),
            )
        })
        .prop_map(|(alias, object, fields)| Pick::Object(alias, object, fields)),
    ]
}

fn account() -> impl Strategy<Value = Account> {
    let value = prop_oneof![Just(None), Just(Some(ACCOUNT)), Just(Some(FORBIDDEN))];
    prop_oneof![
        3 => Just(Account::Absent),
        1 => prop_oneof![Just(ACCOUNT), Just(FORBIDDEN)].prop_map(Account::Literal),
        1 => (any::<bool>(), value).prop_map(|(required, value)| Account::Variable(required, value)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop_oneof![4 => Just(0usize), 2 => Just(1usize), 1 => Just(2usize)],
        prop::option::of(0..2usize),
        0..DOMAINS.len(),
        any::<bool>(),
        account(),
        prop::collection::vec(pick(), 1..10),
        0..3usize,
    )
        .prop_map(
            |(named, send_name, root_alias, domain, domain_variable, account, picks, separator)| {
                Case {
                    named,
                    send_name,
                    root_alias,
                    domain,
                    domain_variable,
                    account,
                    picks,
                    separator,
                }
            },
        )
}

impl Case {
    fn text(&self) -> String {
        let separator = [" ", "\n  ", ", "][self.separator];
        let mut declarations = Vec::new();
        let mut arguments = Vec::new();
        if self.domain_variable {
            declarations.push("$domain: String!".to_owned());
            arguments.push("domain: $domain".to_owned());
        } else {
            arguments.push(format!("domain: {}", json!(DOMAINS[self.domain])));
        }
        match &self.account {
            Account::Absent => {}
            Account::Literal(account) => arguments.push(format!("accountId: \"{account}\"")),
            Account::Variable(required, _) => {
                let bang = if *required { "!" } else { "" };
                declarations.push(format!("$account: ID{bang}"));
                arguments.push("accountId: $account".to_owned());
            }
        }
        let fields: Vec<String> = self.picks.iter().map(render).collect();
        let root_alias = match self.root_alias {
            Some(0) => "status: ",
            Some(_) => "renamed: ",
            None => "",
        };
        let root = format!(
            "{root_alias}registrationStatus({}) {{ {} }}",
            arguments.join(", "),
            fields.join(separator)
        );
        let declarations = match declarations.is_empty() {
            true => String::new(),
            false => format!("({})", declarations.join(", ")),
        };
        match (self.named, declarations.is_empty()) {
            (true, _) => format!("query Q{declarations} {{ {root} }}"),
            (false, true) => format!("{{ {root} }}"),
            (false, false) => format!("query{declarations} {{ {root} }}"),
        }
    }

    fn variables(&self) -> Value {
        let mut variables = serde_json::Map::new();
        if self.domain_variable {
            variables.insert("domain".into(), json!(DOMAINS[self.domain]));
        }
        if let Account::Variable(_, Some(account)) = &self.account {
            variables.insert("account".into(), json!(account));
        }
        Value::Object(variables)
    }

    fn request(&self, client: ClientId) -> Request {
        let mut request =
            Request::new(self.text()).variables(Variables::from_json(self.variables()));
        match self.send_name {
            1 => request = request.operation_name("Q"),
            2 => request = request.operation_name("Other"),
            _ => {}
        }
        request.data(client)
    }

    /// Whether the compiled path must decline the request (async-graphql decides).
    fn must_decline(&self) -> bool {
        let malformed = DOMAINS[self.domain] == "not a domain";
        let missing_account = matches!(self.account, Account::Variable(true, None));
        malformed || missing_account
    }
}

fn render(pick: &Pick) -> String {
    let alias = |alias: &Option<usize>| {
        alias
            .map(|a| format!("{}: ", ALIASES[a]))
            .unwrap_or_default()
    };
    match pick {
        Pick::Leaf(a, name) => format!("{}{}", alias(a), SHAPE.leaves[*name]),
        Pick::Age(0) => "ageSeconds".to_owned(),
        Pick::Age(key) => format!("{}: ageSeconds", AGE_KEYS[*key]),
        Pick::Object(a, object, fields) => {
            let (name, names) = &SHAPE.objects[*object];
            let inner: Vec<String> = fields
                .iter()
                .map(|(a, field)| {
                    let alias = a
                        .map(|a| format!("{}: ", ["x", "y"][a]))
                        .unwrap_or_default();
                    format!("{alias}{}", names[*field])
                })
                .collect();
            let alias = a
                .map(|a| format!("{}: ", ["o", "p"][a]))
                .unwrap_or_default();
            format!("{alias}{name} {{ {} }}", inner.join(" "))
        }
    }
}

/// `body` with every `ageSeconds` value replaced by `0`, and those values in order.
fn mask_ages(body: &[u8]) -> (String, Vec<f64>) {
    let mut text = String::from_utf8(body.to_vec()).expect("UTF-8");
    let mut ages = Vec::new();
    for key in AGE_KEYS {
        let needle = format!("\"{key}\":");
        let mut from = 0;
        while let Some(found) = text[from..].find(&needle) {
            let start = from + found + needle.len();
            let end = text[start..]
                .find([',', '}'])
                .map_or(text.len(), |end| start + end);
            ages.push(text[start..end].parse::<f64>().expect("a number"));
            text.replace_range(start..end, "0");
            from = start;
        }
    }
    (text, ages)
}

/// Both paths as one: async-graphql's response before and after, and the compiled one.
struct Run {
    before: Vec<u8>,
    before_is_request_error: bool,
    compiled: Option<Vec<u8>>,
    after: Vec<u8>,
}

async fn run(schema: &GatewaySchema, case: &Case, client: ClientId) -> Run {
    let before = schema.execute(case.request(client)).await;
    let before_is_request_error = registrar_gateway::graphql::is_request_error(&before);
    let request = case.request(client);
    let compiled = match schema.document(&request) {
        Ok(admitted) => schema.execute_compiled(&request, &admitted).await,
        Err(_) => None,
    };
    let compiled = compiled.map(|compiled| match compiled {
        Compiled::Body(body) => body.expect("an encodable body"),
        Compiled::Failed(response) => serde_json::to_vec(&response).unwrap(),
    });
    let after = schema.execute(case.request(client)).await;
    Run {
        before: serde_json::to_vec(&before).unwrap(),
        before_is_request_error,
        compiled,
        after: serde_json::to_vec(&after).unwrap(),
    }
}

fn client() -> ClientId {
    ClientId::of(None, ClientAddress::of(Ipv4Addr::LOCALHOST.into()))
}

#[test]
fn compiled_answers_are_byte_for_byte_what_async_graphql_answers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Statuses stay cached for the whole test, so both paths read one snapshot.
    let app = runtime.block_on(
        TestApp::builder()
            .args(&[
                "--cache-ttl-active",
                "1h",
                "--cache-ttl-waiting",
                "1h",
                "--cache-ttl-not-found",
                "1h",
                "--cache-ttl-error",
                "1h",
            ])
            .spawn(),
    );
    app.simulator().set_forbidden_accounts([FORBIDDEN]).unwrap();
    let client = client();
    let compiled_cases = Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        let run = runtime.block_on(run(&app.schema, &case, client));
        let text = case.text();
        if run.before_is_request_error || case.must_decline() {
            prop_assert!(run.compiled.is_none(), "compiled, but must not be: {text}");
            return Ok(());
        }
        let Some(compiled) = run.compiled else {
            return Err(TestCaseError::fail(format!("not compiled: {text}")));
        };
        compiled_cases.set(compiled_cases.get() + 1);
        let (before, before_ages) = mask_ages(&run.before);
        let (compiled, ages) = mask_ages(&compiled);
        let (after, after_ages) = mask_ages(&run.after);
        prop_assert_eq!(
            &before,
            &after,
            "async-graphql itself changed its answer: {}",
            text
        );
        prop_assert_eq!(&compiled, &after, "{}", text);
        for ((before, age), after) in before_ages.iter().zip(&ages).zip(&after_ages) {
            prop_assert!(
                before <= age && age <= after,
                "ages {before} {age} {after}: {text}"
            );
        }
        Ok(())
    });
    result.unwrap();
    let compiled_cases = compiled_cases.get();
    assert!(compiled_cases > 100, "only {compiled_cases} cases compiled");
}

/// The query loadgen measures, sent twice over HTTP.
const STATUS_QUERY: &str = "query($domain: String!) { registrationStatus(domain: $domain) { \
    domainName state rawState completed createdAt updatedAt links { self resource } context \
    error { code message } actionRequired { action confirmationSentTo } fetchedAt ageSeconds } }";

async fn compiled_queries(app: &TestApp) -> f64 {
    scrape(app)
        .await
        .value("registrar_gateway_graphql_compiled_queries_total", &[])
}

async fn post(app: &TestApp, body: Value) -> (reqwest::StatusCode, HeaderMap, Vec<u8>) {
    let response = app.post_json(body).await;
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_repeated_query_is_answered_from_its_compiled_plan_with_the_same_answer() {
    let app = TestApp::builder()
        .args(&["--cache-ttl-active", "1h"])
        .spawn()
        .await;
    let body = json!({ "query": STATUS_QUERY, "variables": { "domain": "demo-in-progress.com" } });
    assert_eq!(compiled_queries(&app).await, 0.0);

    let (status, headers, first) = post(&app, body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        compiled_queries(&app).await,
        0.0,
        "the first runs through async-graphql"
    );

    let (compiled_status, compiled_headers, second) = post(&app, body.clone()).await;
    assert_eq!(compiled_queries(&app).await, 1.0, "the second is compiled");
    assert_eq!(compiled_status, status);
    for name in ["content-type", "vary"] {
        assert_eq!(compiled_headers.get(name), headers.get(name), "{name}");
    }
    assert_eq!(mask_ages(&second).0, mask_ages(&first).0);
    let answer: Value = serde_json::from_slice(&second).unwrap();
    assert_eq!(answer["data"]["registrationStatus"]["state"], "IN_PROGRESS");

    // A document outside the subset (a fragment) always runs through async-graphql.
    let fragment = json!({
        "query": "{ registrationStatus(domain: \"demo-pending.com\") { ...F } } \
                  fragment F on RegistrationStatus { state }"
    });
    for _ in 0..2 {
        let (status, _, _) = post(&app, fragment.clone()).await;
        assert_eq!(status, 200);
    }
    assert_eq!(compiled_queries(&app).await, 1.0);

    // Errors keep async-graphql's shape: a malformed domain is left to it.
    let malformed = json!({ "query": STATUS_QUERY, "variables": { "domain": "not a domain" } });
    let (_, _, refused) = post(&app, malformed).await;
    let refused: Value = serde_json::from_slice(&refused).unwrap();
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(compiled_queries(&app).await, 1.0);
}

#[tokio::test]
async fn a_repeated_query_over_a_websocket_or_sse_is_answered_from_its_compiled_plan() {
    let app = TestApp::builder()
        .args(&["--cache-ttl-active", "1h"])
        .spawn()
        .await;
    let payload =
        json!({ "query": STATUS_QUERY, "variables": { "domain": "demo-in-progress.com" } });
    let mut client = support::connect_ready(&app).await;
    let mut answers = Vec::new();
    for id in ["1", "2"] {
        client.start(id, payload.clone()).await;
        let next = client.recv().await;
        assert_eq!((&next["type"], &next["id"]), (&json!("next"), &json!(id)));
        answers.push(serde_json::to_vec(&next["payload"]).unwrap());
        assert_eq!(client.recv().await, json!({ "type": "complete", "id": id }));
    }
    assert_eq!(
        compiled_queries(&app).await,
        1.0,
        "the first runs through async-graphql, the second is compiled"
    );
    assert_eq!(mask_ages(&answers[1]).0, mask_ages(&answers[0]).0);

    // The same document over SSE (a stream of one result) takes the same path.
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = response.text().await.unwrap();
    let data = events
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .expect("a next event");
    let data: Value = serde_json::from_str(data).unwrap();
    let data = serde_json::to_vec(&data).unwrap();
    assert_eq!(mask_ages(&data).0, mask_ages(&answers[0]).0);
    assert_eq!(compiled_queries(&app).await, 2.0);
}
