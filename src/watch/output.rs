//! What `watch` prints: a line per change (on a terminal, with a progress line
//! below it that says what it waits for), plain lines when stdout is not a
//! terminal (a log, a CI job), or one JSON object per line with `--json`; then one
//! line with the outcome. Errors go to stderr.

use std::io::{IsTerminal, Write};

use serde_json::{Value, json};

use super::Outcome;

/// Where and how `watch` prints.
#[derive(Debug)]
pub struct Output {
    format: Format,
    /// The last change seen (the outcome line repeats what it asks of the user).
    last: Value,
}

#[derive(Debug, PartialEq, Eq)]
enum Format {
    Json,
    Lines,
    /// Lines, and a progress line kept at the bottom (rewritten in place).
    Terminal,
}

impl Output {
    /// JSON lines when asked, else text, with a progress line when stdout is a terminal.
    pub fn for_stdout(json: bool) -> Self {
        let format = match (json, std::io::stdout().is_terminal()) {
            (true, _) => Format::Json,
            (false, true) => Format::Terminal,
            (false, false) => Format::Lines,
        };
        Self {
            format,
            last: Value::Null,
        }
    }

    /// One change of the registration.
    pub(super) fn change(&mut self, change: &Value) {
        self.last = change.clone();
        let line = match self.format {
            Format::Json => change.to_string(),
            Format::Lines | Format::Terminal => describe(&change["status"]),
        };
        self.print(&line);
        if self.format == Format::Terminal {
            print!("{}", progress(&change["status"]));
        }
        flush();
    }

    /// The last line: how it ended (an error on stderr as well).
    pub(super) fn outcome(&mut self, domain: &str, outcome: &Outcome) {
        let status = &self.last["status"];
        if self.format == Format::Json {
            let mut line = json!({ "outcome": outcome.name(), "exitCode": outcome.exit_code() });
            if let Outcome::Error(message) = outcome {
                line["message"] = message.as_str().into();
            }
            self.print(&line.to_string());
        } else {
            let line = match outcome {
                Outcome::Succeeded => format!("{domain}: registered"),
                Outcome::Failed => format!("{domain}: the registration failed"),
                Outcome::ActionRequired => format!(
                    "{domain}: waiting for the user to act: {} ({})",
                    text(&status["actionRequired"]["action"]),
                    "run watch again once done"
                ),
                Outcome::BlockedPastTheLimit => format!(
                    "{domain}: still blocked after the gateway's --blocked-max-watch: {}",
                    text(&status["blocked"]["detail"])
                ),
                Outcome::Error(_) => String::new(),
            };
            match (line.is_empty(), &self.format) {
                (false, _) => self.print(&line),
                (true, Format::Terminal) => print!("\r\x1b[2K"),
                (true, _) => {}
            }
        }
        flush();
        if let Outcome::Error(message) = outcome {
            eprintln!("error: {message}");
        }
    }

    /// A line, above the progress line on a terminal.
    fn print(&self, line: &str) {
        match self.format {
            // Carriage return and erase the line: the progress line goes.
            Format::Terminal => println!("\r\x1b[2K{line}"),
            Format::Lines | Format::Json => println!("{line}"),
        }
    }
}

/// `2026-12-07T04:10:00Z demo-succeeds.com IN_PROGRESS`, and what it asks or says.
fn describe(status: &Value) -> String {
    let head = format!(
        "{} {} {}",
        text(&status["updatedAt"]),
        text(&status["domainName"]),
        text(&status["state"])
    );
    let detail = match status["state"].as_str() {
        Some("ACTION_REQUIRED") => match status["actionRequired"]["confirmationSentTo"].as_str() {
            Some(to) => format!(
                ": the user must act: {} (sent to {to})",
                text(&status["actionRequired"]["action"])
            ),
            None => format!(
                ": the user must act: {}",
                text(&status["actionRequired"]["action"])
            ),
        },
        Some("BLOCKED") => format!(
            ": blocked by {}: {}",
            text(&status["blocked"]["blockedBy"]),
            text(&status["blocked"]["detail"])
        ),
        Some("FAILED") => format!(
            ": {} ({})",
            text(&status["error"]["message"]),
            text(&status["error"]["code"])
        ),
        Some("SUCCEEDED") => match status["registration"]["expiresAt"].as_str() {
            Some(expires) => format!(": registered until {expires}"),
            None => String::new(),
        },
        Some("UNKNOWN") => format!(" ({})", text(&status["rawState"])),
        _ => String::new(),
    };
    head + &detail
}

/// The progress line under the changes while the workflow moves.
fn progress(status: &Value) -> String {
    match status["nextCheckAt"].as_str() {
        Some(next) => format!("… {}, next check at {next}", text(&status["state"])),
        None => String::new(),
    }
}

/// A JSON string's text, or `-` when absent.
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn flush() {
    // A closed stdout (a pipe whose reader left) is not worth failing the watch for.
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_says_what_it_asks_of_the_user() {
        let action = json!({
            "domainName": "a.com", "state": "ACTION_REQUIRED", "updatedAt": "t",
            "actionRequired": { "action": "registrant_email_confirmation_pending",
                                "confirmationSentTo": "r***@a.com" },
        });
        assert_eq!(
            describe(&action),
            "t a.com ACTION_REQUIRED: the user must act: registrant_email_confirmation_pending (sent to r***@a.com)"
        );
        let failed = json!({
            "domainName": "a.com", "state": "FAILED", "updatedAt": "t",
            "error": { "code": "registry_rejected", "message": "The registry rejected it" },
        });
        assert_eq!(
            describe(&failed),
            "t a.com FAILED: The registry rejected it (registry_rejected)"
        );
    }
}
