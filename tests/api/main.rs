//! Integration tests: one binary, real servers on 127.0.0.1:0, real sockets.

mod helpers;
mod simulator_control;
mod simulator_create;
mod simulator_errors;
mod simulator_examples;
mod simulator_faults;
mod simulator_workflows;
