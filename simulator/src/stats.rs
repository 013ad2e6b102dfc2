//! Request counters: a lock-free total and per-status-class counts, plus a
//! bounded per-(account, domain) map for "how often did the gateway ask about X".

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::names::{AccountId, DomainName};

/// Distinct (account, domain) pairs counted; requests for further pairs only
/// count towards `requests_untracked`.
const MAX_TRACKED_REGISTRATIONS: usize = 100_000;

/// A snapshot of the counters, as served by `GET /__sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every request under `/client/v4`, whatever its answer.
    pub requests_total: u64,
    /// Answers by status class: `2xx`, `4xx`, `5xx` (reset and hung requests have none).
    pub responses_by_class: BTreeMap<String, u64>,
    /// 429 answers.
    pub rate_limited: u64,
    /// Connections reset by the reset fault.
    pub resets: u64,
    /// Requests left hanging by the hang fault.
    pub hangs: u64,
    /// `POST …/registrations` requests that passed auth and the rate limit
    /// (also counted per domain in `registrations` when their body named one).
    pub creates: u64,
    /// Requests per account, then per domain (registration endpoints only).
    pub registrations: BTreeMap<String, BTreeMap<String, u64>>,
    /// Registration requests not counted per pair because the map was full.
    pub requests_untracked: u64,
    /// The longest time between two consecutive requests about one registration, in
    /// milliseconds, per account, then per domain (a benchmark's "longest poll gap").
    pub longest_gaps_ms: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The live counters.
#[derive(Debug, Default)]
pub(super) struct Counters {
    total: AtomicU64,
    /// Indexed by the status code's first digit (0-5).
    by_class: [AtomicU64; 6],
    rate_limited: AtomicU64,
    resets: AtomicU64,
    hangs: AtomicU64,
    untracked: AtomicU64,
    creates: AtomicU64,
    /// A std mutex: held for one hash-map update, never across an await.
    per_registration: Mutex<PerRegistration>,
}

/// Counts per account, then per domain, so lookups borrow instead of cloning.
#[derive(Debug, Default)]
struct PerRegistration {
    accounts: HashMap<AccountId, HashMap<DomainName, Tally>>,
    /// Pairs stored, bounded by `MAX_TRACKED_REGISTRATIONS`.
    tracked: usize,
}

/// One registration's requests: how many, the last one's time and the longest gap.
#[derive(Debug, Clone, Copy)]
struct Tally {
    count: u64,
    last: Instant,
    longest_gap: Duration,
}

impl Tally {
    fn first(now: Instant) -> Self {
        Self {
            count: 1,
            last: now,
            longest_gap: Duration::ZERO,
        }
    }

    fn count(&mut self, now: Instant) {
        self.count += 1;
        self.longest_gap = self.longest_gap.max(now.duration_since(self.last));
        self.last = now;
    }
}

impl PerRegistration {
    fn get_mut(&mut self, account: &AccountId) -> Option<&mut HashMap<DomainName, Tally>> {
        self.accounts.get_mut(account)
    }

    fn count(&self, account: &AccountId, domain: &DomainName) -> u64 {
        let domains = self.accounts.get(account);
        domains
            .and_then(|domains| domains.get(domain))
            .map_or(0, |tally| tally.count)
    }
}

impl Counters {
    /// Counts one API request.
    pub(super) fn request(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answer's status.
    pub(super) fn response(&self, status: u16) {
        let class = usize::from(status / 100).min(5);
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a reset connection.
    pub(super) fn reset_connection(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a hung request.
    pub(super) fn hang(&self) {
        self.hangs.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a create request.
    pub(super) fn create(&self) {
        self.creates.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request about (account, domain); clones the names only on a pair's first request.
    pub(super) fn registration(&self, account: &AccountId, domain: &DomainName) {
        let now = Instant::now();
        let mut map = self.per_registration.lock();
        if let Some(tally) = map
            .get_mut(account)
            .and_then(|domains| domains.get_mut(domain))
        {
            tally.count(now);
        } else if map.tracked < MAX_TRACKED_REGISTRATIONS {
            map.tracked += 1;
            let domains = map.accounts.entry(account.clone()).or_default();
            domains.insert(domain.clone(), Tally::first(now));
        } else {
            self.untracked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests counted for (account, domain); raw strings are normalised first.
    pub(super) fn requests_for(&self, account: &str, domain: &str) -> u64 {
        let (Ok(account), Ok(domain)) = (AccountId::parse(account), DomainName::parse(domain))
        else {
            return 0;
        };
        let map = self.per_registration.lock();
        map.count(&account, &domain)
    }

    /// A consistent-enough snapshot.
    pub(super) fn snapshot(&self) -> Stats {
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let responses_by_class = classes
            .iter()
            .zip(&self.by_class[1..])
            .map(|(name, count)| ((*name).to_owned(), count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect();
        let mut registrations: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut longest_gaps_ms: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let map = self.per_registration.lock();
        for (account, domains) in &map.accounts {
            let counts = domains
                .iter()
                .map(|(domain, tally)| (domain.to_string(), tally.count));
            registrations.insert(account.to_string(), counts.collect());
            let gaps = domains.iter().map(|(domain, tally)| {
                let gap = u64::try_from(tally.longest_gap.as_millis()).unwrap_or(u64::MAX);
                (domain.to_string(), gap)
            });
            longest_gaps_ms.insert(account.to_string(), gaps.collect());
        }
        Stats {
            requests_total: self.total.load(Ordering::Relaxed),
            responses_by_class,
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
            hangs: self.hangs.load(Ordering::Relaxed),
            creates: self.creates.load(Ordering::Relaxed),
            registrations,
            requests_untracked: self.untracked.load(Ordering::Relaxed),
            longest_gaps_ms,
        }
    }

    /// Sets every counter back to zero.
    pub(super) fn reset(&self) {
        let atomics = [
            &self.total,
            &self.rate_limited,
            &self.resets,
            &self.hangs,
            &self.untracked,
            &self.creates,
        ];
        for counter in atomics.into_iter().chain(&self.by_class) {
            counter.store(0, Ordering::Relaxed);
        }
        *self.per_registration.lock() = PerRegistration::default();
    }
}
