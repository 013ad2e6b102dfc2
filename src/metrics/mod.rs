//! Prometheus metrics of the poll economy: how many client lookups each upstream
//! call served, how much budget each credential has left, how many registrations
//! are watched and by whom.
//!
//! This module owns every metric's name, labels and help text; call sites are one
//! line (`metrics.cache_lookup(Lookup::Hit)`). Metrics live in a registry per
//! gateway (prometheus-client), not in a process-global recorder, so several
//! gateways in one process (the test suite) each count only their own work.
//! [`Metrics::disabled`] (`--disable-metrics`) is a handle to nothing: every call
//! is a branch on `None`.

mod budget;
mod labels;
mod process;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use budget::Level as BudgetLevel;
pub use labels::{GraphqlOutcome, Lookup, OperationKind, Protocol, Transport, UpstreamOutcome};

/// Every metric name starts with this (and `_`).
const PREFIX: &str = "registrar_gateway";
/// The media type of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The gateway's metrics; cheap to clone. `Default` is [`Metrics::disabled`].
#[derive(Clone, Default)]
pub struct Metrics {
    instruments: Option<Arc<Instruments>>,
}

struct Instruments {
    registry: Registry,
    upstream_requests: Family<OutcomeLabel, Counter>,
    upstream_duration: Histogram,
    cache_lookups: Family<ResultLabel, Counter>,
    served_age: Histogram,
    pollers_active: Gauge,
    poller_leases_held: Gauge,
    pollers_unshared: Gauge,
    polls: Counter,
    subscriptions_active: Family<ProtocolLabel, Gauge>,
    websocket_connections_active: Gauge,
    events_published: Counter,
    events_delivered: Family<ProtocolLabel, Counter>,
    budget_level: Arc<budget::Remaining>,
    budget_refusals: Counter,
    graphql_requests: Family<GraphqlLabels, Counter>,
    graphql_duration: Family<TransportLabel, Histogram>,
    graphql_compiled: Counter,
    redis_connected: Gauge,
    redis_errors: Counter,
    redis_replicas: Gauge,
    /// The series every request touches, resolved once by [`Instruments::start_at_zero`]
    /// and indexed by label position: a request increments an atomic instead of
    /// looking its labels up in the family's locked map.
    lookup_series: Vec<Counter>,
    graphql_series: Vec<Counter>,
    graphql_duration_series: Vec<Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: UpstreamOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: Lookup,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: Protocol,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: Transport,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GraphqlLabels {
    transport: Transport,
    operation_type: OperationKind,
    outcome: GraphqlOutcome,
}

/// Upstream latencies: 5 ms to about 20 s.
fn upstream_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.005, 2.0, 13)
}

/// Ages of served statuses: 50 ms to about 2 h (terminal statuses live an hour).
fn age_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.05, 2.0, 18)
}

/// GraphQL latencies: 0.5 ms (a cache hit) to about 30 s (the request timeout).
fn graphql_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

impl Metrics {
    /// A fresh registry with every metric at zero, build info and process metrics.
    pub fn new() -> Self {
        let mut instruments = Instruments {
            registry: Registry::with_prefix(PREFIX),
            upstream_requests: Family::default(),
            upstream_duration: Histogram::new(upstream_buckets()),
            cache_lookups: Family::default(),
            served_age: Histogram::new(age_buckets()),
            pollers_active: Gauge::default(),
            poller_leases_held: Gauge::default(),
            pollers_unshared: Gauge::default(),
            polls: Counter::default(),
            subscriptions_active: Family::default(),
            websocket_connections_active: Gauge::default(),
            events_published: Counter::default(),
            events_delivered: Family::default(),
            budget_level: Arc::default(),
            budget_refusals: Counter::default(),
            graphql_requests: Family::default(),
            graphql_duration: Family::new_with_constructor(graphql_buckets),
            graphql_compiled: Counter::default(),
            redis_connected: Gauge::default(),
            redis_errors: Counter::default(),
            redis_replicas: Gauge::default(),
            lookup_series: Vec::new(),
            graphql_series: Vec::new(),
            graphql_duration_series: Vec::new(),
        };
        instruments.start_at_zero();
        instruments.register();
        Self {
            instruments: Some(Arc::new(instruments)),
        }
    }

