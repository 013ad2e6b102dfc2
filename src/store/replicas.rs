//! The replica registry: each replica renews its entry in one sorted set (score =
//! expiry, in Redis's clock, so replicas' clocks do not matter) every heartbeat; the
//! set's size is the live replica count, kept for the local budget share an outage
//! falls back to. The heartbeat is also what notices Redis is back after an outage,
//! and it restores the shared fingerprint key a restarted (empty) Redis lost, so a
//! replica started after the restart still fingerprints credentials like the others.

use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::RedisStore;

/// Renews this replica's entry, drops expired ones, answers the live count.
const BEAT: &str = r"
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], ms + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], ARGV[3], 'NX')
return redis.call('ZCARD', KEYS[1])
";

/// Beats until `shutdown`, then leaves the registry.
pub(super) async fn heartbeat(store: RedisStore, shutdown: CancellationToken) {
    let script = redis::Script::new(BEAT);
    let mut tick = tokio::time::interval(store.inner.settings.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Leave promptly: the others' share of the budget grows without waiting for expiry.
            () = shutdown.cancelled() => break,
            _ = tick.tick() => beat(&store, &script).await,
        }
    }
    let (key, id) = (store.key("replicas"), store.inner.replica_id.clone());
    let _ = store
        .run(|mut connection| async move {
            redis::cmd("ZREM")
                .arg(key)
                .arg(id)
                .query_async::<()>(&mut connection)
                .await
        })
        .await;
}

/// One beat: on success the count is updated (and health restored by `run`).
async fn beat(store: &RedisStore, script: &redis::Script) {
    let ttl_ms = (store.inner.settings.heartbeat * 3).as_millis() as u64;
    let mut invocation = script.prepare_invoke();
    invocation
        .key(store.key("replicas"))
        .key(store.key(super::fingerprint::KEY))
        .arg(&store.inner.replica_id)
        .arg(ttl_ms)
        .arg(store.inner.fingerprint_key.as_slice());
    let counted = store
        .run(|mut connection| async move { invocation.invoke_async::<u32>(&mut connection).await })
        .await;
    if let Ok(count) = counted {
        let before = store.inner.replicas.swap(count.max(1), Ordering::Relaxed);
        store.inner.health.replicas(count);
        if before != count.max(1) {
            tracing::info!(replicas = count, "replicas sharing this redis");
        }
    }
}
