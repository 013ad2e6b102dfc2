//! Results: one [`Report`] per scenario, printed as a table on stdout and
//! gathered into one JSON document (`--json-out`) with the machine and commit.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value, json};

use crate::error::BenchError;

/// One scenario's figures.
#[derive(Debug)]
pub(crate) struct Report {
    /// Scenario name, e.g. `collapse (in-progress)`.
    pub scenario: String,
    /// Table rows: metric, value, target (if BENCHMARKS.md sets one).
    rows: Vec<(String, Value, Option<String>)>,
    /// Raw series for plots (latency samples summaries, RSS curves...).
    series: Map<String, Value>,
}

impl Report {
    /// An empty report for `scenario`.
    pub(crate) fn new(scenario: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            rows: Vec::new(),
            series: Map::new(),
        }
    }

    /// Adds a row without a target.
    pub(crate) fn metric(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        self.rows.push((name.to_owned(), value.into(), None));
        self
    }

    /// Adds a row printed against `target`.
    pub(crate) fn against(
        &mut self,
        name: &str,
        value: impl Into<Value>,
        target: &str,
    ) -> &mut Self {
        self.rows
            .push((name.to_owned(), value.into(), Some(target.to_owned())));
        self
    }

    /// Attaches a JSON-only series.
    pub(crate) fn series(&mut self, name: &str, value: Value) -> &mut Self {
        self.series.insert(name.to_owned(), value);
        self
    }

    /// A report saying why the scenario was not measured.
    pub(crate) fn not_measured(scenario: &str, error: &BenchError) -> Self {
        let mut report = Self::new(scenario);
        report.metric("status", error.to_string());
        report
    }

    /// The table, for stdout.
    pub(crate) fn table(&self) -> String {
        let mut out = format!("\n== {} ==\n", self.scenario);
        out.push_str(&format!("{:<44} {:>18}  {}\n", "metric", "value", "target"));
        for (name, value, target) in &self.rows {
            let target = target.as_deref().unwrap_or("");
            out.push_str(&format!("{name:<44} {:>18}  {target}\n", display(value)));
        }
        out
    }

    fn to_json(&self) -> Value {
        let metrics: Map<String, Value> = self
            .rows
            .iter()
            .map(|(name, value, _)| (name.clone(), value.clone()))
            .collect();
        json!({ "scenario": self.scenario, "metrics": metrics, "series": self.series })
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() => format!("{float:.3}"),
            _ => number.to_string(),
        },
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// Writes every report, the machine and the commit to `path`.
pub(crate) fn write_json(path: &Path, command: &str, reports: &[Report]) -> Result<(), BenchError> {
    let document = json!({
        "command": command,
        "commit": commit(),
        "machine": machine(),
        "scenarios": reports.iter().map(Report::to_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&document)
        .map_err(|error| BenchError::Unexpected(error.to_string()))?;
    std::fs::write(path, text)?;
    Ok(())
}

fn commit() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = meminfo
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok());
    json!({ "cpus": cpus, "memory_kib": memory_kib })
}
