//! One registration workflow: a scenario started at a virtual time.
//!
//! The state is derived lazily from `(created_at, script, resolutions, now)`, so no
//! task or timer runs per workflow; a status read is a short walk over the steps.
//!
//! A moving demo workflow (a demo whose script has more than one step) may start
//! over once it has ended and nobody has read it for a while (the store decides
//! when, [`Workflow::restart_due`]): a newcomer then sees it move from the start,
//! however long ago the account's demos began. Each read is noted for that.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Months, SubsecRound, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::scenario::{Scenario, StepEnd};
use crate::names::{AccountId, DomainName};
use crate::wire::{Links, Registration, WorkflowState, WorkflowStatus};

/// How long an ended moving demo whose end nobody has read goes unread before it
/// starts over: longer than a follower waits between reads (the gateway polls a
/// moving workflow at least every 30 s and a blocked one every minute, by
/// default), so a follower sees the end; a newcomer who looks later sees it move.
pub(super) const UNSEEN_END_IDLE: TimeDelta = TimeDelta::seconds(120);

/// What the registrant asked for in `create` (defaults for demo workflows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RegistrationOrder {
    /// Registration term, 1 to 10 years.
    pub years: u32,
    /// Whether the domain renews automatically.
    pub auto_renew: bool,
    /// `redaction` or `off`.
    pub privacy_mode: String,
}

impl Default for RegistrationOrder {
    fn default() -> Self {
        Self {
            years: 1,
            auto_renew: true,
            privacy_mode: "redaction".into(),
        }
    }
}

/// A running (or finished) workflow.
#[derive(Debug)]
pub(super) struct Workflow {
    scenario: Arc<Scenario>,
    created_at: DateTime<Utc>,
    /// When each `action_required` step was resolved, by step index.
    resolved_at: Vec<Option<DateTime<Utc>>>,
    order: RegistrationOrder,
    /// Demo workflows do not count towards the account's 100-domain limit.
    demo: bool,
    /// The workflow-clock time (Unix milliseconds) of its latest API read; an
    /// atomic, so reads note it under the store's shared (read) lock.
    seen_at_ms: AtomicI64,
}

/// Where a workflow is at some instant.
#[derive(Debug, Clone, Copy)]
struct Position {
    index: usize,
    entered_at: DateTime<Utc>,
    /// When the step ends by itself; `None` for action_required and terminal steps.
    leaves_at: Option<DateTime<Utc>>,
}

/// `resolve_action` on a workflow that is not waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the workflow is {state}, not action_required")]
pub struct NotAwaitingAction {
    /// The state it is in.
    pub state: WorkflowState,
}

impl Workflow {
    /// Starts `scenario` at virtual time `now` (whole seconds are kept).
    pub(super) fn start(
        scenario: Arc<Scenario>,
        now: DateTime<Utc>,
        order: RegistrationOrder,
        demo: bool,
    ) -> Self {
        let steps = scenario.steps.len();
        let created_at = now.trunc_subsecs(0);
        Self {
            scenario,
            created_at,
            resolved_at: vec![None; steps],
            order,
            demo,
            seen_at_ms: AtomicI64::new(created_at.timestamp_millis()),
        }
    }

    /// Whether this is a demo workflow.
    pub(super) fn is_demo(&self) -> bool {
        self.demo
    }

    /// Notes an API read at `now`: the workflow is not idle.
    pub(super) fn seen(&self, now: DateTime<Utc>) {
        self.seen_at_ms
            .fetch_max(now.timestamp_millis(), Ordering::Relaxed);
    }

    /// Whether this is a moving demo (more than one step) that has ended and gone
    /// unread long enough at `now` to start over: `idle` once a read saw the end,
    /// [`UNSEEN_END_IDLE`] (or `idle`, if longer) while none has, so that whoever
    /// follows it at a slow poll still sees it end. Fixed-state demos (one step)
    /// and created workflows never start over.
    pub(super) fn restart_due(&self, now: DateTime<Utc>, idle: TimeDelta) -> bool {
        if !self.demo || self.scenario.steps.len() < 2 {
            return false;
        }
        let position = self.position(now);
        if !self.scenario.steps[position.index].completed {
            return false;
        }
        let seen_at = DateTime::from_timestamp_millis(self.seen_at_ms.load(Ordering::Relaxed))
            .unwrap_or(self.created_at);
        let wait = match seen_at >= position.entered_at {
            true => idle,
            false => idle.max(UNSEEN_END_IDLE),
        };
        now - seen_at >= wait
    }

