//! Scenario 3, fan-out: S subscribers over M registrations, once per transport in
//! the same run, each against a fresh gateway: websockets (graphql-transport-ws,
//! many subscriptions per connection, [`connection`]) and GraphQL over SSE
//! (graphql-sse distinct connections mode, one HTTP connection per subscriber,
//! [`sse`]). Measures the upstream polls
//! while subscribers idle (one poller per registration means about one poll per
//! registration per poll interval), the time from the simulator's state change
//! (a manual clock advance) to each subscriber's event, the time from the moment
//! the poll's answer reached the gateway (the event's `fetchedAt`) to each
//! subscriber's event (the gateway's own fan-out cost, poll interval excluded),
//! and the gateway's RSS before, during and after. With `--replicas N` the
//! subscribers are spread round-robin over N gateways sharing a Redis, and RSS
//! is summed over them.

mod connection;
mod sse;

use std::time::Duration;

use clap::{Parser, ValueEnum};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::BenchError;
use crate::latency::Percentiles;
use crate::report::Report;
use crate::stack::{Setup, Stack};
use connection::{Event, Kind};

/// The demo script used: pending 10 s, in progress 20 s, then succeeded.
const SCRIPT: &str = "succeeds";
/// Clock advance that moves every workflow from pending to in progress.
const TO_IN_PROGRESS: f64 = 10.0;
/// Clock advance that then completes every workflow.
const TO_SUCCEEDED: f64 = 20.0;
/// The gateway's default `--max-connections`.
const GATEWAY_DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Connections allowed beyond the subscribers' (control requests, RSS probes).
const CONNECTION_HEADROOM: usize = 64;
/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 16;

/// How subscribers reach the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// graphql-transport-ws, `--per-connection` subscriptions per websocket.
    Websocket,
    /// graphql-sse distinct connections mode, one HTTP connection per subscriber.
    Sse,
}

impl Transport {
    fn scenario(self) -> &'static str {
        match self {
            Self::Websocket => "fan-out (websocket subscriptions)",
            Self::Sse => "fan-out (SSE subscriptions)",
        }
    }
}

/// Fan-out settings.
#[derive(Debug, Clone, Parser)]
pub(crate) struct FanoutArgs {
    /// Subscribers (S), up to 100,000 (over SSE, one socket each: raise `ulimit -n`).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub subscribers: u32,
    /// Transports measured, one after the other, each against a fresh gateway.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "websocket,sse"
    )]
    pub transports: Vec<Transport>,
    /// Registrations they watch (M); subscriber i watches registration i mod M.
    #[arg(long, default_value_t = 100)]
    pub registrations: usize,
    /// Subscriptions per websocket connection (the gateway's cap is 100 by default;
    /// SSE holds one per connection).
    #[arg(long, default_value_t = 100)]
    pub per_connection: usize,
    /// The gateway's poll interval (`--poll-initial` and `--poll-max`) and active TTL.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// How long upstream polls are counted while subscribers idle.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub poll_window: Duration,
    /// Deadline for each phase (all subscribed, all changed, all completed).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub phase_deadline: Duration,
}

impl FanoutArgs {
    fn gateway_flags(&self) -> Vec<String> {
        let poll = humantime::format_duration(self.poll_interval).to_string();
        let total = self.subscribers.max(100_000).to_string();
        [
            ("--cache-ttl-active", poll.as_str()),
            ("--poll-initial", &poll),
            ("--poll-max", &poll),
            ("--poll-multiplier", "1.5"),
            ("--poll-jitter", "0.1"),
            (
                "--max-subscriptions-per-connection",
                &self.per_connection.to_string(),
            ),
            ("--max-subscriptions", &total),
        ]
        .iter()
        .flat_map(|(flag, value)| [(*flag).to_owned(), (*value).to_owned()])
        .chain(self.connection_flags())
        .collect()
    }

    /// `--max-connections` when the run opens more sockets than the gateway's default
    /// allows (left out below it, so that builds from before the flag still run).
    fn connection_flags(&self) -> Vec<String> {
        let subscribers = self.subscribers as usize;
        let sockets = match self.transports.contains(&Transport::Sse) {
            true => subscribers,
            false => subscribers.div_ceil(self.per_connection.max(1)),
        };
        match sockets > GATEWAY_DEFAULT_MAX_CONNECTIONS {
            true => vec![
                "--max-connections".to_owned(),
                (sockets + CONNECTION_HEADROOM).to_string(),
            ],
            false => Vec::new(),
        }
    }
}

/// RSS of the gateway before, during and after the fan-out, in KiB.
#[derive(Debug, Default)]
struct Rss {
    before: Option<u64>,
    during: Option<u64>,
    after: Option<u64>,
    /// (subscribers with their first event, RSS KiB) while subscribing.
    curve: Vec<(usize, u64)>,
}

