//! A closed-loop load runner: N tasks each send one request, wait for the answer,
//! and send the next, until a deadline (and at most a fixed count per task).

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::latency::Percentiles;

/// Upper bound on requests per task, so a run ends even if the clock misbehaves.
const MAX_REQUESTS_PER_TASK: u64 = 50_000_000;

/// What a closed-loop run achieved.
#[derive(Debug)]
pub(crate) struct LoadOutcome {
    /// Successful requests.
    pub completed: u64,
    /// Failed requests.
    pub failed: u64,
    /// The first failure seen, to say why.
    pub first_error: Option<String>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Latency of the successful requests.
    pub latency: Option<Percentiles>,
}

impl LoadOutcome {
    /// Successful requests per second.
    pub(crate) fn per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The figures as JSON (for reports).
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "requests": self.completed,
            "failed": self.failed,
            "first_error": self.first_error,
            "seconds": self.elapsed.as_secs_f64(),
            "requests_per_second": self.per_second(),
            "latency": self.latency,
        })
    }
}

/// One task's tally.
#[derive(Default)]
struct TaskTally {
    latencies: Vec<Duration>,
    failed: u64,
    first_error: Option<String>,
}

/// Runs `request` from `concurrency` tasks for `duration`.
pub(crate) async fn closed_loop<F, Fut>(
    concurrency: usize,
    duration: Duration,
    request: F,
) -> LoadOutcome
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(run_task(request.clone(), deadline)))
        .collect();
    let mut latencies = Vec::new();
    let (mut failed, mut first_error) = (0, None);
    for task in tasks {
        let Ok(tally) = task.await else { continue };
        latencies.extend(tally.latencies);
        failed += tally.failed;
        first_error = first_error.or(tally.first_error);
    }
    LoadOutcome {
        completed: latencies.len() as u64,
        failed,
        first_error,
        elapsed: started.elapsed(),
        latency: Percentiles::of(latencies),
    }
}

async fn run_task<F, Fut>(request: F, deadline: Instant) -> TaskTally
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut tally = TaskTally::default();
    for _ in 0..MAX_REQUESTS_PER_TASK {
        let sent = Instant::now();
        if sent >= deadline {
            break;
        }
        match request().await {
            Ok(()) => tally.latencies.push(sent.elapsed()),
            Err(error) => {
                tally.failed += 1;
                tally.first_error.get_or_insert(error);
            }
        }
    }
    tally
}
