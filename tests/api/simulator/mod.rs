//! The simulator on its own, as the gateway (or any client) sees it over HTTP:
//! its API, its workflows, its errors and faults, the upstream examples, and its
//! control API.

mod control;
mod create;
mod errors;
mod examples;
mod faults;
mod registrar;
mod workflows;