/// Runs the fan-out scenario over each transport.
pub(crate) async fn run(setup: &Setup, args: &FanoutArgs) -> Result<Vec<Report>, BenchError> {
    let mut reports = Vec::with_capacity(args.transports.len());
    for transport in &args.transports {
        reports.push(run_over(setup, args, *transport).await?);
    }
    Ok(reports)
}

/// Runs the fan-out scenario over one transport, against its own gateway.
async fn run_over(
    setup: &Setup,
    args: &FanoutArgs,
    transport: Transport,
) -> Result<Report, BenchError> {
    let stack = setup.stack(&args.gateway_flags()).await?;
    let domains = create_workflows(setup, &stack, args).await?;
    let mut rss = Rss {
        before: stack.rss_kib(),
        ..Rss::default()
    };
    let (sender, mut events) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let tasks = open_spread(&stack, &domains, args, transport, &sender, &stop).await?;
    drop(sender);
    let subscribers = args.subscribers as usize;
    let initial = collect(
        &mut events,
        subscribers,
        Kind::Initial,
        args.phase_deadline,
        |count| {
            let step = (subscribers / 10).max(1);
            if count % step == 0 {
                rss.curve.extend(stack.rss_kib().map(|kib| (count, kib)));
            }
        },
    )
    .await;
    rss.during = stack.rss_kib();
    let polls = count_polls(setup, &stack, &domains, args).await?;
    let advanced = Instant::now();
    stack.control.advance_clock(TO_IN_PROGRESS).await?;
    let changed = collect(
        &mut events,
        subscribers,
        Kind::Changed,
        args.phase_deadline,
        drop,
    )
    .await;
    stack.control.advance_clock(TO_SUCCEEDED).await?;
    let completed = collect(
        &mut events,
        subscribers,
        Kind::Completed,
        args.phase_deadline,
        drop,
    )
    .await;
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    rss.after = stack.rss_kib();
    let latencies = changed
        .times
        .iter()
        .map(|at| at.saturating_duration_since(advanced))
        .collect();
    let fan_out = Percentiles::of(changed.from_fetch.clone());
    let phases = Phases {
        initial,
        changed,
        completed,
    };
    Ok(report(
        transport,
        args,
        polls,
        Percentiles::of(latencies),
        fan_out,
        &phases,
        &rss,
    ))
}

