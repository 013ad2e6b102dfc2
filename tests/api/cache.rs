//! The poll economy of queries: concurrent identical reads make one upstream call,
//! entries expire by state, and credentials never share an entry.

use std::time::Duration;

use futures::future::join_all;
use registrar_gateway::budget::{Budget, BudgetSettings};
use registrar_gateway::cache::{CacheSettings, LookupError, StatusCache, StatusKey, TtlPolicy};
use registrar_gateway::credential::{Credential, CredentialSecret, FingerprintKey};
use registrar_gateway::domain::{AccountId, DomainName};
use registrar_gateway::metrics::Metrics;
use registrar_gateway::upstream::{
    ApiSettings, CloudflareApi, RegistrarApi, RetryPolicy, UpstreamError,
};

use crate::support::spawn_simulator_with;
use crate::support::{ACCOUNT, TestApp};
use registrar_simulator::SimulatorSettings;

#[tokio::test]
async fn two_hundred_concurrent_identical_queries_make_one_upstream_call() {
    let app = TestApp::builder().spawn().await;
    let answers = join_all((0..200).map(|_| app.status_of("demo-pending.com"))).await;
    assert_eq!(app.upstream_calls(), 1);
    for answer in &answers {
        assert_eq!(
            answer["data"]["registrationStatus"]["state"], "PENDING",
            "{answer}"
        );
        assert_eq!(
            answer["data"]["registrationStatus"]["fetchedAt"],
            answers[0]["data"]["registrationStatus"]["fetchedAt"]
        );
    }
}

#[tokio::test]
async fn an_expired_entry_is_fetched_again_once() {
    // Long enough that the second read and the 50 concurrent ones each come well
    // within one freshness period on a loaded machine.
    let ttl = Duration::from_secs(1);
    let app = TestApp::builder()
        .args(&["--cache-ttl-active", "1s"])
        .spawn()
        .await;
    app.status_of("demo-pending.com").await;
    let cached_by = tokio::time::Instant::now();
    app.status_of("demo-pending.com").await;
    assert_eq!(app.upstream_calls(), 1);
    // moka's clock is std's Instant: letting the TTL pass is the behaviour under test.
    // The entry was stored before the first answer came, so it has expired by then.
    tokio::time::sleep_until(cached_by + ttl).await;
    join_all((0..50).map(|_| app.status_of("demo-pending.com"))).await;
    assert_eq!(app.upstream_calls(), 2);
}

#[tokio::test]
async fn terminal_statuses_are_served_from_cache() {
    let app = TestApp::builder()
        .args(&["--cache-ttl-active", "0s"])
        .spawn()
        .await;
    for _ in 0..5 {
        app.status_of("demo-succeeded.com").await;
        app.status_of("demo-failed.com").await;
    }
    assert_eq!(app.upstream_calls(), 2);
}

#[tokio::test]
async fn a_failed_load_is_retried_and_then_not_cached() {
    let app = TestApp::builder()
        .args(&["--upstream-retries", "2", "--cache-ttl-error", "0s"])
        .spawn()
        .await;
    app.simulator()
        .set_faults(registrar_simulator::Faults {
            error_share: 1.0,
            ..Default::default()
        })
        .unwrap();
    let body = app.status_of("demo-succeeded.com").await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UPSTREAM_UNAVAILABLE",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["upstreamStatus"], 502);
    assert_eq!(app.upstream_calls(), 3, "one call and two retries");
    app.simulator().set_faults(Default::default()).unwrap();
    let body = app.status_of("demo-succeeded.com").await;
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "SUCCEEDED",
        "{body}"
    );
    assert_eq!(app.upstream_calls(), 4);
}

#[tokio::test]
async fn two_credentials_never_share_a_cache_entry() {
    let simulator =
        spawn_simulator_with(SimulatorSettings::default().refuse_credential("refused-token"))
            .await
            .handle;
    let settings = ApiSettings {
        base_url: simulator.base_url().parse().unwrap(),
        api: RegistrarApi::Registrar,
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy::NONE,
        refused_credential_ttl: Duration::ZERO,
    };
    let budget = Budget::new(
        BudgetSettings {
            limit: 1000,
            window: Duration::from_secs(1),
            background_share: 0.25,
            reserve: 0.0,
        },
        Metrics::disabled(),
        None,
    );
    let client = CloudflareApi::new(&settings, budget, Metrics::disabled()).unwrap();
    let ttl = TtlPolicy {
        active: Duration::from_secs(60),
        waiting: Duration::from_secs(60),
        terminal: Duration::from_secs(60),
        not_found: Duration::from_secs(60),
    };
    let settings = CacheSettings {
        capacity: 100,
        ttl,
        stale_if_error: Duration::ZERO,
        error_ttl: Duration::ZERO,
    };
    let cache = StatusCache::new(&settings, client, Metrics::disabled(), None);
    let key_material = FingerprintKey::random();
    let accepted = Credential::new(
        CredentialSecret::ApiToken("accepted-token".into()),
        &key_material,
    );
    let refused = Credential::new(
        CredentialSecret::ApiToken("refused-token".into()),
        &key_material,
    );
    let key_for = |credential: &Credential| StatusKey {
        credential: credential.fingerprint(),
        account: AccountId::parse(ACCOUNT).unwrap(),
        domain: DomainName::parse("demo-succeeded.com").unwrap(),
    };

    let free = || std::future::ready(Ok(()));
    let snapshot = cache
        .get_or_fetch(&accepted, key_for(&accepted), free())
        .await
        .unwrap();
    assert!(snapshot.snapshot.status.is_some() && !snapshot.stale);
    let error = cache
        .get_or_fetch(&refused, key_for(&refused), free())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LookupError::Upstream(error) if matches!(error.as_ref(), UpstreamError::Auth { status: 403, .. })),
        "{error:?}"
    );
    assert_eq!(simulator.stats().requests_total, 2);
}
