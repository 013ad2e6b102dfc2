//! The one way tests start things: [`TestApp::builder`] (by default a gateway in front
//! of a fresh manual-clock simulator, both on `127.0.0.1:0`), [`spawn_simulator`]
//! for the simulator alone, a websocket client, and for scaling out a real
//! `redis-server` ([`TestRedis`]) and gateway processes ([`spawn_replicas`]). Logs stay silent unless
//! `TEST_LOG` is set (`TEST_LOG=1 cargo test --test api NAME -- --nocapture`;
//! `RUST_LOG` picks the level, default `debug`).

mod app;
mod exposition;
mod logs;
mod process;
mod redis_server;
mod replicas;
mod simulator;
mod stub;
mod websocket;

pub(crate) use app::*;
pub(crate) use exposition::*;
pub(crate) use process::*;
pub(crate) use redis_server::*;
pub(crate) use replicas::*;
pub(crate) use simulator::*;
pub(crate) use stub::*;
pub(crate) use websocket::*;

/// The account every test uses unless it needs another (also the gateway's default).
pub(crate) const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
/// The bearer token tests present to the simulator, directly or through the gateway.
pub(crate) const TOKEN: &str = "test-token-0123456789";