/// Opens the subscribers spread round-robin over the stack's gateways: subscriber i
/// goes to replica i mod N and watches registration i mod M, as with one gateway.
async fn open_spread(
    stack: &Stack,
    domains: &[String],
    args: &FanoutArgs,
    transport: Transport,
    sender: &mpsc::UnboundedSender<Vec<Event>>,
    stop: &CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, BenchError> {
    let gateways: Vec<_> = stack.gateways().collect();
    let replicas = gateways.len();
    let mut tasks = Vec::new();
    for (replica, gateway) in gateways.into_iter().enumerate() {
        // This replica's subscribers, in order, each with the registration it watches.
        let watched: Vec<String> = (replica..args.subscribers as usize)
            .step_by(replicas)
            .map(|id| domains[id % domains.len()].clone())
            .collect();
        if watched.is_empty() {
            continue;
        }
        let mut share = args.clone();
        share.subscribers = watched.len() as u32;
        let url = format!("{}/graphql", gateway.url);
        let (events, stop) = (sender.clone(), stop);
        tasks.extend(match transport {
            Transport::Websocket => {
                let ws_url = url.replacen("http://", "ws://", 1);
                connection::open_all(&ws_url, &watched, &share, events, stop).await?
            }
            Transport::Sse => sse::open_all(&url, &watched, &share, events, stop).await?,
        });
    }
    Ok(tasks)
}

async fn create_workflows(
    setup: &Setup,
    stack: &Stack,
    args: &FanoutArgs,
) -> Result<Vec<String>, BenchError> {
    let mut domains = Vec::with_capacity(args.registrations);
    for index in 0..args.registrations {
        let domain = format!("fanout-{index}.com");
        stack
            .control
            .add_workflow(&setup.account, &domain, SCRIPT)
            .await?;
        domains.push(domain);
    }
    Ok(domains)
}

/// Upstream polls of the watched registrations over the poll window, subscribers idle.
async fn count_polls(
    setup: &Setup,
    stack: &Stack,
    domains: &[String],
    args: &FanoutArgs,
) -> Result<u64, BenchError> {
    stack.control.reset_stats().await?;
    // A measurement window, not a synchronisation: polls are counted over a fixed time.
    tokio::time::sleep(args.poll_window).await;
    let stats = stack.control.stats().await?;
    Ok(stats.requests_for(&setup.account, domains.iter().map(String::as_str)))
}

/// Events of one kind received in a phase, and failures seen meanwhile.
#[derive(Debug, Default)]
struct Collected {
    times: Vec<Instant>,
    /// From the event's `fetchedAt` to its reading, for events that carry one.
    from_fetch: Vec<Duration>,
    failures: usize,
    first_failure: Option<String>,
}

/// The three phases' events.
struct Phases {
    initial: Collected,
    changed: Collected,
    completed: Collected,
}

/// Receives events until `want` of `kind` (or failures) arrived, or the deadline
/// passed. Events come in batches (each connection's burst), read many at a time.
async fn collect(
    events: &mut mpsc::UnboundedReceiver<Vec<Event>>,
    want: usize,
    kind: Kind,
    deadline: Duration,
    mut on_event: impl FnMut(usize),
) -> Collected {
    let deadline = Instant::now() + deadline;
    let mut collected = Collected::default();
    let mut batches = Vec::new();
    while collected.times.len() + collected.failures < want {
        let received = tokio::time::timeout_at(deadline, events.recv_many(&mut batches, 64));
        if !matches!(received.await, Ok(1..)) {
            break;
        }
        for event in batches.drain(..).flatten() {
            match event.kind {
                Kind::Failed(reason) => {
                    collected.failures += 1;
                    collected.first_failure.get_or_insert(reason);
                }
                received if received == kind => {
                    collected.times.push(event.at);
                    let from_fetch = event
                        .fetched_at
                        .and_then(|fetched| (event.wall - fetched).to_std().ok());
                    collected.from_fetch.extend(from_fetch);
                    on_event(collected.times.len());
                }
                _ => {}
            }
        }
    }
    collected
}

fn report(
    transport: Transport,
    args: &FanoutArgs,
    polls: u64,
    latency: Option<Percentiles>,
    fan_out: Option<Percentiles>,
    phases: &Phases,
    rss: &Rss,
) -> Report {
    let subscribers = u64::from(args.subscribers);
    let intervals = args.poll_window.as_secs_f64() / args.poll_interval.as_secs_f64();
    let per_registration =
        polls as f64 / args.registrations.max(1) as f64 / intervals.max(f64::EPSILON);
    let per_subscriber = rss
        .before
        .zip(rss.during)
        .map(|(before, during)| during.saturating_sub(before) as f64 / subscribers as f64);
    let per_connection = match transport {
        Transport::Websocket => args.per_connection,
        Transport::Sse => 1,
    };
    let mut report = Report::new(transport.scenario());
    report
        .metric("subscribers (S)", subscribers)
        .metric("registrations (M)", args.registrations as u64)
        .metric("subscriptions per connection", per_connection as u64)
        .metric("poll interval ms", args.poll_interval.as_millis() as u64)
        .metric(
            "subscribed (first event received)",
            phases.initial.times.len() as u64,
        )
        .metric("upstream polls in poll window", polls)
        .metric("poll window s", args.poll_window.as_secs_f64())
        .against(
            "polls per registration per interval",
            per_registration,
            "~1 (one poller each)",
        )
        .metric("change events received", phases.changed.times.len() as u64)
        .metric("change-to-event p50 ms", latency.map(|p| p.p50_ms))
        .against(
            "change-to-event p99 ms",
            latency.map(|p| p.p99_ms),
            "<= 100 (10k/100), <= 250 (50k/500)",
        )
        .metric("change-to-event max ms", latency.map(|p| p.max_ms))
        .metric("poll answer to event p50 ms", fan_out.map(|p| p.p50_ms))
        .against(
            "poll answer to event p99 ms",
            fan_out.map(|p| p.p99_ms),
            "<= 25 (10k/100)",
        )
        .metric("poll answer to event max ms", fan_out.map(|p| p.max_ms))
        .metric("completed", phases.completed.times.len() as u64)
        .metric(
            "failures",
            (phases.initial.failures + phases.changed.failures + phases.completed.failures) as u64,
        )
        .metric("gateway RSS before KiB", rss.before)
        .metric("gateway RSS during KiB", rss.during)
        .metric("gateway RSS after KiB", rss.after)
        .against(
            "RSS per idle subscriber KiB",
            per_subscriber,
            "<= 10 (100k)",
        )
        .series("latency", serde_json::json!(latency))
        .series("poll_answer_to_event", serde_json::json!(fan_out))
        .series("rss_curve", serde_json::json!(rss.curve));
    let failure = [&phases.initial, &phases.changed, &phases.completed]
        .into_iter()
        .find_map(|phase| phase.first_failure.clone());
    if let Some(failure) = failure {
        report.metric("first failure", failure);
    }
    report
}
