//! Results: one [`Report`] per scenario, printed as a table on stdout and
//! gathered into one JSON document (`--json-out`) with the machine and commit;
//! then one line per target a figure is held to ([`targets`]): PASS, FAIL, or
//! NOT JUDGED when there is no figure or the target is not a comparison.

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

/// How a figure fares against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    NotJudged,
}

/// The closing lines: one per target row of every report, with the figure and the target.
pub(crate) fn targets(reports: &[Report]) -> String {
    let mut out = String::from("\n== targets ==\n");
    for report in reports {
        for (name, value, target) in &report.rows {
            let Some(target) = target else { continue };
            let verdict = match judge(value, target) {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::NotJudged => "NOT JUDGED",
            };
            out.push_str(&format!(
                "{verdict:<10} {}: {name} = {} (target {target})\n",
                report.scenario,
                display(value)
            ));
        }
    }
    out
}

/// Judges `value` by the first clause of `target`: `<= N`, `>= N`, `~N` (within
/// 10 %) or `N` (exactly). A note in parentheses (the load the target is set for,
/// or why) is shown, not judged.
fn judge(value: &Value, target: &str) -> Verdict {
    let Some(value) = value.as_f64() else {
        return Verdict::NotJudged;
    };
    let clause = target.split(", ").next().unwrap_or(target);
    let clause = clause.split('(').next().unwrap_or(clause).trim();
    let (compare, bound): (fn(f64, f64) -> bool, &str) =
        if let Some(bound) = clause.strip_prefix("<=") {
            (|value, bound| value <= bound, bound)
        } else if let Some(bound) = clause.strip_prefix(">=") {
            (|value, bound| value >= bound, bound)
        } else if let Some(bound) = clause.strip_prefix('~') {
            (
                |value, bound| (value - bound).abs() <= bound.abs() * 0.1,
                bound,
            )
        } else {
            (|value, bound| value == bound, clause)
        };
    match bound.trim().replace(',', "").parse::<f64>() {
        Ok(bound) if compare(value, bound) => Verdict::Pass,
        Ok(_) => Verdict::Fail,
        Err(_) => Verdict::NotJudged,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_judged_by_their_first_comparison() {
        let cases = [
            (json!(1.01), "<= 1.02", Verdict::Pass),
            (json!(1.5), "<= 1.02", Verdict::Fail),
            (json!(1000), ">= 1000", Verdict::Pass),
            (json!(0), "0", Verdict::Pass),
            (json!(2), "0", Verdict::Fail),
            (json!(1.08), "~1 (one poller each)", Verdict::Pass),
            (json!(1.2), "~1 (one poller each)", Verdict::Fail),
            (
                json!(180.0),
                "<= 100 (10k/100), <= 250 (50k/500)",
                Verdict::Fail,
            ),
            (json!(1200), ">= 1,000", Verdict::Pass),
            (Value::Null, "<= 25 (10k/100)", Verdict::NotJudged),
            (json!(3), "fast", Verdict::NotJudged),
        ];
        for (value, target, verdict) in cases {
            assert_eq!(judge(&value, target), verdict, "{value} against {target}");
        }
    }

    #[test]
    fn the_closing_lines_name_each_target_and_skip_plain_figures() {
        let mut report = Report::new("collapse (in-progress)");
        report
            .metric("upstream calls", 12)
            .against("ratio upstream / ideal", 1.0, "<= 1.02");
        let lines = targets(&[report]);
        assert_eq!(
            lines,
            "\n== targets ==\nPASS       collapse (in-progress): ratio upstream / ideal = 1.000 (target <= 1.02)\n"
        );
    }
}
