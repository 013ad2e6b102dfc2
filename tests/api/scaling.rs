//! Scaling out: gateway processes sharing one Redis (a real `redis-server`) in
//! front of one simulator, over real sockets. Windows and heartbeats are short
//! (flags) so each test takes seconds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use registrar_gateway::budget::{Budget, BudgetSettings, Priority};
use registrar_gateway::credential::{Credential, CredentialSecret};
use registrar_gateway::metrics::Metrics;
use registrar_gateway::store::{RedisStore, RedisStoreSettings, RedisUrl};
use registrar_simulator::SimulatorSettings;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{
    ACCOUNT, Replica, TestRedis, spawn_replicas, spawn_simulator, spawn_simulator_with,
    start_refused,
};

/// A query answered with data, no errors (`registrationStatus` is null for a domain
/// without a workflow: still an answer, from the upstream or a cache).
fn assert_answered(body: &Value, domain: &str) {
    assert!(
        body.get("errors").is_none() && body["data"].get("registrationStatus").is_some(),
        "{domain}: {body}"
    );
}

/// A replica's shared store, in-process (the budget's own API is what is tested).
async fn store(redis: &TestRedis, shutdown: &CancellationToken) -> RedisStore {
    let settings = RedisStoreSettings {
        url: RedisUrl::new(&redis.url()),
        ca_file: None,
        key_prefix: "budget-test".into(),
        timeout: Duration::from_secs(1),
        heartbeat: Duration::from_millis(100),
        startup_wait: Duration::from_secs(5),
    };
    RedisStore::connect(&settings, Metrics::disabled(), shutdown.clone())
        .await
        .expect("redis answers")
}