    /// The same script and order, started again at `now`.
    pub(super) fn restarted(&self, now: DateTime<Utc>) -> Self {
        Self::start(
            Arc::clone(&self.scenario),
            now,
            self.order.clone(),
            self.demo,
        )
    }

    fn position(&self, now: DateTime<Utc>) -> Position {
        let mut entered_at = self.created_at;
        let last = self.scenario.steps.len() - 1;
        for (index, step) in self.scenario.steps.iter().enumerate() {
            let leaves_at = match step.end {
                StepEnd::After(seconds) => Some(entered_at + TimeDelta::seconds(seconds.into())),
                StepEnd::Resolved => self.resolved_at[index],
                StepEnd::Terminal => None,
            };
            match leaves_at {
                Some(end) if end <= now && index < last => entered_at = end,
                _ => {
                    return Position {
                        index,
                        entered_at,
                        leaves_at,
                    };
                }
            }
        }
        unreachable!("validated scripts end with a terminal step")
    }

    /// The state at `now`.
    pub(super) fn state(&self, now: DateTime<Utc>) -> &WorkflowState {
        &self.scenario.steps[self.position(now).index].state
    }

    /// When the state next changes by itself, if it will.
    pub(super) fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.position(now).leaves_at
    }

    /// The `registration-status` result at `now`.
    pub(super) fn status(
        &self,
        account: &AccountId,
        domain: &DomainName,
        now: DateTime<Utc>,
    ) -> WorkflowStatus {
        let position = self.position(now);
        let step = &self.scenario.steps[position.index];
        let mut context = Map::with_capacity(step.context.len() + 2);
        context.insert("domain_name".into(), Value::String(domain.to_string()));
        context.extend(
            step.context
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        if step.state == WorkflowState::Succeeded {
            let registration = serde_json::to_value(self.registration_record(domain))
                .unwrap_or_else(|err| unreachable!("a Registration always serialises: {err}"));
            context.insert("registration".into(), registration);
        }
        WorkflowStatus {
            completed: step.completed,
            state: step.state.clone(),
            created_at: self.created_at,
            updated_at: position.entered_at,
            links: links(account, domain),
            context,
            error: step.error.clone(),
        }
    }

    /// The Registration resource, once the workflow has succeeded.
    pub(super) fn registration(
        &self,
        domain: &DomainName,
        now: DateTime<Utc>,
    ) -> Option<Registration> {
        (*self.state(now) == WorkflowState::Succeeded).then(|| self.registration_record(domain))
    }

    fn registration_record(&self, domain: &DomainName) -> Registration {
        let expires_at = self
            .created_at
            .checked_add_months(Months::new(12 * self.order.years));
        Registration {
            domain_name: domain.to_string(),
            status: "active".into(),
            created_at: self.created_at,
            expires_at,
            auto_renew: self.order.auto_renew,
            privacy_mode: self.order.privacy_mode.clone(),
            locked: true,
        }
    }

    /// The user acted: an `action_required` workflow moves on to its next step at `now`.
    pub(super) fn resolve(&mut self, now: DateTime<Utc>) -> Result<(), NotAwaitingAction> {
        let position = self.position(now);
        let step = &self.scenario.steps[position.index];
        if step.end != StepEnd::Resolved {
            return Err(NotAwaitingAction {
                state: step.state.clone(),
            });
        }
        self.resolved_at[position.index] = Some(now.trunc_subsecs(0).max(position.entered_at));
        Ok(())
    }
}

