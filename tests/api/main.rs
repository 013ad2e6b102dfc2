//! Integration tests: one binary, real servers on 127.0.0.1:0, real sockets.

mod access;
mod budget;
mod cache;
mod faults;
mod gateway;
mod graphql_http;
mod helpers;
mod hostile;
mod http_streams;
mod queries;
mod resume;
mod sandbox;
mod schema_file;
mod simulator_control;
mod simulator_create;
mod simulator_errors;
mod simulator_examples;
mod simulator_faults;
mod simulator_workflows;
mod subscriptions;
mod websocket;
mod websocket_protocol;
