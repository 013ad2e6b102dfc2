//! Every workflow the simulator knows, per account, with the demo workflows
//! instantiated on an account's first touch and a bound on how much is stored.
//! With a demo restart time set, a moving demo that ended and went unread that
//! long starts over on its next read (`docs/simulator.md#demos-that-start-over`).
//!
//! One `parking_lot::RwLock` guards the map: it is held only for a lookup or an
//! insert, never across an await, and reads (the hot path) share it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockWriteGuard};

use chrono::{DateTime, TimeDelta, Utc};

use super::scenario::{DEFAULT_CREATE_SCENARIO, ScenarioSet};
use super::workflow::{NotAwaitingAction, RegistrationOrder, Workflow};
use crate::names::{AccountId, DomainName};
use crate::wire::{Registration, WorkflowState, WorkflowStatus};

/// The platform's limit of domains registered per account.
pub(super) const MAX_DOMAINS_PER_ACCOUNT: usize = 100;

/// Why a workflow operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The simulator stores no more than its configured number of workflows.
    #[error(
        "the simulator is full: it stores at most {limit} workflows (demo workflows count, one set per account)"
    )]
    Full {
        /// The configured bound.
        limit: usize,
    },
    /// `add_workflow` named a scenario that does not exist.
    #[error("unknown scenario \"{0}\" (GET /__sim/scenarios lists them)")]
    UnknownScenario(String),
    /// No workflow exists for that account and domain.
    #[error("no workflow found for {domain} in account {account}")]
    NoWorkflow {
        /// The account.
        account: String,
        /// The domain.
        domain: String,
    },
    /// `resolve_action` on a workflow that is not waiting for the user.
    #[error(transparent)]
    NotAwaitingAction(#[from] NotAwaitingAction),
    /// An account id or domain name the simulator does not serve.
    #[error(transparent)]
    InvalidName(#[from] crate::names::InvalidName),
    /// The account already has 100 domains.
    #[error("Domain limit reached: you cannot register more than 100 domains.")]
    DomainLimit,
}

/// What `create` found or made.
#[derive(Debug, Clone)]
pub(super) struct Created {
    /// The workflow's status at creation time.
    pub status: WorkflowStatus,
}

/// The workflow map and its bound.
#[derive(Debug)]
pub(super) struct Store {
    scenarios: ScenarioSet,
    max_workflows: usize,
    /// How long an ended moving demo stays unread before it starts over; `None`
    /// keeps every demo where it ended.
    demo_restart: Option<TimeDelta>,
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: HashMap<AccountId, HashMap<DomainName, Workflow>>,
    /// Workflows stored, plus one per account without any (so accounts are bounded too).
    slots_used: usize,
}

type Guard<'a> = RwLockWriteGuard<'a, Inner>;

impl Store {
    /// An empty store for these scenarios, holding at most `max_workflows`, whose
    /// moving demos start over after `demo_restart` ended and unread.
    pub(super) fn new(
        scenarios: ScenarioSet,
        max_workflows: usize,
        demo_restart: Option<std::time::Duration>,
    ) -> Self {
        Self {
            scenarios,
            max_workflows,
            demo_restart: demo_restart
                .map(|idle| TimeDelta::from_std(idle).unwrap_or(TimeDelta::MAX)),
            inner: RwLock::default(),
        }
    }

    /// Whether `workflow` starts over on a read at `now`.
    fn restart_due(&self, workflow: &Workflow, now: DateTime<Utc>) -> bool {
        self.demo_restart
            .is_some_and(|idle| workflow.restart_due(now, idle))
    }

    /// Starts `workflow` over if it is due to.
    fn restart_if_due(&self, workflow: &mut Workflow, now: DateTime<Utc>) {
        if self.restart_due(workflow, now) {
            *workflow = workflow.restarted(now);
        }
    }

    /// The scenarios workflows are started from.
    pub(super) fn scenarios(&self) -> &ScenarioSet {
        &self.scenarios
    }

    /// Runs `read` on the workflow (noting the read), instantiating the account's
    /// demos on first touch and starting a demo over when it is due to.
    pub(super) fn read<R>(
        &self,
        account: &AccountId,
        domain: &DomainName,
        now: DateTime<Utc>,
        read: impl FnOnce(&Workflow) -> R,
    ) -> Result<Option<R>, StoreError> {
        let seen = |workflow: &Workflow| {
            workflow.seen(now);
            read(workflow)
        };
        {
            // The hot path shares the lock; only a first touch or a restart writes.
            let inner = self.inner.read();
            if let Some(workflows) = inner.accounts.get(account) {
                let workflow = workflows.get(domain);
                if !workflow.is_some_and(|workflow| self.restart_due(workflow, now)) {
                    return Ok(workflow.map(seen));
                }
            }
        }
        let mut inner = self.write();
        let workflow = self.touch(&mut inner, account, now)?.get_mut(domain);
        Ok(workflow.map(|workflow| {
            self.restart_if_due(workflow, now);
            seen(workflow)
        }))
    }

    /// `create`: returns the domain's workflow, starting one if there is none or
    /// the last one failed.
    pub(super) fn create(
        &self,
        account: &AccountId,
        domain: &DomainName,
        order: RegistrationOrder,
        now: DateTime<Utc>,
    ) -> Result<Created, StoreError> {
        let mut inner = self.write();
        let created = |workflow: &Workflow| Created {
            status: workflow.status(account, domain, now),
        };
        let workflows = self.touch(&mut inner, account, now)?;
        if let Some(existing) = workflows.get_mut(domain) {
            self.restart_if_due(existing, now);
            existing.seen(now);
        }
        // The simulator's choice for a repeat create (docs/simulator.md): the domain
        // is the idempotency key, so a running or succeeded workflow is answered
        // again; after `failed`, a create is a retry and starts a new workflow.
        if let Some(existing) = workflows.get(domain)
            && *existing.state(now) != WorkflowState::Failed
        {
            return Ok(created(existing));
        }
        if workflows.values().filter(|w| !w.is_demo()).count() >= MAX_DOMAINS_PER_ACCOUNT {
            return Err(StoreError::DomainLimit);
        }
        let Some(scenario) = self.scenarios.for_create(domain).cloned() else {
            return Err(StoreError::UnknownScenario(DEFAULT_CREATE_SCENARIO.into()));
        };
        let workflow = Workflow::start(scenario, now, order, false);
        let answer = created(&workflow);
        self.insert(&mut inner, account, domain, workflow, now)?;
        Ok(answer)
    }

    /// The account's registered domains (workflows that succeeded), by name.
    pub(super) fn registrations(
        &self,
        account: &AccountId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Registration>, StoreError> {
        let mut inner = self.write();
        let workflows = self.touch(&mut inner, account, now)?;
        // The list shows demos as a read of each would; it is not a read of each.
        for workflow in workflows.values_mut() {
            self.restart_if_due(workflow, now);
        }
        let mut registrations: Vec<Registration> = workflows
            .iter()
            .filter_map(|(domain, workflow)| workflow.registration(domain, now))
            .collect();
        registrations.sort_by(|a, b| a.domain_name.cmp(&b.domain_name));
        Ok(registrations)
    }

    /// Starts `scenario` for (account, domain), replacing any workflow there.
    pub(super) fn add(
        &self,
        account: &AccountId,
        domain: &DomainName,
        scenario: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(scenario) = self.scenarios.get(scenario).cloned() else {
            return Err(StoreError::UnknownScenario(scenario.to_owned()));
        };
        let mut inner = self.write();
        let workflow = Workflow::start(scenario, now, RegistrationOrder::default(), false);
        self.insert(&mut inner, account, domain, workflow, now)
    }

    /// The user acted on an `action_required` workflow.
    pub(super) fn resolve(
        &self,
        account: &AccountId,
        domain: &DomainName,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut inner = self.write();
        let workflow = self.touch(&mut inner, account, now)?.get_mut(domain);
        let workflow = workflow.ok_or_else(|| no_workflow(account, domain))?;
        Ok(workflow.resolve(now)?)
    }

    fn write(&self) -> Guard<'_> {
        self.inner.write()
    }

    /// The account's workflows, instantiating its demo workflows if it is new.
    fn touch<'a>(
        &self,
        inner: &'a mut Inner,
        account: &AccountId,
        now: DateTime<Utc>,
    ) -> Result<&'a mut HashMap<DomainName, Workflow>, StoreError> {
        match inner.accounts.entry(account.clone()) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let demos: HashMap<DomainName, Workflow> = self
                    .scenarios
                    .demos()
                    .filter_map(|scenario| {
                        let domain = scenario.domain.clone()?;
                        let order = RegistrationOrder::default();
                        Some((
                            domain,
                            Workflow::start(Arc::clone(scenario), now, order, true),
                        ))
                    })
                    .collect();
                self.reserve(&mut inner.slots_used, demos.len().max(1))?;
                Ok(entry.insert(demos))
            }
        }
    }

    /// Stores `workflow` for (account, domain), replacing any workflow there.
    fn insert(
        &self,
        inner: &mut Inner,
        account: &AccountId,
        domain: &DomainName,
        workflow: Workflow,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !self.touch(inner, account, now)?.contains_key(domain) {
            self.reserve(&mut inner.slots_used, 1)?;
        }
        self.touch(inner, account, now)?
            .insert(domain.clone(), workflow);
        Ok(())
    }

    fn reserve(&self, slots_used: &mut usize, slots: usize) -> Result<(), StoreError> {
        if *slots_used + slots > self.max_workflows {
            return Err(StoreError::Full {
                limit: self.max_workflows,
            });
        }
        *slots_used += slots;
        Ok(())
    }
}

fn no_workflow(account: &AccountId, domain: &DomainName) -> StoreError {
    StoreError::NoWorkflow {
        account: account.to_string(),
        domain: domain.to_string(),
    }
}