    /// Metrics that record nothing (`--disable-metrics`, and components built alone).
    pub fn disabled() -> Self {
        Self { instruments: None }
    }

    /// The exposition, in the Prometheus text format; `None` when disabled.
    pub fn render(&self) -> Option<String> {
        let instruments = self.instruments.as_ref()?;
        let mut text = String::with_capacity(8 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &instruments.registry)
            .expect("writing to a String cannot fail");
        Some(text)
    }

    /// One upstream HTTP attempt (retries count each) ended with `outcome` after `elapsed`.
    pub fn upstream_request(&self, outcome: UpstreamOutcome, elapsed: Duration) {
        if let Some(instruments) = &self.instruments {
            let label = OutcomeLabel { outcome };
            instruments.upstream_requests.get_or_create(&label).inc();
            instruments.upstream_duration.observe(elapsed.as_secs_f64());
        }
    }

    /// A client's status lookup was answered as `result`.
    pub fn cache_lookup(&self, result: Lookup) {
        if let Some(instruments) = &self.instruments {
            instruments.lookup_series[result.index()].inc();
        }
    }

    /// A client was served a status the gateway fetched at `fetched_at`: how fresh answers are.
    pub fn served(&self, fetched_at: DateTime<Utc>) {
        if let Some(instruments) = &self.instruments {
            let age = (Utc::now() - fetched_at).to_std().unwrap_or_default();
            instruments.served_age.observe(age.as_secs_f64());
        }
    }

