//! Scenarios: named scripts of workflow states, the built-in demos, and the JSON
//! scenario file format (`--scenarios FILE`, documented in `docs/simulator.md`).
//!
//! A script is a list of steps. Every step but the last lasts a fixed number of
//! seconds, except `action_required`, which lasts until the user acts
//! ([`super::SimulatorHandle::resolve_action`]). The last step is terminal:
//! `succeeded`, `failed`, or a state the spec does not (yet) know marked
//! `"completed": true`, to show how clients cope with a newer API. Validation
//! enforces that shape once, at load time.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::names::DomainName;
use crate::wire::{WorkflowError, WorkflowState};

/// The scenario `create` uses for a domain no scenario names.
pub(super) const DEFAULT_CREATE_SCENARIO: &str = "quick-success";

/// How long a step lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepEnd {
    /// A fixed stretch of workflow-clock time, in whole seconds.
    After(u32),
    /// Until [`super::SimulatorHandle::resolve_action`] is called (`action_required`).
    Resolved,
    /// Never: the workflow is complete (`succeeded`, `failed`).
    Terminal,
}

/// One state of a script with what the status shows while in it.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// The state reported.
    pub state: WorkflowState,
    /// When the step ends.
    pub end: StepEnd,
    /// Extra `context` keys (besides `domain_name`, and `registration` on success).
    pub context: Map<String, Value>,
    /// The workflow error; set exactly on `failed` steps.
    pub error: Option<WorkflowError>,
    /// What the status's `completed` says: true exactly on the last step.
    pub completed: bool,
}

/// A named script, optionally bound to a demo domain present in every account.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// Name used by `add_workflow` and the control API.
    pub name: String,
    /// Demo domain instantiated with this script in every account, if any.
    pub domain: Option<DomainName>,
    /// What the scenario is for, shown by `GET /__sim/scenarios`.
    pub description: String,
    /// The steps, validated: the last is terminal, and only the last.
    pub steps: Vec<Step>,
}

/// The scenarios a simulator knows, by name.
#[derive(Debug, Clone)]
pub struct ScenarioSet {
    by_name: BTreeMap<String, Arc<Scenario>>,
}

/// Why a scenario definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The JSON does not match the documented format.
    #[error("not a valid scenario file: {0}")]
    Format(String),
    /// A script breaks a rule.
    #[error("scenario \"{scenario}\", step {step}: {problem}")]
    Step {
        /// Scenario name.
        scenario: String,
        /// 1-based step number.
        step: usize,
        /// The rule broken.
        problem: String,
    },
    /// A scenario-level problem (name, domain, empty steps).
    #[error("scenario \"{scenario}\": {problem}")]
    Scenario {
        /// Scenario name.
        scenario: String,
        /// What is wrong.
        problem: String,
    },
}

/// The file format: `{"scenarios": [ScenarioSpec, ...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    scenarios: Vec<ScenarioSpec>,
}

/// One scenario as written in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioSpec {
    name: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    description: String,
    steps: Vec<StepSpec>,
}

/// One step as written in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    state: String,
    #[serde(default)]
    seconds: Option<u32>,
    #[serde(default)]
    context: Map<String, Value>,
    #[serde(default)]
    error: Option<WorkflowError>,
    /// Required for a state the spec does not know; implied by known ones.
    #[serde(default)]
    completed: Option<bool>,
}

/// A scenario as listed by `GET /__sim/scenarios`.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSummary {
    /// Scenario name.
    pub name: String,
    /// Demo domain, if any.
    pub domain: Option<String>,
    /// What it does.
    pub description: String,
    /// `state (duration)` per step, e.g. `pending 10s`.
    pub steps: Vec<String>,
}

impl ScenarioSet {
    /// The built-in demo scenarios.
    pub fn demo() -> Self {
        Self::from_json(super::demo::DEMO_SCENARIOS)
            .unwrap_or_else(|err| unreachable!("built-in scenarios are invalid: {err}"))
    }

    /// Parses and validates a scenario file's contents.
    pub fn from_json(json: &str) -> Result<Self, ScenarioError> {
        let file: ScenarioFile =
            serde_json::from_str(json).map_err(|err| ScenarioError::Format(err.to_string()))?;
        let mut set = Self {
            by_name: BTreeMap::new(),
        };
        for spec in file.scenarios {
            let scenario = build_scenario(spec)?;
            set.insert(scenario)?;
        }
        Ok(set)
    }

    /// Adds every scenario of `other`, replacing those with the same name.
    pub fn merge(&mut self, other: ScenarioSet) -> Result<(), ScenarioError> {
        for scenario in other.by_name.into_values() {
            self.by_name.remove(&scenario.name);
            self.insert(Arc::unwrap_or_clone(scenario))?;
        }
        Ok(())
    }

