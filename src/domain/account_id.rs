//! Cloudflare account identifiers.

use std::fmt;

use super::excerpt;

/// The platform's `registrar-api_identifier`: at most 32 characters. Real ids are
/// 32 hex characters; we accept 1 to 32 ASCII letters and digits, which is all the
/// upstream can route and nothing that could change an upstream path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

/// Why a string is not an account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid account id \"{0}\": expected 1 to 32 letters or digits (a Cloudflare account id is 32 hex characters)"
)]
pub struct InvalidAccountId(String);

impl AccountId {
    /// Longest id the platform accepts (`maxLength: 32`).
    pub const MAX_LEN: usize = 32;

    /// Validates an account id.
    pub fn parse(input: &str) -> Result<Self, InvalidAccountId> {
        let valid = !input.is_empty()
            && input.len() <= Self::MAX_LEN
            && input.bytes().all(|b| b.is_ascii_alphanumeric());
        if valid {
            Ok(Self(input.to_owned()))
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
    fn accepts_platform_ids_and_rejects_the_rest() {
        assert!(AccountId::parse("023e105f4ecef8ad9ca31a8372d0c353").is_ok());
        assert!(AccountId::parse("abc").is_ok());
        for input in [
            "",
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
