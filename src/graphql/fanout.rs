//! Resolve once, send many. A state change reaches every subscriber of a
//! registration at the same instant, and async-graphql resolves a subscription's
//! selection set once per subscriber per event: with 10,000 subscribers that was the
//! gateway's largest cost after polling (BENCHMARKS.md). Here subscribers that asked
//! for the same thing share one execution: one async-graphql stream per distinct
//! (document text, operation name, variables, credential scope), run in a task of its
//! own, whose every result is wrapped in a [`FanoutResponse`] that is serialised (and
//! framed, per transport) once however many subscribers send it. The execution
//! hands each result to its subscribers: pushed to the queue of a transport that
//! multiplexes many of them ([`Recipient`]: graphql-transport-ws, one queue per
//! connection, woken once per burst), or read from a broadcast (SSE, multipart,
//! the legacy protocol, one subscriber per stream).
//!
//! A shared execution starts with its first subscriber and is dropped with its last
//! (which releases its share of the registration's poller). A subscriber that joins
//! late gets the execution's latest result first (the status now), then every later
//! one, in order. Only what is the same for every subscriber is shared: the key holds
//! the credential's fingerprint (results never cross credentials), and a subscription
//! that resumes (`afterSequence`, SSE `Last-Event-ID`) or is not a plain subscription
//! runs on its own. Per-subscriber limits stay per subscriber: each one takes its
//! connection's place and its client's share of open subscriptions, and counts against
//! `--max-subscriptions`. A subscriber joining a running execution spends no lookup
//! (its registration is being polled, so fresh); only the subscriber that starts an
//! execution has its own Cloudflare credential counted against its client's share of
//! new credentials.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{ErrorExtensions, PathSegment, Pos, Request, Response, Value};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

use super::data_of;
use super::documents::selected_operation;
use super::error::GraphqlError;
use super::subscription::{LastEventId, SubscriptionPlace};
use crate::credential::{Credential, Fingerprint};
use crate::fair_share::SubscriptionHold;
use crate::poller::WatchRefused;
use crate::sync::LockUnpoisoned;

/// How many framings a transport may memoise on one result (see [`FanoutResponse::frame`]).
pub const FRAME_SLOTS: usize = 3;

/// Results an execution keeps for a subscriber that has not read them yet. A
/// subscription yields one result per state change (a handful per workflow); a
/// subscriber further behind skips to the oldest kept.
const BACKLOG: usize = 16;

/// One result of an operation, serialised at most once, and framed at most once
/// per transport framing, however many subscribers send it.
#[derive(Debug)]
pub struct FanoutResponse {
    response: Response,
    /// The registration sequence of the result, when it carries one.
    sequence: Option<u64>,
    json: OnceLock<Bytes>,
    frames: [OnceLock<Bytes>; FRAME_SLOTS],
}

impl FanoutResponse {
    /// Wraps one result.
    pub fn new(response: Response) -> Self {
        Self {
            sequence: sequence_of(&response),
            response,
            json: OnceLock::new(),
            frames: Default::default(),
        }
    }

    /// The result.
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The registration sequence of the result: the `sequence` of its one top-level
    /// field (`registrationStatusChanged { sequence ... }`), when selected.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// The result as JSON, encoded on first use.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| {
            serde_json::to_vec(&self.response)
                .map(Bytes::from)
                .unwrap_or_else(|error| {
                    let message = format!("could not encode the response: {error}");
                    let body = serde_json::json!({ "errors": [{
                        "message": message,
                        "extensions": { "code": "INTERNAL_SERVER_ERROR" },
                    }] });
                    Bytes::from(body.to_string())
                })
        })
    }

    /// A transport's framing of the result in `slot` (below [`FRAME_SLOTS`]),
    /// built by `build` on first use and shared after.
    pub fn frame(&self, slot: usize, build: impl FnOnce(&Self) -> Bytes) -> Bytes {
        match self.frames.get(slot) {
            Some(frame) => frame.get_or_init(|| build(self)).clone(),
            None => build(self),
        }
    }

    /// A copy of the result, for a transport that serialises results itself.
    pub fn to_response(&self) -> Response {
        let original = &self.response;
        let mut copy = Response::new(original.data.clone());
        copy.errors = original.errors.clone();
        copy.extensions = original.extensions.clone();
        copy.cache_control = original.cache_control;
        copy.http_headers = original.http_headers.clone();
        copy
    }
}

