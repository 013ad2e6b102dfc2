//! The binary's command line: the gateway (no subcommand) or one of its
//! subcommands. Apart from [`crate::config`] so that the gateway's settings do not
//! import the simulator's (whose flags `simulate` takes).
//!
//! Every setting is a flag and an environment variable; an error about one names
//! it the way the user gave it ([`in_the_users_terms`]), so an operator who set
//! `CLOUDFLARE_BASE_URL` in a container is not told about `--base-url`.

use std::ffi::OsString;
use std::net::SocketAddr;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{GatewayConfig, empty_means_unset};
use crate::watch::WatchArgs;
use registrar_simulator::SimulatorConfig;

/// `registrar-gateway`: GraphQL over Cloudflare Registrar's registration workflows.
#[derive(Debug, Parser)]
#[command(
    name = "registrar-gateway",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to run; the gateway when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Gateway settings (when no subcommand is given).
    #[command(flatten)]
    pub gateway: GatewayConfig,
}

impl Cli {
    /// Parses the process's arguments and environment, an empty variable counting
    /// as unset ([`empty_means_unset`]); prints help or the version, or the error in
    /// the user's terms ([`explain`]), and exits as clap does.
    pub fn from_process() -> Self {
        let mut command = empty_means_unset(Self::command());
        let parsed = command
            .try_get_matches_from_mut(std::env::args_os())
            .and_then(|mut matches| Self::from_arg_matches_mut(&mut matches))
            .map_err(|error| error.format(&mut command));
        parsed.unwrap_or_else(|error| {
            if !error.use_stderr() {
                error.exit();
            }
            eprint!("{}", explain(&error.render().to_string()));
            std::process::exit(error.exit_code());
        })
    }
}

/// `message` in the user's terms, from this process's arguments and environment.
pub fn explain(message: &str) -> String {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // An empty variable counts as unset, as it does for parsing.
    in_the_users_terms(message, &argv, |name| {
        std::env::var_os(name).is_some_and(|value| !value.is_empty())
    })
}

/// Rewrites a message about settings so that each names the setting the way the
/// user gave it: `--flag` when given on the command line (`argv`), its environment
/// variable when only that is set (`is_set`). A setting given neither way (its
/// default) keeps the words of the message. Clap's `'--flag <VALUE>'` and the
/// messages' `--flag / VARIABLE` pairs become the one name.
pub fn in_the_users_terms(
    message: &str,
    argv: &[OsString],
    is_set: impl Fn(&str) -> bool,
) -> String {
    let command = Cli::command();
    let arguments = command.get_arguments().chain(
        command
            .get_subcommands()
            .flat_map(|sub| sub.get_arguments()),
    );
    let mut message = message.to_owned();
    for argument in arguments {
        let (Some(long), Some(variable)) = (argument.get_long(), argument.get_env()) else {
            continue;
        };
        let (flag, variable) = (format!("--{long}"), variable.to_string_lossy());
        let on_the_command_line = argv.iter().any(|arg| {
            let arg = arg.to_string_lossy();
            arg == flag || arg.starts_with(&format!("{flag}="))
        });
        let name = match (on_the_command_line, is_set(&variable)) {
            (true, _) => flag.clone(),
            (false, true) => variable.to_string(),
            (false, false) => continue,
        };
        message = message.replace(&format!("{flag} / {variable}"), &name);
        message = replace_name(&message, &flag, &name, |c| {
            c.is_ascii_alphanumeric() || c == '-'
        });
        message = replace_name(&message, &variable, &name, |c| {
            c.is_ascii_alphanumeric() || c == '_'
        });
    }
    message
}

/// `text` with every whole-word `word` replaced by `with` (a flag's clap value
/// placeholder, ` <VALUE>`, goes with it).
fn replace_name(text: &str, word: &str, with: &str, in_word: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let (before, after) = (&rest[..at], &rest[at + word.len()..]);
        let whole = !before.ends_with(&in_word) && !after.starts_with(&in_word);
        out.push_str(before);
        if !whole {
            out.push_str(word);
            rest = after;
            continue;
        }
        out.push_str(with);
        rest = match after
            .strip_prefix(" <")
            .and_then(|tail| tail.split_once('>'))
        {
            Some((placeholder, tail)) if word.starts_with("--") && !placeholder.contains(' ') => {
                tail
            }
            _ => after,
        };
    }
    out.push_str(rest);
    out
}

/// The binary's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulator of the Cloudflare Registrar API on its own.
    Simulate(SimulatorConfig),
    /// Print the GraphQL schema (SDL) and exit.
    Schema {
        /// Print the Apollo Federation v2 subgraph SDL (what `--federation` serves as `_service { sdl }`).
        #[arg(long)]
        federation: bool,
    },
    /// Follow one registration through a running gateway until it ends; exits 0 when it
    /// succeeded, 3 failed, 4 action required, 5 blocked past the limit, 1 on errors.
    Watch(WatchArgs),
    /// Probe a running gateway's /healthz (for container health checks); exits 0 when healthy.
    Healthcheck {
        /// The gateway's address; 0.0.0.0 and :: are probed on loopback.
        #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The gateway's health listener (`--health-listen`): probed instead of `--listen` when set.
        #[arg(long, env = "GATEWAY_HEALTH_LISTEN")]
        health_listen: Option<SocketAddr>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn explained(message: &str, argv: &[&str], set: &[&str]) -> String {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        in_the_users_terms(message, &argv, |name| set.contains(&name))
    }

    #[test]
    fn a_setting_is_named_the_way_the_user_gave_it() {
        let clap = "error: invalid value 'x' for '--base-url <BASE_URL>': not a URL";
        assert_eq!(
            explained(clap, &["gw"], &["CLOUDFLARE_BASE_URL"]),
            "error: invalid value 'x' for 'CLOUDFLARE_BASE_URL': not a URL"
        );
        let flag = "error: invalid value 'x' for '--base-url': not a URL";
        assert_eq!(explained(clap, &["gw", "--base-url", "x"], &[]), flag);
        assert_eq!(explained(clap, &["gw", "--base-url=x"], &[]), flag);
        let ours = "CLOUDFLARE_BASE_URL is set but no credentials are";
        assert_eq!(
            explained(ours, &["gw", "--base-url", "x"], &[]),
            "--base-url is set but no credentials are"
        );
        let pair = "redis refused the user or password in --redis-url / REDIS_URL (WRONGPASS)";
        assert_eq!(
            explained(pair, &["gw"], &["REDIS_URL"]),
            "redis refused the user or password in REDIS_URL (WRONGPASS)"
        );
        assert_eq!(explained(pair, &["gw"], &[]), pair, "given neither way");
    }

    #[test]
    fn only_whole_names_are_replaced() {
        let message = "--poll-max-failures and CLOUDFLARE_API_TOKEN_FILE; --poll-max";
        assert_eq!(
            explained(
                message,
                &["gw"],
                &["GATEWAY_POLL_MAX", "CLOUDFLARE_API_TOKEN"]
            ),
            "--poll-max-failures and CLOUDFLARE_API_TOKEN_FILE; GATEWAY_POLL_MAX"
        );
        assert_eq!(
            explained(
                "CLOUDFLARE_API_TOKEN and CLOUDFLARE_API_TOKEN_FILE are both set",
                &["gw", "--api-token", "t"],
                &["CLOUDFLARE_API_TOKEN_FILE"]
            ),
            "--api-token and CLOUDFLARE_API_TOKEN_FILE are both set"
        );
    }
}
