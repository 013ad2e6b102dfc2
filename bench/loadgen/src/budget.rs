//! Scenario 6, budget: the poll economy under the upstream's real rate limit.
//!
//! A simulator that limits the credential as Cloudflare does (1,200 requests per
//! window, blocked for the rest of the window past it) and a gateway with its
//! default budget, reserve and client share in front of it; on one account, many
//! registrations, each `pending` until a random moment of the run and then
//! `in_progress` past its end, all watched by subscribers over several
//! graphql-transport-ws connections from one client and from several (source
//! addresses 127.0.0.1, 127.0.0.2, …); and a light load of queries for domains
//! nobody watches.
//!
//! Every time is scaled by one factor (printed): the budget's window (the
//! gateway's and the simulator's), the poll intervals and the workflows' steps, so
//! that the rotation floor is `--floor` and a run takes `--duration`. The floor is
//! W / B: W watched registrations that move, B the polls per second the gateway's
//! allowance (the budget less its reserve) sustains, its refill rate (the
//! allowance less its burst of a tenth, over the window). A perfect rotation sees
//! every change within the floor.
//!
//! The gateway comes from `--bin-dir` (a previous build can be measured), the
//! simulator from this build, so both builds meet the same upstream.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use futures::{SinkExt, StreamExt, stream};
use rand::Rng;
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::clients::{GraphqlClient, SimulatorControl, load_http_client};
use crate::error::BenchError;
use crate::latency::Percentiles;
use crate::processes::{self, Launch, Service};
use crate::report::Report;
use crate::stack::Setup;

/// Cloudflare's limit: requests per window per user.
const LIMIT: u32 = 1200;
/// Cloudflare's window.
const REAL_WINDOW: Duration = Duration::from_secs(300);
/// The gateway's default reserve (`--budget-reserve`).
const RESERVE: f64 = 0.1;
/// The gateway's default poll intervals, scaled with everything else.
const POLL_INITIAL: Duration = Duration::from_secs(2);
const POLL_MAX: Duration = Duration::from_secs(30);
const POLL_BLOCKED_INITIAL: Duration = Duration::from_secs(60);
const POLL_BLOCKED_MAX: Duration = Duration::from_secs(600);
const SUBSCRIPTION: &str = "subscription($domain: String!) { registrationStatusChanged(domain: $domain) \
    { sequence status { state updatedAt } } }";
const QUERY: &str = "query($domain: String!) { registrationStatus(domain: $domain) { state } }";

/// Budget scenario settings.
#[derive(Debug, Clone, Parser)]
pub(crate) struct BudgetArgs {
    /// Registrations on the one account, every one watched.
    #[arg(long, default_value_t = 1000)]
    pub registrations: usize,
    /// Websocket connections the subscriptions are spread over.
    #[arg(long, default_value_t = 20)]
    pub connections: usize,
    /// Clients (source addresses) they come from: half the connections from the
    /// first, the others spread over the rest.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// The rotation floor the time scale is chosen for (scaled time).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub floor: Duration,
    /// How long the run lasts once every subscription is sent (scaled time).
    #[arg(long, default_value = "270s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Queries for domains nobody watches, as a share of the allowance's rate (0: none).
    #[arg(long, default_value_t = 0.02)]
    pub query_share: f64,
    /// Every registration changes at this moment of the run (scaled time), instead
    /// of each at a random one: all turn `in_progress` at once, and the whole
    /// rotation must go round to show it.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub change_at: Option<Duration>,
}

/// The times of one run, scaled.
struct Scale {
    /// Real seconds per run second.
    factor: f64,
    /// The budget's window, scaled.
    window: Duration,
    /// B: polls per second the allowance sustains, scaled.
    rate: f64,
    /// W / B.
    floor: Duration,
}

impl Scale {
    fn new(args: &BudgetArgs) -> Self {
        let allowance = (f64::from(LIMIT) * (1.0 - RESERVE)).floor();
        let real_rate = (allowance - (allowance / 10.0).floor()) / REAL_WINDOW.as_secs_f64();
        let real_floor = args.registrations as f64 / real_rate;
        let factor = (real_floor / args.floor.as_secs_f64()).max(1.0);
        let rate = real_rate * factor;
        Self {
            factor,
            window: REAL_WINDOW.div_f64(factor),
            rate,
            floor: Duration::from_secs_f64(args.registrations as f64 / rate),
        }
    }

