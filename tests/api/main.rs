//! Integration tests: one binary, real servers on 127.0.0.1:0, real sockets.

mod access;
mod budget;
mod cache;
mod dashboard;
mod explorer;
mod faults;
mod federation;
mod graphql_http;
mod hostile;
mod http_streams;
mod introspection;
mod metrics;
mod module_graph;
mod queries;
mod registration;
mod resume;
mod sandbox;
mod schema_file;
mod simulator;
mod status_page;
mod subscriptions;
mod support;
mod upstream_decoding;
mod websocket_protocol;
