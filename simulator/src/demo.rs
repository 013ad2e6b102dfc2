//! The built-in scenarios, written in the scenario file format so they double as
//! its reference example. Each demo domain exists in every account from the
//! account's first request; durations are short enough to watch states change.

/// Built-in scenarios (see `docs/simulator.md`).
pub(super) const DEMO_SCENARIOS: &str = r#"{
  "scenarios": [
    {
      "name": "succeeds",
      "domain": "demo-succeeds.com",
      "description": "pending, in_progress, then succeeded with context.registration",
      "steps": [
        {"state": "pending", "seconds": 10},
        {"state": "in_progress", "seconds": 20},
        {"state": "succeeded"}
      ]
    },
    {
      "name": "fails",
      "domain": "demo-fails.com",
      "description": "pending, in_progress, then failed with error registry_rejected",
      "steps": [
        {"state": "pending", "seconds": 10},
        {"state": "in_progress", "seconds": 20},
        {"state": "failed"}
      ]
    },
    {
      "name": "action-required",
      "domain": "demo-action-required.com",
      "description": "waits for the registrant's email confirmation (resolve it through the control API), then succeeds",
      "steps": [
        {"state": "pending", "seconds": 5},
        {"state": "in_progress", "seconds": 10},
        {"state": "action_required", "context": {"confirmation_sent_to": "r***@demo-action-required.com"}},
        {"state": "in_progress", "seconds": 10},
        {"state": "succeeded"}
      ]
    },
    {
      "name": "unknown-completed",
      "domain": "demo-unknown-completed.com",
      "description": "ends in a state this gateway does not know (cancelled) marked completed: true, as a newer API might",
      "steps": [
        {"state": "pending", "seconds": 5},
        {"state": "in_progress", "seconds": 10},
        {"state": "cancelled", "completed": true}
      ]
    },
    {
      "name": "blocked",
      "domain": "demo-blocked.com",
      "description": "blocked by the registry for a while, then succeeds",
      "steps": [
        {"state": "pending", "seconds": 5},
        {"state": "in_progress", "seconds": 10},
        {"state": "blocked", "seconds": 30},
        {"state": "in_progress", "seconds": 10},
        {"state": "succeeded"}
      ]
    },
    {
      "name": "pending",
      "domain": "demo-pending.com",
      "description": "stays pending for a day, then succeeds",
      "steps": [
        {"state": "pending", "seconds": 86400},
        {"state": "in_progress", "seconds": 10},
        {"state": "succeeded"}
      ]
    },
    {
      "name": "in-progress",
      "domain": "demo-in-progress.com",
      "description": "stays in_progress for a day, then succeeds",
      "steps": [
        {"state": "in_progress", "seconds": 86400},
        {"state": "succeeded"}
      ]
    },
    {
      "name": "succeeded",
      "domain": "demo-succeeded.com",
      "description": "already succeeded",
      "steps": [{"state": "succeeded"}]
    },
    {
      "name": "failed",
      "domain": "demo-failed.com",
      "description": "already failed",
      "steps": [{"state": "failed"}]
    },
    {
      "name": "quick-success",
      "description": "the default for created domains: pending 2 s, in_progress 3 s, succeeded (inside the 10 s sync window)",
      "steps": [
        {"state": "pending", "seconds": 2},
        {"state": "in_progress", "seconds": 3},
        {"state": "succeeded"}
      ]
    }
  ]
}"#;
