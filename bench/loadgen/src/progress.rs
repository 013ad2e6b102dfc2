//! What `loadgen` says on stderr while it runs: each scenario as it starts and
//! ends, and every [`EVERY`] how long it has been running, so a long run (a large
//! fan-out, a soak) shows it is alive. The figures go to stdout at the end.

use std::time::Duration;

use tokio::time::Instant;

/// How often a running scenario says so.
const EVERY: Duration = Duration::from_secs(10);

/// Runs `work` (the scenario `name`), saying when it starts, while it runs and when it ends.
pub(crate) async fn reported<T>(name: &str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    eprintln!("[loadgen] {name}: started");
    let mut ticks = tokio::time::interval_at(started + EVERY, EVERY);
    let mut work = std::pin::pin!(work);
    let output = loop {
        tokio::select! {
            output = &mut work => break output,
            _ = ticks.tick() => {
                eprintln!("[loadgen] {name}: running for {} s", started.elapsed().as_secs());
            }
        }
    };
    eprintln!(
        "[loadgen] {name}: finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    output
}