    /// The number of running pollers is now `count`.
    pub fn pollers_active(&self, count: usize) {
        if let Some(instruments) = &self.instruments {
            instruments
                .pollers_active
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// A poller polled (one upstream call at most).
    pub fn poll(&self) {
        if let Some(instruments) = &self.instruments {
            instruments.polls.inc();
        }
    }

    /// A poller published a change of state to its subscribers.
    pub fn event_published(&self) {
        if let Some(instruments) = &self.instruments {
            instruments.events_published.inc();
        }
    }

    /// The counter of subscription events delivered over `protocol`, resolved once
    /// for a connection or stream to count each event it sends.
    pub fn deliveries(&self, protocol: Protocol) -> Deliveries {
        Deliveries(self.instruments.as_ref().map(|instruments| {
            instruments
                .events_delivered
                .get_or_create_owned(&ProtocolLabel { protocol })
        }))
    }

    /// The gauge of live subscriptions over `protocol`, for a connection to hold.
    pub fn subscriptions(&self, protocol: Protocol) -> ActiveGauge {
        let gauge = self.instruments.as_ref().map(|instruments| {
            instruments
                .subscriptions_active
                .get_or_create_owned(&ProtocolLabel { protocol })
        });
        ActiveGauge(gauge)
    }

    /// Counts a poller lease as held by this replica until the returned guard drops.
    pub fn poller_lease(&self) -> Active {
        let gauge = self
            .instruments
            .as_ref()
            .map(|instruments| instruments.poller_leases_held.clone());
        ActiveGauge(gauge).hold()
    }

    /// Counts a poller as polling on its own (Redis unreachable) until the guard drops.
    pub fn poller_unshared(&self) -> Active {
        let gauge = self
            .instruments
            .as_ref()
            .map(|instruments| instruments.pollers_unshared.clone());
        ActiveGauge(gauge).hold()
    }

    /// Counts a websocket connection as open until the returned guard drops.
    pub fn websocket_connection(&self) -> Active {
        let gauge = self
            .instruments
            .as_ref()
            .map(|instruments| instruments.websocket_connections_active.clone());
        ActiveGauge(gauge).hold()
    }

    /// The budget level of the credential whose short fingerprint `credential`
    /// gives (called only when metrics are on, so disabled metrics format nothing).
    pub fn budget_level(&self, credential: impl FnOnce() -> String, level: BudgetLevel) {
        if let Some(instruments) = &self.instruments {
            instruments.budget_level.record(credential(), level);
        }
    }

    /// The budget refused an upstream request (nothing was sent).
    pub fn budget_refusal(&self) {
        if let Some(instruments) = &self.instruments {
            instruments.budget_refusals.inc();
        }
    }

    /// Whether this replica shares state through Redis (true) or runs on local state.
    pub fn redis_connected(&self, connected: bool) {
        if let Some(instruments) = &self.instruments {
            instruments.redis_connected.set(i64::from(connected));
        }
    }

    /// A Redis command failed or timed out.
    pub fn redis_error(&self) {
        if let Some(instruments) = &self.instruments {
            instruments.redis_errors.inc();
        }
    }

    /// The replica registry counted `count` live replicas.
    pub fn redis_replicas(&self, count: u32) {
        if let Some(instruments) = &self.instruments {
            instruments.redis_replicas.set(i64::from(count));
        }
    }

    /// One GraphQL operation over `transport` ended with `outcome` after `elapsed`.
    pub fn graphql_request(
        &self,
        transport: Transport,
        operation_type: OperationKind,
        outcome: GraphqlOutcome,
        elapsed: Duration,
    ) {
        if let Some(instruments) = &self.instruments {
            let series = graphql_series_index(transport, operation_type, outcome);
            instruments.graphql_series[series].inc();
            if let Some(duration) = instruments.graphql_duration_series.get(transport.index()) {
                duration.observe(elapsed.as_secs_f64());
            }
        }
    }

    /// A query answered from a compiled plan (see `graphql::compiled`).
    pub fn compiled_query(&self) {
        if let Some(instruments) = &self.instruments {
            instruments.graphql_compiled.inc();
        }
    }

    /// One GraphQL operation on a websocket (`transport`) ended with `outcome`; it
    /// has no request latency, so only the counter moves.
    pub fn graphql_operation(
        &self,
        transport: Transport,
        operation_type: OperationKind,
        outcome: GraphqlOutcome,
    ) {
        if let Some(instruments) = &self.instruments {
            let series = graphql_series_index(transport, operation_type, outcome);
            instruments.graphql_series[series].inc();
        }
    }
}

/// The position of a GraphQL series in [`Instruments::graphql_series`]: the
/// nested loops of [`Instruments::start_at_zero`], flattened.
fn graphql_series_index(
    transport: Transport,
    operation_type: OperationKind,
    outcome: GraphqlOutcome,
) -> usize {
    (transport.index() * OperationKind::ALL.len() + operation_type.index())
        * GraphqlOutcome::ALL.len()
        + outcome.index()
}

impl Instruments {
    /// Creates every labelled series of a closed label set at zero, so each is
    /// exported (and `rate()` defined) from the first scrape on, not from its first event.
    fn start_at_zero(&mut self) {
        for &outcome in UpstreamOutcome::ALL {
            drop(
                self.upstream_requests
                    .get_or_create(&OutcomeLabel { outcome }),
            );
        }
        self.lookup_series = Lookup::ALL
            .iter()
            .map(|&result| {
                self.cache_lookups
                    .get_or_create_owned(&ResultLabel { result })
            })
            .collect();
        for &protocol in Protocol::ALL {
            drop(
                self.subscriptions_active
                    .get_or_create(&ProtocolLabel { protocol }),
            );
            drop(
                self.events_delivered
                    .get_or_create(&ProtocolLabel { protocol }),
            );
        }
        for &transport in Transport::REQUESTS {
            let duration = self
                .graphql_duration
                .get_or_create_owned(&TransportLabel { transport });
            debug_assert_eq!(transport.index(), self.graphql_duration_series.len());
            self.graphql_duration_series.push(duration);
        }
        for &transport in Transport::ALL {
            for &operation_type in OperationKind::ALL {
                for &outcome in GraphqlOutcome::ALL {
                    let labels = GraphqlLabels {
                        transport,
                        operation_type,
                        outcome,
                    };
                    debug_assert_eq!(
                        graphql_series_index(transport, operation_type, outcome),
                        self.graphql_series.len()
                    );
                    let counter = self.graphql_requests.get_or_create_owned(&labels);
                    self.graphql_series.push(counter);
                }
            }
        }
    }

    /// Registers every metric with its help text (names get the prefix and, for
    /// counters, `_total`).
    fn register(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "upstream_requests",
            "Upstream HTTP requests (each retry counts) by outcome",
            self.upstream_requests.clone(),
        );
        registry.register(
            "upstream_request_duration_seconds",
            "Upstream HTTP request latency, first byte sent to last byte read",
            self.upstream_duration.clone(),
        );
        registry.register(
            "cache_lookups",
            "Client status lookups by how they were answered: hit (fresh in cache), miss (this lookup called upstream), collapsed (joined a load in flight), stale (served stale because the upstream failed)",
            self.cache_lookups.clone(),
        );
        registry.register(
            "served_age_seconds",
            "Age of the status served to each client lookup (now minus when the gateway fetched it)",
            self.served_age.clone(),
        );
        registry.register(
            "pollers_active",
            "Shared pollers running (one per watched registration and credential)",
            self.pollers_active.clone(),
        );
        registry.register(
            "poller_leases_held",
            "Registrations this replica polls for all replicas (it holds their lease in Redis)",
            self.poller_leases_held.clone(),
        );
        registry.register(
            "pollers_unshared",
            "Pollers polling on their own because Redis cannot be reached (they rejoin when it answers)",
            self.pollers_unshared.clone(),
        );
        registry.register(
            "polls",
            "Polls made by the shared pollers (each one upstream call at most)",
            self.polls.clone(),
        );
        registry.register(
            "subscriptions_active",
            "Live GraphQL subscriptions by websocket protocol",
            self.subscriptions_active.clone(),
        );
        registry.register(
            "websocket_connections_active",
            "Open GraphQL websocket connections",
            self.websocket_connections_active.clone(),
        );
        registry.register(
            "events_published",
            "State changes published by pollers to their subscribers (once per change, however many subscribe)",
            self.events_published.clone(),
        );
        registry.register(
            "subscription_events_delivered",
            "Subscription events sent to subscribers, one per event each subscriber received, by protocol",
            self.events_delivered.clone(),
        );
        registry.register_collector(Box::new(Arc::clone(&self.budget_level)));
        registry.register(
            "budget_refusals",
            "Upstream requests the gateway's own budget refused (nothing was sent)",
            self.budget_refusals.clone(),
        );
        registry.register(
            "graphql_requests",
            "GraphQL operations by transport, operation type and outcome",
            self.graphql_requests.clone(),
        );
        registry.register(
            "graphql_request_duration_seconds",
            "GraphQL-over-HTTP latency, request to response headers (a stream's first headers), by transport",
            self.graphql_duration.clone(),
        );
        registry.register(
            "graphql_compiled_queries",
            "GraphQL queries answered from the compiled plan of their document, without async-graphql's validation and execution (also counted in graphql_requests)",
            self.graphql_compiled.clone(),
        );
        registry.register(
            "redis_connected",
            "1 while this replica shares state through Redis (--redis-url), 0 while it runs on local state (Redis unreachable, or not configured)",
            self.redis_connected.clone(),
        );
        registry.register(
            "redis_errors",
            "Redis commands that failed or timed out",
            self.redis_errors.clone(),
        );
        registry.register(
            "redis_replicas",
            "Live gateway replicas in the Redis replica registry at the last heartbeat (0 without Redis)",
            self.redis_replicas.clone(),
        );
        registry.register(
            "build",
            "The running gateway's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(process::ProcessCollector));
    }
}

/// A gauge of things that are open (subscriptions, connections), or nothing when
/// metrics are off.
#[derive(Clone, Debug, Default)]
pub struct ActiveGauge(Option<Gauge>);

impl ActiveGauge {
    /// Counts one more until the returned guard drops.
    pub fn hold(&self) -> Active {
        if let Some(gauge) = &self.0 {
            gauge.inc();
        }
        Active(self.0.clone())
    }
}

/// Subscription events sent over one protocol: one [`Deliveries::one`] per event a
/// subscriber received (nothing when metrics are off).
#[derive(Clone, Debug, Default)]
pub struct Deliveries(Option<Counter>);

impl Deliveries {
    /// One event sent to one subscriber.
    pub fn one(&self) {
        if let Some(counter) = &self.0 {
            counter.inc();
        }
    }
}

/// One open thing, counted in its gauge until dropped.
#[derive(Debug)]
pub struct Active(Option<Gauge>);

impl Drop for Active {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}
