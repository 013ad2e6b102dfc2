//! Integration tests: one binary, real servers on 127.0.0.1:0, real sockets.

mod abuse;
mod access;
mod budget;
mod cache;
mod connections;
mod dashboard;
mod explorer;
mod faults;
mod federation;
mod graphql_http;
mod hostile;
mod introspection;
mod metrics;
mod module_graph;
mod origin;
mod queries;
mod sandbox;
mod schema_file;
mod security_headers;
mod simulator;
mod subscriptions;
mod support;
mod websocket_protocol;