#[tokio::test]
async fn two_replicas_draw_on_one_budget_and_one_pause_per_credential() {
    let redis = TestRedis::start().await;
    let shutdown = CancellationToken::new();
    let (a, b) = (
        store(&redis, &shutdown).await,
        store(&redis, &shutdown).await,
    );
    let token = || CredentialSecret::ApiToken("shared-token".into());
    let key = a.fingerprint_key();
    let fingerprint = Credential::new(token(), &key).fingerprint();
    assert_eq!(
        fingerprint,
        Credential::new(token(), &b.fingerprint_key()).fingerprint(),
        "one credential, one fingerprint on every replica"
    );
    // A request comes back every 360 s: none within the test, however slow the machine.
    let settings = BudgetSettings {
        limit: 100,
        window: Duration::from_secs(36_000),
        background_share: 0.25,
        reserve: 0.0,
    };
    let budgets = [a, b].map(|store| Budget::new(settings, Metrics::disabled(), Some(store)));
    // 14 attempts, 7 on each replica: a burst per replica would admit all 14.
    let mut admitted = 0;
    for turn in 0..14 {
        let budget = &budgets[turn % 2];
        admitted += usize::from(
            budget
                .try_acquire(fingerprint, Priority::Foreground)
                .await
                .is_ok(),
        );
    }
    assert_eq!(
        admitted, 10,
        "one burst of a tenth of the limit, not one per replica"
    );

    let other = Credential::new(CredentialSecret::ApiToken("other".into()), &key).fingerprint();
    assert!(
        budgets[1]
            .try_acquire(other, Priority::Foreground)
            .await
            .is_ok()
    );
    budgets[0].pause(other, Duration::from_secs(60));
    // The pause reaches Redis from a task of its own: wait (bounded) until the other
    // replica sees it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        match budgets[1].try_acquire(other, Priority::Foreground).await {
            Err(refused) => break refused,
            Ok(()) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(()) => panic!("the pause never reached the other replica"),
        }
    };
    assert!(refused.retry_after > Duration::from_secs(50), "{refused:?}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_redis_url_authenticates_and_never_reaches_the_logs() {
    const PASSWORD: &str = "hunter2-redis-secret";
    let simulator = spawn_simulator().await;
    let redis = TestRedis::start_with_password(PASSWORD).await;
    let replicas = spawn_replicas(1, &simulator.handle, &redis, &[]).await;
    let replica = &replicas[0];
    assert_eq!(
        replica.metric("registrar_gateway_redis_connected").await,
        Some(1.0)
    );
    let line = replica
        .wait_for_log("sharing state with other replicas", Duration::from_secs(10))
        .await
        .expect("the start-up line");
    assert_eq!(
        line["redis"],
        format!("redis://127.0.0.1:{}", port(&redis.url()))
    );
    assert_answered(&replica.status_of("demo-succeeded.com").await, "a query");
    let logs = serde_json::to_string(&replica.logs()).unwrap();
    assert!(!logs.contains(PASSWORD), "the Redis password was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_state_over_rediss_with_a_password_and_a_private_ca() {
    const PASSWORD: &str = "tls-redis-secret-5f3a";
    let simulator = spawn_simulator().await;
    let redis = TestRedis::start_tls_with_password(PASSWORD).await;
    let ca = redis.ca_file().expect("a TLS server has a CA");
    let ca = ca.to_str().expect("a UTF-8 path");
    assert!(
        redis.url().starts_with("rediss://"),
        "the replicas speak TLS"
    );
    let replicas = spawn_replicas(2, &simulator.handle, &redis, &["--redis-ca-file", ca]).await;
    for replica in &replicas {
        assert_eq!(
            replica.metric("registrar_gateway_redis_connected").await,
            Some(1.0)
        );
    }
    assert_answered(
        &replicas[0].status_of("demo-succeeded.com").await,
        "a query",
    );
    // The answer went to Redis (over TLS: the test's own connection trusts the CA)...
    let mut connection = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("registrar-gateway:status:*")
        .query_async(&mut connection)
        .await
        .expect("KEYS answers");
    assert!(
        keys.iter().any(|key| key.ends_with("demo-succeeded.com")),
        "{keys:?}"
    );
    // ...and the other replica is answered from there, not from the upstream.
    assert_answered(
        &replicas[1].status_of("demo-succeeded.com").await,
        "a query",
    );
    assert_eq!(
        simulator.handle.requests_for(ACCOUNT, "demo-succeeded.com"),
        1
    );
    for replica in &replicas {
        let logs = serde_json::to_string(&replica.logs()).unwrap();
        assert!(!logs.contains(PASSWORD), "the Redis password was logged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_redis_password_stops_start_up_at_once_without_showing_it() {
    const WRONG: &str = "not-the-password-9c1e";
    let simulator = spawn_simulator().await;
    let redis = TestRedis::start_tls_with_password("the-password-77d0").await;
    let ca = redis.ca_file().expect("a TLS server has a CA");
    // A start-up wait far beyond the helper's 20 s: only giving up at once passes.
    let args = [
        "--redis-ca-file",
        ca.to_str().unwrap(),
        "--redis-startup-wait",
        "5m",
    ];
    for url in [
        redis.url_with_password(Some(WRONG)),
        redis.url_with_password(None),
    ] {
        let (status, printed) = start_refused(&simulator.handle, &url, &args).await;
        assert!(!status.success(), "{printed}");
        assert!(
            printed.contains("redis refused the user or password in REDIS_URL"),
            "{printed}"
        );
        assert!(
            !printed.contains(WRONG),
            "the URL's password was shown: {printed}"
        );
        assert!(
            !printed.contains("rediss://:"),
            "the URL was shown: {printed}"
        );
    }
}

/// The port of a `redis://…:port` URL.
fn port(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_asking_for_one_registration_at_once_make_one_upstream_call() {
    let simulator = spawn_simulator().await;
    let redis = TestRedis::start().await;
    let replicas = spawn_replicas(3, &simulator.handle, &redis, &[]).await;
    let asks = replicas
        .iter()
        .flat_map(|replica| (0..20).map(move |_| replica.status_of("demo-succeeded.com")));
    for body in join_all(asks).await {
        assert_eq!(
            body["data"]["registrationStatus"]["state"], "SUCCEEDED",
            "{body}"
        );
    }
    assert_eq!(
        simulator.handle.requests_for(ACCOUNT, "demo-succeeded.com"),
        1,
        "60 queries on 3 replicas, one upstream call"
    );
    // A miss on one replica is a hit on the others.
    replicas[0].status_of("nothing-here.com").await;
    replicas[1].status_of("nothing-here.com").await;
    replicas[2].status_of("nothing-here.com").await;
    assert_eq!(
        simulator.handle.requests_for(ACCOUNT, "nothing-here.com"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_drops_out_of_the_count_the_budget_share_is_cut_by() {
    let simulator = spawn_simulator().await;
    let redis = TestRedis::start().await;
    let mut replicas = spawn_replicas(3, &simulator.handle, &redis, &[]).await;
    let counted = |count: u64| {
        move |line: &Value| {
            line["message"] == "replicas sharing this redis" && line["replicas"] == count
        }
    };
    let limit = Duration::from_secs(10);
    let all_three = replicas[0].wait_for_log_line(0, limit, counted(3)).await;
    assert!(all_three.is_some(), "{:?}", replicas[0].logs());
    let marks = [replicas[0].log_mark(), replicas[1].log_mark()];
    replicas[2].kill().await;
    // Three missed heartbeats (100 ms each) later, the survivors count two.
    for (replica, mark) in replicas[..2].iter().zip(marks) {
        let line = replica.wait_for_log_line(mark, limit, counted(2)).await;
        assert!(line.is_some(), "{:?}", replica.logs());
        assert_eq!(
            replica.metric("registrar_gateway_redis_replicas").await,
            Some(2.0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_storm_over_500_registrations_on_3_replicas_stays_within_one_budget() {
    // Cloudflare's limit for the credential, and the gateways' budget under it (the
    // margin absorbs a request admitted at the end of one window and received in the next).
    const LIMIT: u32 = 40;
    const WINDOW: Duration = Duration::from_secs(1);
    let simulator =
        spawn_simulator_with(SimulatorSettings::default().rate_limit(LIMIT, WINDOW)).await;
    let redis = TestRedis::start().await;
    let budget = [
        ("--upstream-budget", "30"),
        ("--upstream-budget-window", "1s"),
        // Short freshness: 500 registrations want 500 calls a second, far past the budget.
        ("--cache-ttl-not-found", "1s"),
        ("--cache-ttl-error", "0s"),
        // One test client is the whole storm: the credential's budget, not a client's
        // fair share of it, is under test.
        ("--client-budget-share", "1"),
    ];
    let args: Vec<&str> = budget
        .iter()
        .flat_map(|(flag, value)| [*flag, *value])
        .collect();
    let replicas = spawn_replicas(3, &simulator.handle, &redis, &args).await;

    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (handle, samples) = (simulator.handle.clone(), Arc::clone(&samples));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                let total = handle.stats().requests_total;
                samples.lock().unwrap().push((Instant::now(), total));
            }
        })
    };
    let until = Instant::now() + Duration::from_millis(2500);
    let workers = replicas
        .iter()
        .enumerate()
        .flat_map(|(r, replica)| (0..12).map(move |w| storm(replica, r * 12 + w, until)));
    let outcomes: Vec<(usize, usize)> = join_all(workers).await;
    sampler.abort();
    let answered: usize = outcomes.iter().map(|(answered, _)| answered).sum();
    let refused: usize = outcomes.iter().map(|(_, refused)| refused).sum();

    let stats = simulator.handle.stats();
    eprintln!(
        "storm: {answered} answers ({refused} refused by the budget), {} upstream calls",
        stats.requests_total
    );
    assert_eq!(stats.rate_limited, 0, "no 429 from the upstream: {stats:?}");
    let samples = samples.lock().unwrap().clone();
    for (i, (start, before)) in samples.iter().enumerate() {
        for (end, after) in &samples[i..] {
            if end.duration_since(*start) <= WINDOW {
                assert!(
                    after - before <= u64::from(LIMIT),
                    "{} upstream requests within {:?}",
                    after - before,
                    end.duration_since(*start)
                );
            }
        }
    }
    // The storm did press on the budget: the gateways called upstream at about the
    // allowance's pace over the storm (3 + 27/s for 2.5 s), not idly. Queries past it
    // wait their turn (up to 2 s) and only then are refused, so on a slow machine the
    // storm may end with none refused: the pace, not the refusals, is the proof.
    assert!(
        stats.requests_total >= 56,
        "only {} upstream calls for {answered} answers",
        stats.requests_total
    );
}

/// Queries registrations `storm-{n}.com` (500 of them, spread by `worker`) until
/// `until`; answers how many were answered, and how many of those were refused
/// because the budget was spent.
async fn storm(replica: &Replica, worker: usize, until: Instant) -> (usize, usize) {
    let (mut answered, mut refused) = (0, 0);
    let mut n = worker * 41;
    while Instant::now() < until {
        n = (n + 7) % 500;
        let body = replica.status_of(&format!("storm-{n}.com")).await;
        answered += 1;
        match body["errors"][0]["extensions"]["code"].as_str() {
            None => assert!(body["data"].get("registrationStatus").is_some(), "{body}"),
            Some("UPSTREAM_RATE_LIMITED") => refused += 1,
            Some(_) => panic!("{body}"),
        }
    }
    (answered, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_keep_serving_through_a_redis_outage_and_rejoin_when_it_returns() {
    let simulator = spawn_simulator().await;
    let mut redis = TestRedis::start().await;
    let replicas = spawn_replicas(2, &simulator.handle, &redis, &[]).await;
    for replica in &replicas {
        assert_answered(&replica.status_of("demo-succeeded.com").await, "warm-up");
        // Each replica counts the other at a heartbeat after the other registered.
        replica
            .wait_for_log_line(0, Duration::from_secs(10), |line| {
                line["message"] == "replicas sharing this redis" && line["replicas"] == 2
            })
            .await
            .expect("each replica sees both");
        assert_eq!(
            replica.metric("registrar_gateway_redis_replicas").await,
            Some(2.0)
        );
    }

    redis.stop().await;
    for (r, replica) in replicas.iter().enumerate() {
        replica
            .wait_for_log("redis is unreachable", Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("replica {r} never warned: {:?}", replica.logs()));
        assert_eq!(
            replica.metric("registrar_gateway_redis_connected").await,
            Some(0.0)
        );
        assert!(replica.metric("registrar_gateway_redis_errors_total").await >= Some(1.0));
        // Served from the local cache, and from the upstream on the local budget share.
        assert_answered(&replica.status_of("demo-succeeded.com").await, "cached");
        let domain = format!("outage-{r}.com");
        assert_answered(&replica.status_of(&domain).await, &domain);
    }

    redis.restart().await;
    for (r, replica) in replicas.iter().enumerate() {
        replica
            .wait_for_log("redis is reachable again", Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("replica {r} never rejoined: {:?}", replica.logs()));
        assert_eq!(
            replica.metric("registrar_gateway_redis_connected").await,
            Some(1.0)
        );
    }
    // The restarted Redis was empty: the replicas put the shared fingerprint key
    // back, and share their cache again.
    let mut connection = redis.connection().await;
    let key: Vec<u8> = redis::cmd("GET")
        .arg("registrar-gateway:fingerprint-key")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(key.len(), 32);
    assert_answered(&replicas[0].status_of("after.com").await, "after.com");
    assert_answered(&replicas[1].status_of("after.com").await, "after.com");
    assert_eq!(simulator.handle.requests_for(ACCOUNT, "after.com"), 1);
}
