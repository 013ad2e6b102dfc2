//! The budget kept in Redis, for replicas: one GCRA state per credential (its
//! theoretical arrival time, one key), checked and advanced atomically by one Lua
//! script in Redis's clock, so N replicas draw on one budget and no replica's clock
//! matters. The same script honours the credential's pause key, which any replica
//! sets when the upstream says stop (429 `Retry-After`, a spent `Ratelimit`).

use std::time::Duration;

use super::{Exhausted, GcraParams, Priority};
use crate::credential::Fingerprint;
use crate::store::{RedisStore, RedisStoreError};

/// KEYS: the credential's `all` state, its `background` state, its pause.
/// ARGV: all period (µs), all burst, background period (µs), background burst,
/// 1 for a background request.
/// Answers `{1, remaining burst}` or `{0, wait in µs}`. Times are µs as doubles
/// (exact below 2^53), written with `%.0f` so no exponent reaches the stored value.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then return {0, paused * 1000} end
local function check(key, period, burst)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + period
  local allow_at = new_tat - burst * period
  if allow_at > now then return nil, allow_at - now end
  return new_tat, 0
end
local function store(key, tat)
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1)
end
local all_period, all_burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local all_tat, wait = check(KEYS[1], all_period, all_burst)
if not all_tat then return {0, wait} end
if ARGV[5] == '1' then
  local bg_tat, bg_wait = check(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
  if not bg_tat then return {0, bg_wait} end
  store(KEYS[2], bg_tat)
end
store(KEYS[1], all_tat)
return {1, math.floor((now - (all_tat - all_burst * all_period)) / all_period)}
";

/// Extends the pause key to ARGV[1] ms unless it already lasts longer.
const PAUSE: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
";

/// The scripts (hashed once) and the quotas they enforce.
pub(super) struct RedisBudget {
    pub(super) store: RedisStore,
    acquire: redis::Script,
    pause: redis::Script,
    pub(super) all: GcraParams,
    pub(super) background: GcraParams,
}

impl RedisBudget {
    pub(super) fn new(store: RedisStore, all: GcraParams, background: GcraParams) -> Self {
        Self {
            store,
            acquire: redis::Script::new(ACQUIRE),
            pause: redis::Script::new(PAUSE),
            all,
            background,
        }
    }

    /// One admission in Redis: `Ok(Ok(remaining))`, `Ok(Err(exhausted))`, or the
    /// Redis failure that sends the caller to its outage allowance.
    pub(super) async fn try_acquire(
        &self,
        credential: Fingerprint,
        priority: Priority,
    ) -> Result<Result<u32, Exhausted>, RedisStoreError> {
        let keys = [
            self.store.key(&format!("budget:{credential}:all")),
            self.store.key(&format!("budget:{credential}:background")),
            self.store.key(&format!("budget:{credential}:pause")),
        ];
        let mut invocation = self.acquire.prepare_invoke();
        invocation
            .key(&keys[0])
            .key(&keys[1])
            .key(&keys[2])
            .arg(micros(self.all.period))
            .arg(self.all.burst)
            .arg(micros(self.background.period))
            .arg(self.background.burst)
            .arg(u8::from(priority == Priority::Background));
        let (admitted, value): (u8, u64) = self
            .store
            .run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await?;
        Ok(match admitted {
            1 => Ok(u32::try_from(value).unwrap_or(u32::MAX)),
            _ => Err(Exhausted {
                retry_after: Duration::from_micros(value),
            }),
        })
    }

    /// Pauses `credential` on every replica for `duration` (skipped while Redis is
    /// unreachable: the local pause holds this replica, the others learn of the
    /// upstream's word from their own next 429).
    pub(super) async fn pause(
        &self,
        credential: Fingerprint,
        duration: Duration,
    ) -> Result<(), RedisStoreError> {
        if !self.store.is_connected() {
            return Ok(());
        }
        let key = self.store.key(&format!("budget:{credential}:pause"));
        let millis = duration.as_millis().max(1) as u64;
        let mut invocation = self.pause.prepare_invoke();
        invocation.key(key).arg(millis);
        self.store
            .run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await
    }
}

fn micros(duration: Duration) -> u64 {
    duration.as_micros().max(1) as u64
}