/// `links` of a registration workflow: relative paths without `/client/v4`.
pub(super) fn links(account: &AccountId, domain: &DomainName) -> Links {
    let resource = format!("/accounts/{account}/registrar/registrations/{domain}");
    Links {
        status: format!("{resource}/registration-status"),
        resource,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ScenarioSet;

    fn start(name: &str) -> (Workflow, DateTime<Utc>) {
        let scenarios = ScenarioSet::demo();
        let now = DateTime::parse_from_rfc3339("2025-10-27T10:00:00Z")
            .unwrap()
            .to_utc();
        let scenario = scenarios.get(name).unwrap().clone();
        (
            Workflow::start(scenario, now, RegistrationOrder::default(), true),
            now,
        )
    }

    #[test]
    fn state_follows_the_script_and_updated_at_is_the_transition_time() {
        let (workflow, t0) = start("succeeds");
        assert_eq!(
            *workflow.state(t0 + TimeDelta::seconds(9)),
            WorkflowState::Pending
        );
        let at_10 = t0 + TimeDelta::seconds(10);
        assert_eq!(*workflow.state(at_10), WorkflowState::InProgress);
        assert_eq!(
            workflow.next_change(at_10),
            Some(t0 + TimeDelta::seconds(30))
        );
        let domain = DomainName::parse("demo-succeeds.com").unwrap();
        let account = AccountId::parse("abc").unwrap();
        let done = workflow.status(&account, &domain, t0 + TimeDelta::days(3));
        assert_eq!(done.updated_at, t0 + TimeDelta::seconds(30));
        assert!(done.completed);
    }

    #[test]
    fn action_required_waits_for_resolution_and_then_moves_on() {
        let (mut workflow, t0) = start("action-required");
        let late = t0 + TimeDelta::days(30);
        assert_eq!(*workflow.state(late), WorkflowState::ActionRequired);
        assert_eq!(workflow.next_change(late), None);
        workflow.resolve(late).unwrap();
        assert_eq!(*workflow.state(late), WorkflowState::InProgress);
        let error = workflow.resolve(late).unwrap_err();
        assert_eq!(error.state, WorkflowState::InProgress);
        assert_eq!(
            *workflow.state(late + TimeDelta::seconds(10)),
            WorkflowState::Succeeded
        );
    }

    #[test]
    fn a_moving_demo_restarts_once_its_end_was_seen_and_it_went_unread() {
        let idle = TimeDelta::seconds(2);
        let (workflow, t0) = start("succeeds");
        let ended = t0 + TimeDelta::seconds(30);
        workflow.seen(ended - TimeDelta::seconds(3));
        assert!(
            !workflow.restart_due(ended - TimeDelta::seconds(1), idle),
            "still moving"
        );
        assert!(
            !workflow.restart_due(ended + TimeDelta::seconds(60), idle),
            "nobody saw the end yet"
        );
        workflow.seen(ended + TimeDelta::seconds(5));
        assert!(
            !workflow.restart_due(ended + TimeDelta::seconds(6), idle),
            "seen 1 s ago"
        );
        let later = ended + TimeDelta::seconds(7);
        assert!(workflow.restart_due(later, idle));
        let again = workflow.restarted(later);
        assert_eq!(*again.state(later), WorkflowState::Pending);
        let status = again.status(&account(), &domain("demo-succeeds.com"), later);
        assert_eq!(status.created_at, later);
        assert!(!again.restart_due(later + TimeDelta::seconds(29), idle));
    }

    #[test]
    fn an_end_nobody_saw_restarts_once_unread_for_the_longer_idle_time() {
        let idle = TimeDelta::seconds(2);
        let (workflow, t0) = start("fails");
        let last_read = t0 + TimeDelta::seconds(25);
        workflow.seen(last_read);
        assert!(!workflow.restart_due(last_read + UNSEEN_END_IDLE - TimeDelta::seconds(1), idle));
        assert!(workflow.restart_due(last_read + UNSEEN_END_IDLE, idle));
    }

    #[test]
    fn fixed_demos_and_created_workflows_never_restart() {
        let idle = TimeDelta::seconds(2);
        let (fixed, t0) = start("succeeded");
        assert!(!fixed.restart_due(t0 + TimeDelta::days(1), idle));
        let scenario = ScenarioSet::demo().get("succeeds").unwrap().clone();
        let created = Workflow::start(scenario, t0, RegistrationOrder::default(), false);
        assert!(!created.restart_due(t0 + TimeDelta::days(1), idle));
        let (waiting, t0) = start("action-required");
        assert!(
            !waiting.restart_due(t0 + TimeDelta::days(1), idle),
            "waits for the user"
        );
    }

    fn account() -> AccountId {
        AccountId::parse("abc").unwrap()
    }

    fn domain(name: &str) -> DomainName {
        DomainName::parse(name).unwrap()
    }
}