    fn insert(&mut self, scenario: Scenario) -> Result<(), ScenarioError> {
        let clash = |problem: String| ScenarioError::Scenario {
            scenario: scenario.name.clone(),
            problem,
        };
        if self.by_name.contains_key(&scenario.name) {
            return Err(clash("the name is used twice".into()));
        }
        if let Some(domain) = &scenario.domain
            && let Some(other) = self.demo_for(domain)
        {
            return Err(clash(format!(
                "domain {domain} is already used by \"{}\"",
                other.name
            )));
        }
        self.by_name
            .insert(scenario.name.clone(), Arc::new(scenario));
        Ok(())
    }

    /// The scenario called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Scenario>> {
        self.by_name.get(name)
    }

    /// The scenario bound to demo domain `domain`.
    pub(crate) fn demo_for(&self, domain: &DomainName) -> Option<&Arc<Scenario>> {
        self.by_name
            .values()
            .find(|scenario| scenario.domain.as_ref() == Some(domain))
    }

    /// Scenarios bound to a demo domain (instantiated in every account).
    pub(crate) fn demos(&self) -> impl Iterator<Item = &Arc<Scenario>> {
        self.by_name
            .values()
            .filter(|scenario| scenario.domain.is_some())
    }

    /// The script `create` uses for `domain`: its demo scenario, else the default.
    pub(crate) fn for_create(&self, domain: &DomainName) -> Option<&Arc<Scenario>> {
        self.demo_for(domain)
            .or_else(|| self.get(DEFAULT_CREATE_SCENARIO))
            .or_else(|| self.by_name.values().next())
    }

    /// Every scenario, for listing.
    pub fn summaries(&self) -> Vec<ScenarioSummary> {
        self.by_name
            .values()
            .map(|scenario| scenario.summary())
            .collect()
    }
}

impl Scenario {
    fn summary(&self) -> ScenarioSummary {
        let steps = self
            .steps
            .iter()
            .map(|step| match step.end {
                StepEnd::After(seconds) => format!("{} {seconds}s", step.state),
                StepEnd::Resolved => format!("{} until resolved", step.state),
                StepEnd::Terminal => step.state.to_string(),
            })
            .collect();
        ScenarioSummary {
            name: self.name.clone(),
            domain: self.domain.as_ref().map(|domain| domain.to_string()),
            description: self.description.clone(),
            steps,
        }
    }
}

