//! Simulator settings: the typed [`SimulatorSettings`] (builder-style, for tests and
//! sandbox mode) and the `simulate` subcommand's flags ([`SimulatorConfig`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::rate_limit::RateLimitPolicy;
use super::scenario::{ScenarioError, ScenarioSet};

/// How long an ended moving demo goes unread before it starts over, in the
/// gateway's sandbox and `simulate` (`--demo-restart-after`): short enough that
/// whoever looks a few seconds after the end sees it move again.
pub const DEMO_RESTART_AFTER: Duration = Duration::from_secs(2);

/// Everything a simulator needs to start.
#[derive(Debug, Clone)]
pub struct SimulatorSettings {
    pub(crate) manual_clock: bool,
    pub(crate) scenarios: ScenarioSet,
    pub(crate) rate_limit: RateLimitPolicy,
    pub(crate) refused_credentials: Vec<String>,
    pub(crate) sync_window: Duration,
    pub(crate) max_workflows: usize,
    pub(crate) tag_credentials: bool,
    /// `None`: every demo stays where it ended.
    pub(crate) demo_restart: Option<Duration>,
}

impl Default for SimulatorSettings {
    /// Demo scenarios, real clock, any well-formed credential, 1200 requests / 300 s,
    /// demos that stay where they ended (tests and benchmarks count on it).
    fn default() -> Self {
        Self {
            manual_clock: false,
            scenarios: ScenarioSet::demo(),
            rate_limit: RateLimitPolicy {
                limit: 1200,
                window: Duration::from_secs(300),
            },
            refused_credentials: Vec::new(),
            sync_window: Duration::from_secs(10),
            max_workflows: 100_000,
            tag_credentials: false,
            demo_restart: None,
        }
    }
}

impl SimulatorSettings {
    /// The workflow clock only moves when advanced (tests).
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// `limit` requests per `window` per credential; `limit == 0` disables limiting.
    pub fn rate_limit(mut self, limit: u32, window: Duration) -> Self {
        self.rate_limit = RateLimitPolicy { limit, window };
        self
    }

    /// Answers this bearer token or API key with 403 "Authentication error".
    pub fn refuse_credential(mut self, credential: impl Into<String>) -> Self {
        self.refused_credentials.push(credential.into());
        self
    }

    /// How long `create` waits (on the workflow clock) for completion before answering 202.
    pub fn sync_window(mut self, window: Duration) -> Self {
        self.sync_window = window;
        self
    }

    /// Adds scenarios to the demos, replacing demos of the same name.
    pub fn scenarios(mut self, scenarios: ScenarioSet) -> Result<Self, ScenarioError> {
        self.scenarios.merge(scenarios)?;
        Ok(self)
    }

    /// Most workflows stored in all (each account's demo set counts).
    pub fn max_workflows(mut self, max: usize) -> Self {
        self.max_workflows = max;
        self
    }

    /// A moving demo (one of more than one step) starts over on its next read once it
    /// has ended and gone unread for `idle` on the workflow clock (so a manual clock
    /// restarts it only when advanced past that).
    pub fn restart_demos_after(mut self, idle: Duration) -> Self {
        self.demo_restart = Some(idle);
        self
    }

    /// Adds `context.credential_tag` (see [`super::auth::credential_tag`]) to every
    /// registration status, so a client can tell whose view an answer is.
    pub fn tag_credentials(mut self) -> Self {
        self.tag_credentials = true;
        self
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The scenario file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    ReadScenarios {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The scenario file is invalid.
    #[error("invalid scenario file {path}: {source}")]
    InvalidScenarios {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ScenarioError,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A duration flag such as `300s` or `5m`, with an example when it does not parse
/// (the same words as the gateway's duration flags).
fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|error| format!("{error} (expected e.g. 500ms, 2s, 5m)"))
}

/// `registrar-gateway simulate`: run the simulator as a standalone process.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulatorConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SIMULATOR_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,

    /// JSON scenario file, added to the demo scenarios (format in docs/simulator.md).
    #[arg(long, env = "SIMULATOR_SCENARIOS")]
    pub scenarios: Option<PathBuf>,

    /// Requests allowed per credential per window; 0 turns rate limiting off.
    #[arg(long, env = "SIMULATOR_RATE_LIMIT", default_value_t = 1200)]
    pub rate_limit: u32,

    /// The rate limit window, e.g. "300s" or "5m".
    #[arg(long, env = "SIMULATOR_RATE_LIMIT_WINDOW", default_value = "300s", value_parser = duration)]
    pub rate_limit_window: Duration,

    /// A bearer token or API key to refuse with 403 (repeatable; comma-separated in the env var).
    #[arg(
        long = "refuse-token",
        env = "SIMULATOR_REFUSE_TOKENS",
        value_delimiter = ','
    )]
    pub refuse_tokens: Vec<String>,

    /// How long a create waits for its workflow to complete before answering 202.
    #[arg(long, env = "SIMULATOR_SYNC_WINDOW", default_value = "10s", value_parser = duration)]
    pub sync_window: Duration,

    /// Freeze the workflow clock; it then moves only through POST /__sim/clock/advance.
    #[arg(long, env = "SIMULATOR_MANUAL_CLOCK")]
    pub manual_clock: bool,

    /// Most workflows stored in all (each account's demo set counts).
    #[arg(long, env = "SIMULATOR_MAX_WORKFLOWS", default_value_t = 100_000)]
    pub max_workflows: usize,

    /// Add `context.credential_tag` (a hash prefix of the token or API key) to every status.
    #[arg(long, env = "SIMULATOR_TAG_CREDENTIALS")]
    pub tag_credentials: bool,

    /// How long an ended moving demo goes unread before its next read starts it over [default: 2s; off with --manual-clock unless given]; 0s keeps demos where they ended.
    #[arg(long, env = "SIMULATOR_DEMO_RESTART_AFTER", value_parser = duration)]
    pub demo_restart_after: Option<Duration>,
}

