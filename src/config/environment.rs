//! Empty means unset. Deployment tools pass optional settings as variables that
//! are set but empty (compose's `${CLOUDFLARE_API_TOKEN:-}`, a Kubernetes
//! `optional` secret, an `.env` line `REDIS_URL=`); each of them must behave as if
//! the variable were absent, not fail as "an empty value" or, worse, mean "".
//! Done once for the whole command line rather than per setting: every argument
//! bound to a variable that is empty in this process loses that binding before
//! clap reads the environment.

use std::ffi::OsStr;

/// `command` (and its subcommands) with the environment binding removed from every
/// argument whose variable is set but empty, so that its flag or default applies.
pub fn empty_means_unset(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            if arg.get_env().is_some_and(is_set_but_empty) {
                arg.env(None)
            } else {
                arg
            }
        })
        .mut_subcommands(empty_means_unset)
}

fn is_set_but_empty(name: &OsStr) -> bool {
    std::env::var_os(name).is_some_and(|value| value.is_empty())
}