/// A subscriber's place on its connection and in its client's share of open
/// subscriptions, held for as long as it listens.
pub(super) type Places = (Option<SubscriptionPlace>, Option<SubscriptionHold>);

/// What makes two subscriptions the same execution.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    /// The caller's own credential; `None` for the gateway's.
    scope: Option<Fingerprint>,
    query: String,
    operation_name: Option<String>,
    /// The variables, as JSON (async-graphql's are ordered by name).
    variables: String,
}

/// The subscription's one root field, for a per-subscriber refusal.
pub(super) struct RootField {
    response_key: String,
    pos: Pos,
}

/// The key of `request` when it may share an execution: a plain subscription (one
/// root field, no directive on it, no `afterSequence`), not resuming from an SSE
/// `Last-Event-ID` (anything else runs on its own and gets its own errors).
pub(super) fn shareable(
    request: &Request,
    document: &ExecutableDocument,
    credential: Option<&Credential>,
) -> Option<(Key, RootField)> {
    if data_of::<LastEventId>(&request.data).is_some() {
        return None;
    }
    let variables = serde_json::to_string(&request.variables).ok()?;
    let operation_name = request.operation_name.clone();
    let operation = selected_operation(document, operation_name.as_deref())?;
    if operation.node.ty != OperationType::Subscription {
        return None;
    }
    let [selection] = operation.node.selection_set.node.items.as_slice() else {
        return None;
    };
    let Selection::Field(field) = &selection.node else {
        return None;
    };
    let resumes = field
        .node
        .arguments
        .iter()
        .any(|(name, _)| name.node == "afterSequence");
    if resumes || !field.node.directives.is_empty() {
        return None;
    }
    let root = RootField {
        response_key: field.node.response_key().node.to_string(),
        pos: field.pos,
    };
    let key = Key {
        scope: credential.map(Credential::fingerprint),
        query: request.query.clone(),
        operation_name,
        variables,
    };
    Some((key, root))
}

/// The shared executions, and the count of their subscribers.
pub(super) struct Fanout {
    executions: Mutex<Executions>,
    /// Subscribers of shared executions now.
    subscribers: AtomicUsize,
    /// `--max-subscriptions`: the most subscribers shared executions may hold.
    max_subscribers: usize,
}

#[derive(Default)]
struct Executions {
    /// The live execution of each key; an entry whose execution was dropped or
    /// ended is replaced by the next subscriber.
    by_key: HashMap<Arc<Key>, (u64, Weak<Execution>)>,
    next_id: u64,
}

/// One shared execution. Its subscribers hold it; dropping the last one stops it.
struct Execution {
    id: u64,
    key: Arc<Key>,
    fanout: Arc<Fanout>,
    published: Arc<Mutex<Published>>,
    task: AbortHandle,
}

/// What an execution has published so far.
struct Published {
    /// The latest result: what a subscriber joining now gets first.
    latest: Option<Arc<FanoutResponse>>,
    /// `None` once the execution's stream ended: subscribers read what is left, then end.
    sender: Option<broadcast::Sender<Arc<FanoutResponse>>>,
    /// The subscribers whose transport takes results pushed (see [`Recipient`]), by id.
    deliveries: HashMap<u64, Box<dyn Recipient>>,
    next_delivery: u64,
}

