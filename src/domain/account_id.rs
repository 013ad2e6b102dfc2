//! Cloudflare account identifiers.

use std::fmt;

use super::excerpt;

/// A Cloudflare account id: 32 hexadecimal characters, lower-cased on parsing, so
/// that one account has one spelling (one cache entry, one poller, one upstream
/// call). The reference declares only `maxLength: 32`; every real id, and its
/// example, is 32 lowercase hex characters (`docs/upstream-api.md`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

/// Why a string is not an account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid account id \"{0}\": a Cloudflare account id is 32 hexadecimal characters")]
pub struct InvalidAccountId(String);

impl AccountId {
    /// The length of every account id.
    pub const LEN: usize = 32;

    /// Validates an account id and lower-cases it.
    pub fn parse(input: &str) -> Result<Self, InvalidAccountId> {
        let valid = input.len() == Self::LEN && input.bytes().all(|b| b.is_ascii_hexdigit());
        if valid {
            Ok(Self(input.to_ascii_lowercase()))
        } else {
            Err(InvalidAccountId(excerpt(input)))
        }
    }

    /// The id as sent upstream.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_platform_ids_lower_cased_and_rejects_the_rest() {
        let id = AccountId::parse("023E105F4ECEF8AD9CA31A8372D0C353").unwrap();
        assert_eq!(id.as_str(), "023e105f4ecef8ad9ca31a8372d0c353");
        for input in [
            "",
            "abc",
            "023e105f4ecef8ad9ca31a8372d0c35g",
            "023e105f4ecef8ad9ca31a8372d0c3530",
            "a/b",
            "a b",
            "../x",
            "ab%2F",
        ] {
            assert!(AccountId::parse(input).is_err(), "{input:?} was accepted");
        }
    }
}
