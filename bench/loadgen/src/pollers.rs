//! Polling clients, as dashboards behave: each client asks for the same set of
//! registrations (one `registrationStatuses` query) every interval, starting at a
//! random offset so the load is spread over the interval. Given several gateways
//! (replicas), client i asks gateway i mod N, as a round-robin load balancer would.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};

use crate::clients::GraphqlClient;

/// The query every poll sends.
const POLL_QUERY: &str = "query($domains: [String!]!) { registrationStatuses(domains: $domains) { domainName state updatedAt } }";

/// How many clients poll, how often, for how long.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PollPlan {
    /// Concurrent clients.
    pub clients: usize,
    /// Time between one client's polls.
    pub interval: Duration,
    /// How long clients poll.
    pub duration: Duration,
}

/// What the clients did.
#[derive(Debug, Default)]
pub(crate) struct PollOutcome {
    /// Queries answered without errors.
    pub requests: u64,
    /// Queries that failed.
    pub failed: u64,
    /// The first failure, to say why.
    pub first_error: Option<String>,
}

/// Runs `plan` against `gateways` (client i asks gateway i mod N), every client
/// polling all of `domains`.
pub(crate) async fn run(
    gateways: &[GraphqlClient],
    domains: &[String],
    plan: PollPlan,
) -> PollOutcome {
    let body = GraphqlClient::body(POLL_QUERY, json!({ "domains": domains }));
    let deadline = Instant::now() + plan.duration;
    let max_polls = (plan.duration.as_secs_f64() / plan.interval.as_secs_f64()).ceil() as u64 + 1;
    let gateways: Vec<Arc<GraphqlClient>> = gateways.iter().cloned().map(Arc::new).collect();
    let tasks: Vec<_> = (0..plan.clients)
        .map(|index| {
            let client = Arc::clone(&gateways[index % gateways.len()]);
            let body = body.clone();
            tokio::spawn(async move {
                poll_until(&client, body, plan.interval, deadline, max_polls).await
            })
        })
        .collect();
    let mut total = PollOutcome::default();
    for task in tasks {
        let Ok(outcome) = task.await else { continue };
        total.requests += outcome.requests;
        total.failed += outcome.failed;
        total.first_error = total.first_error.or(outcome.first_error);
    }
    total
}

async fn poll_until(
    client: &GraphqlClient,
    body: axum::body::Bytes,
    interval: Duration,
    deadline: Instant,
    max_polls: u64,
) -> PollOutcome {
    let offset = interval.mul_f64(rand::random::<f64>());
    let mut ticks = tokio::time::interval_at(Instant::now() + offset, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut outcome = PollOutcome::default();
    for _ in 0..max_polls {
        if ticks.tick().await >= deadline {
            break;
        }
        match client.post(body.clone()).await {
            Ok(_) => outcome.requests += 1,
            Err(error) => {
                outcome.failed += 1;
                outcome.first_error.get_or_insert(error);
            }
        }
    }
    outcome
}
