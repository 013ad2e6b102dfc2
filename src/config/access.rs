//! The access section: who may call the gateway and whose Cloudflare credential
//! it uses.

use clap::Args;
use secrecy::SecretString;

use super::ConfigError;
use super::secret_file::{self, SecretLines, one_of};
use crate::access::CredentialMode;
use crate::flags::secret;

/// Who may call the gateway and whose Cloudflare credential it uses.
#[derive(Debug, Args)]
pub struct AccessConfig {
    /// Whose Cloudflare credential upstream calls use: `server` (the gateway's own), `pass-through` (the caller's `Authorization: Bearer` or `X-Auth-Email` + `X-Auth-Key`; refused without one) or `pass-through-or-server` (the caller's when sent, else the gateway's).
    #[arg(long, env = "GATEWAY_CREDENTIAL_MODE", value_enum, default_value_t = CredentialMode::Server)]
    pub credential_mode: CredentialMode,
    /// A key callers must present in `X-Gateway-Key` (or, in server mode, as `Authorization: Bearer`); repeatable, comma-separated in the env var; none means no key is required.
    #[arg(
        long = "access-key",
        env = "GATEWAY_ACCESS_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = secret
    )]
    pub access_keys: Vec<SecretString>,
    /// A file of access keys, one per line (a container secret), instead of GATEWAY_ACCESS_KEYS.
    #[arg(
        long,
        env = "GATEWAY_ACCESS_KEYS_FILE",
        value_parser = secret_file::read_lines
    )]
    pub access_keys_file: Option<SecretLines>,
}

impl AccessConfig {
    /// The access keys, from `--access-key` / GATEWAY_ACCESS_KEYS or from their file; both is an error.
    pub fn keys(&self) -> Result<&[SecretString], ConfigError> {
        let listed = (!self.access_keys.is_empty()).then_some(&self.access_keys);
        let from_file = self.access_keys_file.as_ref().map(|file| &file.0);
        let keys = one_of(
            listed,
            "GATEWAY_ACCESS_KEYS",
            from_file,
            "GATEWAY_ACCESS_KEYS_FILE",
        )?;
        Ok(keys.map(Vec::as_slice).unwrap_or_default())
    }
}