impl SimulatorConfig {
    /// Builds the settings, reading and validating the scenario file.
    pub fn into_settings(self) -> Result<SimulatorSettings, SimulatorError> {
        let mut settings = SimulatorSettings::default()
            .rate_limit(self.rate_limit, self.rate_limit_window)
            .sync_window(self.sync_window)
            .max_workflows(self.max_workflows);
        settings.manual_clock = self.manual_clock;
        settings.refused_credentials = self.refuse_tokens;
        settings.tag_credentials = self.tag_credentials;
        // A manual clock's users script every step, so demos start over only if asked.
        let demo_restart = match (self.demo_restart_after, self.manual_clock) {
            (Some(idle), _) => Some(idle).filter(|idle| !idle.is_zero()),
            (None, false) => Some(DEMO_RESTART_AFTER),
            (None, true) => None,
        };
        if let Some(idle) = demo_restart {
            settings = settings.restart_demos_after(idle);
        }
        if let Some(path) = self.scenarios {
            let json =
                std::fs::read_to_string(&path).map_err(|source| SimulatorError::ReadScenarios {
                    path: path.clone(),
                    source,
                })?;
            let invalid = |source| SimulatorError::InvalidScenarios {
                path: path.clone(),
                source,
            };
            let scenarios = ScenarioSet::from_json(&json).map_err(invalid)?;
            settings = settings.scenarios(scenarios).map_err(invalid)?;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulatorConfig,
    }

    #[test]
    fn an_invalid_scenario_file_is_named_in_the_error() {
        let path = std::env::temp_dir().join(format!("sim-scenarios-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"scenarios":[{"name":"x","steps":[{"state":"blocked"}]}]}"#,
        )
        .unwrap();
        let cli = Cli::parse_from([
            "sim",
            "--scenarios",
            path.to_str().unwrap(),
            "--rate-limit",
            "0",
        ]);
        let err = cli.args.into_settings().unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            err,
            format!(
                "invalid scenario file {}: scenario \"x\", step 1: blocked needs \"seconds\" (at least 1)",
                path.display()
            )
        );
    }

    #[test]
    fn flags_reach_the_config() {
        let cli = Cli::parse_from([
            "sim",
            "--rate-limit",
            "0",
            "--sync-window",
            "2s",
            "--refuse-token",
            "a,b",
            "--manual-clock",
        ]);
        let config = cli.args.into_settings().unwrap();
        assert_eq!(config.rate_limit.limit, 0);
        assert_eq!(config.sync_window, Duration::from_secs(2));
        assert_eq!(config.refused_credentials, ["a", "b"]);
        assert!(config.manual_clock);
        assert_eq!(config.demo_restart, None, "off with a manual clock");
        let restart = |args: &[&str]| {
            let cli = Cli::parse_from([&["sim"], args].concat());
            cli.args.into_settings().unwrap().demo_restart
        };
        assert_eq!(restart(&[]), Some(DEMO_RESTART_AFTER));
        assert_eq!(restart(&["--demo-restart-after", "0s"]), None);
        let asked = ["--manual-clock", "--demo-restart-after", "5s"];
        assert_eq!(restart(&asked), Some(Duration::from_secs(5)));
    }

    #[test]
    fn a_bad_duration_is_explained_with_an_example() {
        let error = Cli::try_parse_from(["sim", "--sync-window", "10"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("--sync-window"), "{error}");
        assert!(error.contains("(expected e.g. 500ms, 2s, 5m)"), "{error}");
    }
}