impl Published {
    fn new(
        first: Option<Arc<FanoutResponse>>,
        sender: broadcast::Sender<Arc<FanoutResponse>>,
    ) -> Self {
        Self {
            latest: first,
            sender: Some(sender),
            deliveries: HashMap::new(),
            next_delivery: 0,
        }
    }

    /// A receiver of every later result, and the latest one to send first; `None`
    /// once the execution ended.
    fn receiver(&self) -> Option<Joined> {
        let receiver = self.sender.as_ref()?.subscribe();
        Some((self.latest.clone(), receiver))
    }

    /// Hands `delivery` the latest result and registers it for every later one:
    /// its id, or `delivery` back once the execution ended.
    fn deliver_to(&mut self, delivery: Box<dyn Recipient>) -> Result<u64, Box<dyn Recipient>> {
        if self.sender.is_none() {
            return Err(delivery);
        }
        if let Some(latest) = &self.latest {
            delivery.deliver(Some(Arc::clone(latest)));
        }
        self.next_delivery += 1;
        self.deliveries.insert(self.next_delivery, delivery);
        Ok(self.next_delivery)
    }
}

/// What a stream subscriber joins with: the latest result, to send first, and a
/// receiver of every later one.
type Joined = (
    Option<Arc<FanoutResponse>>,
    broadcast::Receiver<Arc<FanoutResponse>>,
);

/// Where a subscriber's results go when its transport takes them pushed rather
/// than reading a stream: a websocket connection multiplexing many subscribers
/// is woken once per burst and writes each subscriber's frame, instead of
/// polling one stream per subscriber. Called with the execution's lock held:
/// it must not block (a full queue is the transport's to handle).
pub trait Recipient: Send + Sync + 'static {
    /// The next result, in order; `None` once the execution ended (the last call).
    fn deliver(&self, result: Option<Arc<FanoutResponse>>);
}

/// How a subscription runs: sharing an execution that pushes its results to the
/// subscriber's [`Recipient`], or on its own as a stream.
pub enum Subscribed {
    /// Joined a shared execution; results go to the delivery until this is dropped.
    Delivered(Delivered),
    /// Not shareable, or refused: its results.
    Stream(BoxStream<'static, Arc<FanoutResponse>>),
}

/// A subscriber of a shared execution whose results are pushed to its
/// [`Recipient`]; dropping it unsubscribes (and stops the execution with its last
/// subscriber).
pub struct Delivered {
    id: u64,
    member: Member,
}

impl Drop for Delivered {
    fn drop(&mut self) {
        let removed = self
            .member
            .execution
            .published
            .lock_unpoisoned()
            .deliveries
            .remove(&self.id);
        // Dropped outside the lock: a delivery may own anything.
        drop(removed);
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        self.task.abort();
        self.fanout.forget(&self.key, self.id);
    }
}

impl Fanout {
    /// No execution yet; at most `max_subscribers` subscribers at once.
    pub(super) fn new(max_subscribers: usize) -> Self {
        Self {
            executions: Mutex::default(),
            subscribers: AtomicUsize::new(0),
            max_subscribers,
        }
    }

    /// Subscribes to the execution of `key`, starting it from `request` (through
    /// `run`) when none runs. `places` are the subscriber's place on its connection
    /// and in its client's share, held for as long as it listens. Past `--max-subscriptions`, the subscriber gets the
    /// refusal its own execution would have got.
    pub(super) fn join(
        self: &Arc<Self>,
        (key, root): (Key, RootField),
        request: Request,
        places: Places,
        run: impl FnOnce(Request) -> BoxStream<'static, Response>,
    ) -> BoxStream<'static, Arc<FanoutResponse>> {
        let Some(counted) = self.count() else {
            return self.refused(&root);
        };
        let (execution, (first, receiver)) =
            self.attach(key, request, run, |published| published.receiver());
        let subscriber = Subscriber {
            first,
            receiver,
            _member: Member {
                execution,
                _places: places,
                _counted: counted,
            },
        };
        futures::stream::unfold(subscriber, |mut subscriber| async move {
            let item = subscriber.next().await?;
            Some((item, subscriber))
        })
        .boxed()
    }