fn build_scenario(spec: ScenarioSpec) -> Result<Scenario, ScenarioError> {
    let scenario_error = |problem: String| ScenarioError::Scenario {
        scenario: spec.name.clone(),
        problem,
    };
    if spec.name.is_empty() || spec.name.len() > 64 {
        return Err(scenario_error("the name must be 1 to 64 characters".into()));
    }
    if spec.steps.is_empty() || spec.steps.len() > 32 {
        return Err(scenario_error("a script has 1 to 32 steps".into()));
    }
    let domain = match &spec.domain {
        Some(raw) => Some(DomainName::parse(raw).map_err(|err| scenario_error(err.to_string()))?),
        None => None,
    };
    let last = spec.steps.len() - 1;
    let steps = spec
        .steps
        .into_iter()
        .enumerate()
        .map(|(index, step)| {
            build_step(step, index == last).map_err(|problem| ScenarioError::Step {
                scenario: spec.name.clone(),
                step: index + 1,
                problem,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Scenario {
        name: spec.name,
        domain,
        description: spec.description,
        steps,
    })
}

fn build_step(spec: StepSpec, is_last: bool) -> Result<Step, String> {
    let state = WorkflowState::named(&spec.state);
    let end = match (&state, spec.completed, spec.seconds) {
        (WorkflowState::Other(raw), None, _) => {
            return Err(format!(
                "unknown state \"{raw}\" needs \"completed\" (true for an end, false with \"seconds\")"
            ));
        }
        (WorkflowState::Other(_), Some(true), None) => StepEnd::Terminal,
        (WorkflowState::Other(_), Some(false), Some(s)) if s > 0 => StepEnd::After(s),
        (WorkflowState::Other(_), Some(completed), _) => {
            return Err(format!(
                "an unknown state with \"completed\": {completed} takes {} \"seconds\"",
                if completed { "no" } else { "(at least 1)" }
            ));
        }
        (_, Some(completed), _) if completed != state.is_terminal() => {
            return Err(format!(
                "{state} is always \"completed\": {}",
                state.is_terminal()
            ));
        }
        (_, _, seconds) => known_step_end(&state, seconds)?,
    };
    if (end == StepEnd::Terminal) != is_last {
        return Err(
            "the last step, and only the last, must be succeeded, failed or completed".into(),
        );
    }
    if spec.context.contains_key("domain_name") || spec.context.contains_key("registration") {
        return Err("context.domain_name and context.registration are set by the simulator".into());
    }
    let error = match (&state, spec.error) {
        (WorkflowState::Failed, error) => Some(error.unwrap_or_else(|| WorkflowError {
            code: "registry_rejected".into(),
            message: "Registry rejected the registration request.".into(),
        })),
        (_, Some(_)) => return Err("only a failed step has an \"error\"".into()),
        (_, None) => None,
    };
    Ok(Step {
        context: with_state_defaults(&state, spec.context),
        state,
        completed: end == StepEnd::Terminal,
        end,
        error,
    })
}

/// How long a step of a state the spec documents lasts, from its `seconds`.
fn known_step_end(state: &WorkflowState, seconds: Option<u32>) -> Result<StepEnd, String> {
    Ok(match (state, seconds) {
        (WorkflowState::Succeeded | WorkflowState::Failed, None) => StepEnd::Terminal,
        (WorkflowState::ActionRequired, None) => StepEnd::Resolved,
        (WorkflowState::Pending | WorkflowState::InProgress | WorkflowState::Blocked, Some(s))
            if s > 0 =>
        {
            StepEnd::After(s)
        }
        (WorkflowState::Pending | WorkflowState::InProgress | WorkflowState::Blocked, _) => {
            return Err(format!("{state} needs \"seconds\" (at least 1)"));
        }
        (_, Some(_)) => return Err(format!("{state} takes no \"seconds\"")),
        (WorkflowState::Other(raw), None) => return Err(format!("unknown state \"{raw}\"")),
    })
}

/// Fills the documented context keys a state carries when the file leaves them out.
fn with_state_defaults(
    state: &WorkflowState,
    mut context: Map<String, Value>,
) -> Map<String, Value> {
    let defaults: &[(&str, &str)] = match state {
        WorkflowState::ActionRequired => &[
            ("action", "registrant_email_confirmation_pending"),
            ("confirmation_sent_to", "r***@example.com"),
        ],
        WorkflowState::Blocked => &[
            ("blocked_by", "registry"),
            (
                "detail",
                "Awaiting registry confirmation. This may take up to 24 hours.",
            ),
        ],
        _ => &[],
    };
    for (key, value) in defaults {
        context
            .entry(*key)
            .or_insert_with(|| Value::String((*value).into()));
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        ScenarioSet::from_json(json).unwrap_err().to_string()
    }

    #[test]
    fn the_demo_scenarios_are_valid_and_bound_to_their_domains() {
        let demo = ScenarioSet::demo();
        assert_eq!(demo.demos().count(), 9);
        let unknown = demo.get("unknown-completed").unwrap().steps.last().unwrap();
        assert_eq!(unknown.state, WorkflowState::Other("cancelled".into()));
        assert!(unknown.completed);
        let domain = DomainName::parse("demo-blocked.com").unwrap();
        assert_eq!(demo.demo_for(&domain).unwrap().name, "blocked");
        let other = DomainName::parse("new.example").unwrap();
        assert_eq!(
            demo.for_create(&other).unwrap().name,
            DEFAULT_CREATE_SCENARIO
        );
    }

    #[test]
    fn invalid_scripts_are_refused_with_the_scenario_step_and_rule() {
        let one = |steps: &str| format!(r#"{{"scenarios":[{{"name":"x","steps":[{steps}]}}]}}"#);
        let cases = [
            (
                one(r#"{"state":"pending"}"#),
                "scenario \"x\", step 1: pending needs \"seconds\" (at least 1)",
            ),
            (
                one(r#"{"state":"succeeded"},{"state":"failed"}"#),
                "scenario \"x\", step 1: the last step, and only the last, must be succeeded, failed or completed",
            ),
            (
                one(r#"{"state":"pending","seconds":1}"#),
                "scenario \"x\", step 1: the last step, and only the last, must be succeeded, failed or completed",
            ),
            (
                one(r#"{"state":"waiting","seconds":1}"#),
                "scenario \"x\", step 1: unknown state \"waiting\" needs \"completed\" (true for an end, false with \"seconds\")",
            ),
            (
                one(
                    r#"{"state":"waiting","completed":false,"seconds":1},{"state":"succeeded","completed":false}"#,
                ),
                "scenario \"x\", step 2: succeeded is always \"completed\": true",
            ),
            (
                one(r#"{"state":"succeeded","seconds":3}"#),
                "scenario \"x\", step 1: succeeded takes no \"seconds\"",
            ),
            (
                one(r#"{"state":"succeeded","error":{"code":"a","message":"b"}}"#),
                "scenario \"x\", step 1: only a failed step has an \"error\"",
            ),
            (one(""), "scenario \"x\": a script has 1 to 32 steps"),
        ];
        for (json, expected) in cases {
            assert_eq!(error(&json), expected);
        }
        assert!(error("{").starts_with("not a valid scenario file: "));
    }

    #[test]
    fn merging_replaces_scenarios_of_the_same_name() {
        let mut set = ScenarioSet::demo();
        let extra = r#"{"scenarios":[{"name":"succeeds","domain":"demo-succeeds.com","steps":[{"state":"failed"}]}]}"#;
        set.merge(ScenarioSet::from_json(extra).unwrap()).unwrap();
        assert_eq!(set.get("succeeds").unwrap().steps.len(), 1);
        let clash = r#"{"scenarios":[{"name":"other","domain":"demo-fails.com","steps":[{"state":"failed"}]}]}"#;
        let err = set
            .merge(ScenarioSet::from_json(clash).unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "scenario \"other\": domain demo-fails.com is already used by \"fails\""
        );
    }
}