    fn scaled(&self, real: Duration) -> String {
        format!("{}ms", real.div_f64(self.factor).as_millis().max(1))
    }
}

/// What one subscription saw.
#[derive(Debug)]
enum Seen {
    /// Its first status arrived.
    First { id: usize, state: String },
    /// A change arrived; `updated_at` is the upstream's transition time.
    Change {
        id: usize,
        state: String,
        updated_at: Option<DateTime<Utc>>,
        wall: DateTime<Utc>,
    },
    /// An error, or the connection failed.
    Refused { id: usize, why: String },
}

/// Runs the scenario.
pub(crate) async fn run(setup: &Setup, args: &BudgetArgs) -> Result<Report, BenchError> {
    if setup.external.is_some() {
        return Err(BenchError::Unexpected(
            "budget starts its own simulator and gateway (no --gateway-url)".to_owned(),
        ));
    }
    let scale = Scale::new(args);
    let run_secs = args.duration.as_secs_f64();
    // Each registration changes once: at `--change-at`, or at a whole second of the
    // run between the end of the first rotation and the last one-and-a-half floors.
    let (earliest, latest) = match args.change_at {
        Some(at) if at < args.duration => (at.as_secs() as u32, at.as_secs() as u32),
        Some(_) => {
            return Err(BenchError::Unexpected(
                "--change-at must come before the end of --duration".to_owned(),
            ));
        }
        None => (
            (1.2 * scale.floor.as_secs_f64()).ceil() as u32,
            (run_secs - 1.5 * scale.floor.as_secs_f64()).floor() as u32,
        ),
    };
    if args.change_at.is_none() && latest <= earliest {
        return Err(BenchError::Unexpected(format!(
            "--duration must exceed 2.7 floors ({:?})",
            scale.floor
        )));
    }
    let scenarios = scenario_file(earliest, latest, run_secs as u32)?;
    let window = format!("{}ms", scale.window.as_millis());
    let simulator = processes::start(Launch {
        name: "simulator",
        program: &processes::bin_dir(None)?.join("registrar-gateway"),
        args: [
            "simulate",
            "--rate-limit",
            &LIMIT.to_string(),
            "--rate-limit-window",
            &window,
            "--max-workflows",
            "1000000",
            "--scenarios",
            &scenarios.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec(),
        ready_path: "/__sim/stats",
    })
    .await?;
    let control = SimulatorControl::new(&simulator.url)?;
    let per_connection = args.registrations.div_ceil(args.connections.max(1));
    let gateway = start_gateway(setup, &simulator, &scale, &window, args, per_connection).await?;

    let domains: Vec<String> = (0..args.registrations)
        .map(|i| format!("budget-{i}.com"))
        .collect();
    let mut rng = rand::rng();
    let changes: Vec<u32> = domains
        .iter()
        .map(|_| rng.random_range(earliest..=latest))
        .collect();
    stream::iter(domains.iter().zip(&changes))
        .map(|(domain, at)| {
            let control = control.clone();
            let account = setup.account.clone();
            async move {
                control
                    .add_workflow(&account, domain, &format!("budget-{at}"))
                    .await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
    control.reset_stats().await?;
    // The simulator's clock lags the wall clock by the fraction of a second it
    // dropped when it started: transition times read through it are that early.
    let lag = clock_lag(&control).await?;

    let started = Instant::now();
    let stop = CancellationToken::new();
    let (seen, mut events) = unbounded_channel();
    let address: SocketAddr = gateway
        .url
        .trim_start_matches("http://")
        .parse()
        .map_err(|error| BenchError::Unexpected(format!("gateway address: {error}")))?;
    let groups: Vec<Vec<(usize, String)>> = domains
        .iter()
        .cloned()
        .enumerate()
        .collect::<Vec<_>>()
        .chunks(per_connection)
        .map(<[_]>::to_vec)
        .collect();
    for (index, group) in groups.into_iter().enumerate() {
        let source = client_address(index, args.connections, args.clients);
        let (seen, stop) = (seen.clone(), stop.clone());
        tokio::spawn(async move { watch(address, source, group, seen, stop).await });
    }
    drop(seen);
    let queries = (args.query_share > 0.0).then(|| {
        Ok::<_, BenchError>(tokio::spawn(query_load(
            GraphqlClient::new(load_http_client()?, &gateway.url),
            Duration::from_secs_f64(1.0 / (args.query_share * scale.rate).max(1e-3)),
            stop.clone(),
        )))
    });
    let queries = queries.transpose()?;
    let sampler = tokio::spawn(count_lockouts(control.clone(), stop.clone()));

    let mut state: HashMap<usize, String> = HashMap::new();
    let mut first_after = Vec::new();
    let mut detections = Vec::new();
    let mut refused: HashMap<usize, String> = HashMap::new();
    let deadline = started + args.duration;
    loop {
        let event = tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            event = events.recv() => event,
        };
        let Some(event) = event else { break };
        match event {
            Seen::First { id, state: now } => {
                first_after.push(started.elapsed());
                state.insert(id, now);
            }
            Seen::Change {
                id,
                state: now,
                updated_at,
                wall,
            } => {
                if let Some(updated_at) = updated_at {
                    let after = (wall - updated_at).to_std().unwrap_or_default();
                    detections.push(after.saturating_sub(lag));
                }
                state.insert(id, now);
            }
            Seen::Refused { id, why } => {
                refused.entry(id).or_insert(why);
            }
        }
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let stats = control.stats().await?;
    let (query_waits, queries_refused) = match queries {
        Some(queries) => queries.await.unwrap_or_default(),
        None => Default::default(),
    };
    let lockouts = sampler.await.unwrap_or_default();

    let floor = scale.floor.as_secs_f64();
    let gaps = stats
        .longest_gaps_ms
        .get(&setup.account)
        .map(|gaps| gaps.values().copied().max().unwrap_or(0))
        .unwrap_or(0);
    let first_poll = first_after.iter().max().copied().unwrap_or(args.duration);
    let longest_gap = Duration::from_millis(gaps).max(first_poll);
    let allowance = (f64::from(LIMIT) * (1.0 - RESERVE)).floor();
    let allowed = allowance * elapsed.as_secs_f64() / scale.window.as_secs_f64();
    let detection = Percentiles::of(detections.clone());
    let active = state
        .values()
        .filter(|state| matches!(state.as_str(), "PENDING" | "IN_PROGRESS"))
        .count();

    let mut report = Report::new(format!(
        "budget ({} registrations, {} connections, {} clients)",
        args.registrations, args.connections, args.clients
    ));
    // Every registration asked for is active (the default run: the 1,000 the target names).
    let all_active = format!(">= {}", args.registrations);
    report
        .metric("time scale (real seconds per run second)", scale.factor)
        .metric("budget window (scaled)", format!("{:?}", scale.window))
        .metric("floor W / B (scaled seconds)", floor)
        .metric("B (polls/s the allowance sustains)", scale.rate)
        .against("registrations active", active as u64, &all_active)
        .metric(
            "registrations watched",
            domains.len().saturating_sub(refused.len()) as u64,
        )
        .metric("subscribers with a status", state.len() as u64)
        .against("upstream 429 responses", stats.rate_limited, "0")
        .against("upstream lockouts", lockouts, "0")
        .metric("budget used", stats.requests_total as f64 / allowed)
        .metric("changes seen", detections.len() as u64)
        .metric(
            "subscribers that saw their change",
            state.values().filter(|state| *state != "PENDING").count() as u64,
        )
        .against(
            "watched detection p99 / floor",
            detection.map(|p| p.p99_ms / 1000.0 / floor),
            "<= 1.1",
        )
        .metric(
            "watched detection p50 / floor",
            detection.map(|p| p.p50_ms / 1000.0 / floor),
        )
        .against(
            "longest poll gap / floor",
            longest_gap.as_secs_f64() / floor,
            "<= 3",
        )
        .against("subscribers refused", refused.len() as u64, "0")
        .metric(
            "query wait p99 ms",
            Percentiles::of(query_waits).map(|p| p.p99_ms),
        )
        .metric("queries refused", queries_refused);
    if let Some(why) = refused.values().next() {
        report.metric("first refusal", why.clone());
    }
    let _ = std::fs::remove_file(&scenarios);
    Ok(report)
}

/// The gateway from `--bin-dir` with its defaults but for the scaled times, and
/// subscription caps that hold every watch (so a refusal can only be the budget's).
async fn start_gateway(
    setup: &Setup,
    simulator: &Service,
    scale: &Scale,
    window: &str,
    args: &BudgetArgs,
    per_connection: usize,
) -> Result<Service, BenchError> {
    let args = vec![
        "--base-url".to_owned(),
        format!("{}/client/v4", simulator.url),
        "--api-token".to_owned(),
        "bench-token".to_owned(),
        "--account-id".to_owned(),
        setup.account.clone(),
        "--upstream-budget".to_owned(),
        LIMIT.to_string(),
        "--upstream-budget-window".to_owned(),
        window.to_owned(),
        "--poll-initial".to_owned(),
        scale.scaled(POLL_INITIAL),
        "--poll-max".to_owned(),
        scale.scaled(POLL_MAX),
        "--poll-blocked-initial".to_owned(),
        scale.scaled(POLL_BLOCKED_INITIAL),
        "--poll-blocked-max".to_owned(),
        scale.scaled(POLL_BLOCKED_MAX),
        "--max-subscriptions-per-connection".to_owned(),
        per_connection.to_string(),
        "--max-subscriptions-per-client".to_owned(),
        args.registrations.to_string(),
    ];
    processes::start(Launch {
        name: "gateway",
        program: &setup.gateway_bin(),
        args,
        ready_path: "/healthz",
    })
    .await
}

/// One scenario per change time: `pending` for `at` seconds, then `in_progress`
/// past the run, then `succeeded`; written to a temporary file for `--scenarios`.
fn scenario_file(earliest: u32, latest: u32, run: u32) -> Result<PathBuf, BenchError> {
    let scenarios: Vec<Value> = (earliest..=latest)
        .map(|at| {
            json!({
                "name": format!("budget-{at}"),
                "description": "pending until a moment of the run, then in progress past its end",
                "steps": [
                    { "state": "pending", "seconds": at },
                    { "state": "in_progress", "seconds": run * 10 },
                    { "state": "succeeded" }
                ]
            })
        })
        .collect();
    let path = std::env::temp_dir().join(format!("loadgen-budget-{}.json", std::process::id()));
    std::fs::write(&path, json!({ "scenarios": scenarios }).to_string())?;
    Ok(path)
}

/// How far the simulator's workflow clock is behind the wall clock.
async fn clock_lag(control: &SimulatorControl) -> Result<Duration, BenchError> {
    let clock = control.clock().await?;
    let now = clock["now"]
        .as_str()
        .and_then(|now| DateTime::parse_from_rfc3339(now).ok())
        .ok_or_else(|| BenchError::Unexpected(format!("the simulator's clock: {clock}")))?;
    Ok((Utc::now() - now.with_timezone(&Utc))
        .to_std()
        .unwrap_or_default())
}

/// Connection `index`'s source address: the first half from 127.0.0.1 (one
/// client with many connections), the rest over 127.0.0.2 and on.
fn client_address(index: usize, connections: usize, clients: usize) -> Ipv4Addr {
    if index < connections.div_ceil(2) || clients <= 1 {
        return Ipv4Addr::LOCALHOST;
    }
    let other = (index % (clients - 1)) as u8;
    Ipv4Addr::new(127, 0, 0, 2 + other)
}

/// One connection from `source`: subscribes `group`, reports what each saw.
async fn watch(
    gateway: SocketAddr,
    source: Ipv4Addr,
    group: Vec<(usize, String)>,
    seen: UnboundedSender<Seen>,
    stop: CancellationToken,
) {
    let fail = |why: String| {
        for (id, _) in &group {
            let _ = seen.send(Seen::Refused {
                id: *id,
                why: why.clone(),
            });
        }
    };
    let socket = match connect(gateway, source).await {
        Ok(socket) => socket,
        Err(error) => return fail(format!("connect: {error}")),
    };
    let (mut sink, mut messages) = socket.split();
    for (id, domain) in &group {
        let payload = json!({ "query": SUBSCRIPTION, "variables": { "domain": domain } });
        let subscribe = json!({ "id": id.to_string(), "type": "subscribe", "payload": payload });
        if let Err(error) = sink.send(Message::text(subscribe.to_string())).await {
            return fail(format!("subscribe: {error}"));
        }
    }
    let mut firsts = std::collections::HashSet::new();
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = messages.next() => message,
        };
        let Some(Ok(Message::Text(text))) = message else {
            if matches!(message, None | Some(Err(_))) {
                return fail("the connection ended".to_owned());
            }
            continue;
        };
        let wall = Utc::now();
        let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let id = message["id"].as_str().and_then(|id| id.parse().ok());
        match (message["type"].as_str(), id) {
            (Some("ping"), _) => {
                let _ = sink.send(Message::text(r#"{"type":"pong"}"#)).await;
            }
            (Some("next"), Some(id)) if message["payload"]["errors"].is_null() => {
                let status = &message["payload"]["data"]["registrationStatusChanged"]["status"];
                let state = status["state"].as_str().unwrap_or_default().to_owned();
                let change = Seen::Change {
                    id,
                    state: state.clone(),
                    updated_at: status["updatedAt"]
                        .as_str()
                        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                        .map(|at| at.with_timezone(&Utc)),
                    wall,
                };
                if !firsts.insert(id) {
                    let _ = seen.send(change);
                    continue;
                }
                // Every registration starts pending: a first status that is not was
                // polled first after its change, which the subscriber learns of now.
                let moved = state != "PENDING";
                let _ = seen.send(Seen::First { id, state });
                if moved {
                    let _ = seen.send(change);
                }
            }
            (Some("next" | "error"), Some(id)) => {
                let why = message["payload"].to_string();
                let _ = seen.send(Seen::Refused { id, why });
            }
            _ => {}
        }
    }
    let _ = sink.close().await;
}

/// A graphql-transport-ws connection to `gateway` from `source`.
async fn connect(
    gateway: SocketAddr,
    source: Ipv4Addr,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    let tcp = TcpSocket::new_v4()?;
    tcp.bind(SocketAddr::from((source, 0)))?;
    let stream = tcp.connect(gateway).await?;
    let mut request = format!("ws://{gateway}/graphql").into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await?;
    socket
        .send(Message::text(r#"{"type":"connection_init"}"#))
        .await?;
    while let Some(message) = socket.next().await {
        if let Message::Text(text) = message?
            && text.as_str().contains("connection_ack")
        {
            return Ok(socket);
        }
    }
    Err("the connection closed before connection_ack".into())
}

/// Queries for domains nobody watches, one every `every` until `stop`: how long
/// each answered one took, and how many were refused.
async fn query_load(
    client: GraphqlClient,
    every: Duration,
    stop: CancellationToken,
) -> (Vec<Duration>, u64) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (done, mut results) = unbounded_channel();
    let mut sent = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        sent += 1;
        let body = GraphqlClient::body(QUERY, json!({ "domain": format!("other-{sent}.com") }));
        let (client, done) = (client.clone(), done.clone());
        tokio::spawn(async move {
            let asked = Instant::now();
            let answer = client.post(body).await;
            let _ = done.send(answer.map(|_| asked.elapsed()));
        });
    }
    drop(done);
    let mut waits = Vec::new();
    let mut refused = 0;
    while let Some(result) = results.recv().await {
        match result {
            Ok(wait) => waits.push(wait),
            Err(_) => refused += 1,
        }
    }
    (waits, refused)
}

/// Episodes of 429s at the simulator (each one a lockout of the credential for
/// the rest of its window), sampled every 100 ms until `stop`.
async fn count_lockouts(control: SimulatorControl, stop: CancellationToken) -> u64 {
    let mut lockouts = 0;
    let mut last = 0;
    let mut limited = false;
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let Ok(stats) = control.stats().await else {
            continue;
        };
        let now_limited = stats.rate_limited > last;
        if now_limited && !limited {
            lockouts += 1;
        }
        limited = now_limited;
        last = stats.rate_limited;
    }
    lockouts
}