    /// [`Fanout::join`], with the execution pushing each result (the latest
    /// first) to `delivery` instead of the subscriber reading a stream.
    pub(super) fn join_delivered(
        self: &Arc<Self>,
        (key, root): (Key, RootField),
        request: Request,
        places: Places,
        run: impl FnOnce(Request) -> BoxStream<'static, Response>,
        delivery: Box<dyn Recipient>,
    ) -> Subscribed {
        let Some(counted) = self.count() else {
            return Subscribed::Stream(self.refused(&root));
        };
        let mut delivery = Some(delivery);
        let (execution, id) = self.attach(key, request, run, |published| {
            match published.deliver_to(delivery.take()?) {
                Ok(id) => Some(id),
                Err(back) => {
                    delivery = Some(back);
                    None
                }
            }
        });
        Subscribed::Delivered(Delivered {
            id,
            member: Member {
                execution,
                _places: places,
                _counted: counted,
            },
        })
    }

    /// The execution of `key`, started from `request` (through `run`) when none
    /// runs or the one registered ended, and what `attach` made of its published
    /// state under its lock (`None`: it ended, start another).
    fn attach<T>(
        self: &Arc<Self>,
        key: Key,
        request: Request,
        run: impl FnOnce(Request) -> BoxStream<'static, Response>,
        mut attach: impl FnMut(&mut Published) -> Option<T>,
    ) -> (Arc<Execution>, T) {
        // Declared before the guard so that it is dropped after it: dropping an
        // execution takes the lock.
        let stale: Option<Arc<Execution>>;
        let mut executions = self.executions.lock_unpoisoned();
        let live = executions
            .by_key
            .get(&key)
            .and_then(|(_, execution)| execution.upgrade());
        let joined = live
            .as_ref()
            .and_then(|execution| attach(&mut execution.published.lock_unpoisoned()));
        let attached = match (live, joined) {
            (Some(execution), Some(joined)) => {
                stale = None;
                (execution, joined)
            }
            (ended, _) => {
                stale = ended;
                self.start(&mut executions, key, request, run, attach)
            }
        };
        drop(executions);
        drop(stale);
        attached
    }

    /// The one result of a subscriber refused past `--max-subscriptions`.
    fn refused(&self, root: &RootField) -> BoxStream<'static, Arc<FanoutResponse>> {
        let refused = Arc::new(FanoutResponse::new(self.refusal(root)));
        futures::stream::once(async move { refused }).boxed()
    }

    /// Starts the execution of `key` and registers it, with `attach` run on its
    /// published state before anything is published. Its first result is taken
    /// at once when it is ready (a request error is, so that HTTP can still answer
    /// 400); the rest is published by a task of its own.
    fn start<T>(
        self: &Arc<Self>,
        executions: &mut Executions,
        key: Key,
        request: Request,
        run: impl FnOnce(Request) -> BoxStream<'static, Response>,
        attach: impl FnOnce(&mut Published) -> Option<T>,
    ) -> (Arc<Execution>, T) {
        let mut results = run(request);
        // Dropping a pending `next()` loses nothing: the stream keeps its state.
        let first = results
            .next()
            .now_or_never()
            .flatten()
            .map(|response| Arc::new(FanoutResponse::new(response)));
        let (sender, _) = broadcast::channel(BACKLOG);
        let mut published = Published::new(first, sender);
        // Before the execution publishes anything, so that the first subscriber misses nothing.
        let attached = attach(&mut published).expect("an execution not started has not ended");
        let published = Arc::new(Mutex::new(published));
        let key = Arc::new(key);
        executions.next_id += 1;
        let id = executions.next_id;
        let publishing = publish(
            results,
            Arc::clone(&published),
            Arc::clone(self),
            Arc::clone(&key),
            id,
        );
        let task = tokio::spawn(publishing).abort_handle();
        let execution = Arc::new(Execution {
            id,
            key: Arc::clone(&key),
            fanout: Arc::clone(self),
            published,
            task,
        });
        executions
            .by_key
            .insert(key, (id, Arc::downgrade(&execution)));
        (execution, attached)
    }

    /// Removes execution `id` of `key` from the registry (a later one under the same key stays).
    fn forget(&self, key: &Key, id: u64) {
        let mut executions = self.executions.lock_unpoisoned();
        if executions
            .by_key
            .get(key)
            .is_some_and(|(registered, _)| *registered == id)
        {
            executions.by_key.remove(key);
        }
    }

    /// Counts one more subscriber, unless the bound is reached.
    fn count(self: &Arc<Self>) -> Option<CountedSubscriber> {
        self.subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count < self.max_subscribers).then_some(count + 1)
            })
            .ok()?;
        Some(CountedSubscriber(Arc::clone(self)))
    }

    /// What the subscription's resolver answers past the gateway-wide bound.
    fn refusal(&self, root: &RootField) -> Response {
        let refused = WatchRefused::TooManyWatchers(self.max_subscribers);
        let error = GraphqlError::TooManySubscriptions(refused.to_string())
            .extend()
            .into_server_error(root.pos)
            .with_path(vec![PathSegment::Field(root.response_key.clone())]);
        Response::from_errors(vec![error])
    }
}

