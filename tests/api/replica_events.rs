//! Replicas share one poller per registration and one event stream through Redis:
//! a real `redis-server`, real gateway processes, real graphql-transport-ws sockets,
//! and the simulator's manual clock moving the workflow on once every subscriber
//! has seen its state.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    ACCOUNT, Replica, TestRedis, WsClient, change, connect_ready_to, spawn_replicas,
    spawn_simulator,
};

/// Pending for 10 s, in progress for 20 s, then succeeded.
const DOMAIN: &str = "demo-succeeds.com";
/// The lease a replica holds on the registration it polls (`--poller-lease-ttl`).
const LEASE_TTL: Duration = Duration::from_secs(2);
/// Fast polls, no jitter, short leases: the whole workflow takes a few seconds.
/// Redis gets a patient timeout: on a loaded 2-core machine a 200 ms one flips
/// replicas to local mode now and then, which is another test's subject.
const REPLICA_ARGS: [&str; 10] = [
    "--poll-initial",
    "50ms",
    "--poll-max",
    "100ms",
    "--poll-jitter",
    "0",
    "--poller-lease-ttl",
    "2s",
    "--redis-timeout",
    "1s",
];
/// Every subscriber sees each state once, in order, numbered alike on every replica.
const WORKFLOW: [(u64, &str); 3] = [(1, "PENDING"), (2, "IN_PROGRESS"), (3, "SUCCEEDED")];

/// One graphql-transport-ws connection carrying several subscriptions to [`DOMAIN`],
/// and what each of them received.
struct Subscribers {
    client: WsClient,
    /// Per subscription: (sequence, state) of each change received.
    seen: Vec<Vec<(u64, String)>>,
    completed: Vec<bool>,
}

impl Subscribers {
    /// `count` subscriptions over one new connection to the replica at `address`.
    async fn open(address: SocketAddr, count: usize) -> Self {
        let mut client = connect_ready_to(address).await;
        for id in 0..count {
            client.watch(&id.to_string(), DOMAIN, false).await;
        }
        Self {
            client,
            seen: vec![Vec::new(); count],
            completed: vec![false; count],
        }
    }

    /// `connections` connections of `count` subscriptions on each replica, read
    /// until every subscription has the registration's first state.
    async fn on_each(replicas: &[Replica], connections: usize, count: usize) -> Vec<Self> {
        let mut groups = Vec::new();
        for replica in replicas {
            for _ in 0..connections {
                groups.push(Self::open(replica.address, count).await);
            }
        }
        for group in &mut groups {
            group.until_sequence(1).await;
        }
        groups
    }

    /// Reads until every subscription has received the change numbered `sequence`.
    async fn until_sequence(&mut self, sequence: u64) {
        while self
            .seen
            .iter()
            .any(|changes| changes.last().is_none_or(|(last, _)| *last < sequence))
        {
            self.read_one().await;
        }
    }

    /// Reads until every subscription has completed.
    async fn until_completed(&mut self) {
        while self.completed.contains(&false) {
            self.read_one().await;
        }
    }

    async fn read_one(&mut self) {
        let message = self.client.recv().await;
        if message["type"] == "ping" {
            self.client.send(json!({ "type": "pong" })).await;
            return;
        }
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        let index: usize = id
            .parse()
            .unwrap_or_else(|_| panic!("unexpected {message}"));
        match message["type"].as_str() {
            Some("next") => {
                let change = change(&message, &id);
                let sequence = change["sequence"].as_u64().expect("a sequence");
                let state = change["status"]["state"].as_str().expect("a state");
                self.seen[index].push((sequence, state.to_owned()));
            }
            Some("complete") => self.completed[index] = true,
            _ => panic!("unexpected {message}"),
        }
    }

