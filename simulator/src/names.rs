//! The two names in every registrar path, checked the way the simulator's routes
//! need them: an account identifier and a domain name.
//!
//! The rules are the simulator's reading of the API reference (see
//! `docs/upstream-api.md`): an identifier has at most 32 characters (real ones are
//! 32 lowercase hex; the simulator accepts any letters and digits, so tests may use
//! short ids), and a domain name is an ASCII fully qualified name. The simulator
//! lower-cases a name (so `Example.COM` and `example.com` are one workflow) and
//! refuses non-ASCII names: clients send Unicode names in their punycode form.

use std::fmt;

/// An account id as the simulator routes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct AccountId(String);

/// A lower-cased ASCII domain name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DomainName(String);

/// A path segment that is not a name the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} \"{input}\"")]
pub struct InvalidName {
    kind: &'static str,
    input: String,
}

impl InvalidName {
    fn new(kind: &'static str, input: &str) -> Self {
        Self {
            kind,
            input: input.chars().take(64).collect(),
        }
    }
}

impl AccountId {
    /// 1 to 32 ASCII letters and digits.
    pub(crate) fn parse(input: &str) -> Result<Self, InvalidName> {
        let valid =
            (1..=32).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_alphanumeric());
        match valid {
            true => Ok(Self(input.to_owned())),
            false => Err(InvalidName::new("account id", input)),
        }
    }

    /// The id as it appears in paths.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl DomainName {
    /// At least two labels of letters, digits and inner hyphens (1 to 63 each, 253 in
    /// all), a top-level label that is not all digits, one trailing dot allowed.
    pub(crate) fn parse(input: &str) -> Result<Self, InvalidName> {
        let invalid = || InvalidName::new("domain name", input);
        let name = input.strip_suffix('.').unwrap_or(input);
        if name.is_empty() || name.len() > 253 || !name.is_ascii() {
            return Err(invalid());
        }
        let name = name.to_ascii_lowercase();
        let labels: Vec<&str> = name.split('.').collect();
        let label_ok = |label: &&str| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let top_is_numeric = labels
            .last()
            .is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit()));
        if labels.len() < 2 || !labels.iter().all(label_ok) || top_is_numeric {
            return Err(invalid());
        }
        Ok(Self(name))
    }

    /// The lower-cased name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_cased_and_malformed_ones_refused() {
        assert_eq!(
            DomainName::parse("My-New-Startup.COM.").unwrap().as_str(),
            "my-new-startup.com"
        );
        for bad in [
            "",
            "com",
            "a..com",
            "-a.com",
            "a_b.com",
            "bücher.example",
            "1.2.3.4",
            "a/b.com",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(AccountId::parse("023e105f4ecef8ad9ca31a8372d0c353").is_ok());
        for bad in ["", "a/b", "023e105f4ecef8ad9ca31a8372d0c3530"] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