/// Publishes an execution's results until its stream ends, then unregisters it
/// (the next subscriber of its key starts afresh) and closes it: its subscribers
/// read what is left, then end.
async fn publish(
    mut results: BoxStream<'static, Response>,
    published: Arc<Mutex<Published>>,
    fanout: Arc<Fanout>,
    key: Arc<Key>,
    id: u64,
) {
    while let Some(response) = results.next().await {
        let shared = Arc::new(FanoutResponse::new(response));
        let mut published = published.lock_unpoisoned();
        if let Some(sender) = &published.sender {
            // No receiver now is no error: a subscriber joining later reads `latest`.
            let _ = sender.send(Arc::clone(&shared));
        }
        for delivery in published.deliveries.values() {
            delivery.deliver(Some(Arc::clone(&shared)));
        }
        published.latest = Some(shared);
    }
    // The operation's state (its share of the poller) goes before its subscribers end.
    drop(results);
    fanout.forget(&key, id);
    let ended = {
        let mut published = published.lock_unpoisoned();
        published.sender = None;
        std::mem::take(&mut published.deliveries)
    };
    for delivery in ended.into_values() {
        delivery.deliver(None);
    }
}

/// One subscriber of a shared execution.
struct Subscriber {
    /// The execution's latest result when this subscriber joined: sent first.
    first: Option<Arc<FanoutResponse>>,
    receiver: broadcast::Receiver<Arc<FanoutResponse>>,
    _member: Member,
}

/// What every subscriber of a shared execution holds while subscribed.
struct Member {
    /// Keeps the execution running.
    execution: Arc<Execution>,
    /// The connection's place and the client's share.
    _places: Places,
    /// CountedSubscriber against `--max-subscriptions`.
    _counted: CountedSubscriber,
}

impl Subscriber {
    async fn next(&mut self) -> Option<Arc<FanoutResponse>> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            match self.receiver.recv().await {
                Ok(result) => return Some(result),
                // Too far behind: go on from the oldest result still kept.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// One subscriber counted in [`Fanout::subscribers`]; uncounted on drop.
struct CountedSubscriber(Arc<Fanout>);

impl Drop for CountedSubscriber {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The registration sequence of a result: the `sequence` of its one top-level
/// field, when selected.
fn sequence_of(response: &Response) -> Option<u64> {
    let Value::Object(fields) = &response.data else {
        return None;
    };
    let mut values = fields.values();
    let (Some(Value::Object(change)), None) = (values.next(), values.next()) else {
        return None;
    };
    match change.get("sequence")? {
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}