    /// Asserts that every subscription saw exactly the workflow's states, in order.
    fn assert_saw_the_workflow(&self) {
        let expected: Vec<(u64, String)> = WORKFLOW
            .iter()
            .map(|(sequence, state)| (*sequence, (*state).to_owned()))
            .collect();
        for (id, changes) in self.seen.iter().enumerate() {
            assert_eq!(changes, &expected, "subscription {id}");
        }
    }
}

/// A replica's counter or gauge, 0 when absent.
async fn metric(replica: &Replica, series: &str) -> u64 {
    replica.metric(series).await.unwrap_or_default() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_poll_a_registration_once_and_all_900_subscribers_see_every_state_once_in_order()
 {
    let redis = TestRedis::start().await;
    let simulator = spawn_simulator().await;
    let replicas = spawn_replicas(3, &simulator.handle, &redis, &REPLICA_ARGS).await;
    // 300 subscribers per replica, 100 per connection (the default per-connection cap).
    let mut groups = Subscribers::on_each(&replicas, 3, 100).await;
    simulator.advance(10);
    for group in &mut groups {
        group.until_sequence(2).await;
    }
    simulator.advance(20);
    for group in &mut groups {
        group.until_completed().await;
        group.assert_saw_the_workflow();
    }

    let mut polls = Vec::new();
    for replica in &replicas {
        polls.push(metric(replica, "registrar_gateway_polls_total").await);
    }
    let polling: Vec<u64> = polls.iter().copied().filter(|polls| *polls > 0).collect();
    assert_eq!(
        polling.len(),
        1,
        "one replica polls, the others follow: {polls:?}"
    );
    let upstream = simulator.handle.requests_for(ACCOUNT, DOMAIN);
    assert_eq!(
        upstream, polling[0],
        "the simulator saw one poller's requests"
    );
    eprintln!(
        "3 replicas x 300 subscribers: {upstream} upstream requests for {} deliveries",
        900 * WORKFLOW.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_replica_that_polls_hands_its_lease_over_within_the_ttl_and_survivors_miss_no_change()
 {
    let redis = TestRedis::start().await;
    let simulator = spawn_simulator().await;
    let mut replicas = spawn_replicas(3, &simulator.handle, &redis, &REPLICA_ARGS).await;
    let mut groups = Subscribers::on_each(&replicas, 1, 20).await;
    let mut holders = Vec::new();
    for (index, replica) in replicas.iter().enumerate() {
        if metric(replica, "registrar_gateway_poller_leases_held").await == 1 {
            holders.push(index);
        }
    }
    assert_eq!(holders.len(), 1, "exactly one replica holds the lease");
    let holder = holders[0];

    replicas[holder].kill().await;
    let killed_at = Instant::now();
    drop(groups.remove(holder));
    let mut survivors = replicas;
    drop(survivors.remove(holder));
    // The workflow moves on while nobody polls it.
    simulator.advance(10);
    let took_over =
        futures::future::select_all(survivors.iter().map(|replica| {
            Box::pin(replica.wait_for_log("took the poller lease", LEASE_TTL * 10))
        }))
        .await
        .0;
    let after = killed_at.elapsed();
    assert!(took_over.is_some(), "no surviving replica took the lease");
    assert!(
        after <= LEASE_TTL + Duration::from_millis(750),
        "took over {after:?} after the kill, lease TTL {LEASE_TTL:?}"
    );
    eprintln!("lease taken over {after:?} after kill -9 (TTL {LEASE_TTL:?})");

    for group in &mut groups {
        group.until_sequence(2).await;
    }
    simulator.advance(20);
    for group in &mut groups {
        group.until_completed().await;
        group.assert_saw_the_workflow();
    }
}

/// Waits for a line of `replica`'s log after `mark` whose message contains `text`.
async fn logged_after(replica: &Replica, mark: usize, text: &str) {
    replica
        .wait_for_log_line(mark, Duration::from_secs(20), |line| {
            line["message"]
                .as_str()
                .is_some_and(|message| message.contains(text))
        })
        .await
        .unwrap_or_else(|| panic!("never logged {text:?}: {:?}", replica.logs()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_a_redis_outage_subscribers_on_every_replica_keep_their_changes_in_order_and_replicas_rejoin()
 {
    let mut redis = TestRedis::start().await;
    let simulator = spawn_simulator().await;
    // A short lease: followers poll on their own one lease lifetime into the outage.
    let mut args = REPLICA_ARGS;
    args[7] = "1s";
    let replicas = spawn_replicas(2, &simulator.handle, &redis, &args).await;
    let mut groups = Subscribers::on_each(&replicas, 1, 20).await;

    let mut followers = Vec::new();
    for replica in &replicas {
        if metric(replica, "registrar_gateway_poller_leases_held").await == 0 {
            followers.push(replica);
        }
    }
    assert_eq!(followers.len(), 1, "one replica polls, the other follows");

    redis.stop().await;
    for replica in &replicas {
        replica
            .wait_for_log("redis is unreachable", Duration::from_secs(20))
            .await
            .expect("the replica warned");
    }
    // Each replica polls on its own and keeps its subscribers informed.
    simulator.advance(10);
    for group in &mut groups {
        group.until_sequence(2).await;
    }
    // The holder polls on; the follower polls alone since it cannot follow.
    assert_eq!(
        metric(followers[0], "registrar_gateway_pollers_unshared").await,
        1
    );

    let marks: Vec<usize> = replicas.iter().map(Replica::log_mark).collect();
    redis.restart().await;
    for (replica, mark) in replicas.iter().zip(marks) {
        logged_after(replica, mark, "the registration is shared again").await;
    }
    // Rejoined (one polls, the other follows): the last change reaches everyone,
    // numbered on from what each subscriber saw.
    simulator.advance(20);
    for group in &mut groups {
        group.until_completed().await;
        group.assert_saw_the_workflow();
    }
    for replica in &replicas {
        assert_eq!(
            metric(replica, "registrar_gateway_pollers_unshared").await,
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_lease_holder_that_wakes_up_after_a_takeover_is_fenced_off_and_follows() {
    let redis = TestRedis::start().await;
    let simulator = spawn_simulator().await;
    let replicas = spawn_replicas(2, &simulator.handle, &redis, &REPLICA_ARGS).await;
    let mut groups = Subscribers::on_each(&replicas, 1, 10).await;
    let holder = if metric(&replicas[0], "registrar_gateway_poller_leases_held").await == 1 {
        0
    } else {
        1
    };
    let other = 1 - holder;

    // Frozen past its lease: the other replica takes over and publishes the next change.
    replicas[holder].signal("-STOP");
    simulator.advance(10);
    groups[other].until_sequence(2).await;
    // Thawed, the old holder still believes it holds the lease until Redis says no.
    let mark = replicas[holder].log_mark();
    replicas[holder].signal("-CONT");
    logged_after(
        &replicas[holder],
        mark,
        "another replica took over polling this registration",
    )
    .await;
    groups[holder].until_sequence(2).await;
    simulator.advance(20);
    for group in &mut groups {
        group.until_completed().await;
        group.assert_saw_the_workflow();
    }

    // The stream holds each change once, each written under the epoch of the
    // lease its writer held: nothing from the old epoch after the new one began.
    let mut connection = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("registrar-gateway:poller:*:events")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&keys[0])
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    let events: Vec<(u64, u64)> = entries
        .ids
        .iter()
        .filter(|entry| entry.get::<String>("kind").as_deref() == Some("event"))
        .map(|entry| {
            let field = |name| entry.get::<u64>(name).expect("a number");
            (field("seq"), field("epoch"))
        })
        .collect();
    let sequences: Vec<u64> = events.iter().map(|(sequence, _)| *sequence).collect();
    assert_eq!(sequences, [1, 2, 3], "{events:?}");
    assert!(
        events[0].1 < events[1].1,
        "a new epoch after the takeover: {events:?}"
    );
    assert!(
        events.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "{events:?}"
    );
}
