//! Fully qualified domain names, normalised to lowercase ASCII (punycode) without a trailing dot.

use std::fmt;

use super::excerpt;

/// Longest input accepted before IDNA processing, so hostile input costs little.
const MAX_INPUT_BYTES: usize = 1024;
/// RFC 1035 limits.
const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// A validated, normalised FQDN such as `example.com` or `xn--bcher-kva.example`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

/// Why a string is not a domain name we will send upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid domain name \"{input}\": {reason}")]
pub struct InvalidDomainName {
    input: String,
    reason: &'static str,
}

impl DomainName {
    /// Parses user input: lowercases, drops one trailing dot, converts Unicode labels
    /// to punycode and checks RFC 1035 lengths and LDH characters.
    pub fn parse(input: &str) -> Result<Self, InvalidDomainName> {
        let fail = |reason| InvalidDomainName {
            input: excerpt(input),
            reason,
        };
        if input.len() > MAX_INPUT_BYTES {
            return Err(fail("longer than 253 characters"));
        }
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(fail("it is empty"));
        }
        if trimmed.is_ascii() {
            let lower = trimmed.to_ascii_lowercase();
            // Only names that need it go through IDNA; the common ASCII path stays cheap.
            if !lower.contains("xn--") {
                return Self::check_ascii(lower).map_err(fail);
            }
        }
        let ascii = idna::domain_to_ascii_strict(trimmed)
            .map_err(|_| fail("not a valid internationalised domain name"))?;
        Self::check_ascii(ascii).map_err(fail)
    }

    fn check_ascii(name: String) -> Result<Self, &'static str> {
        if name.len() > MAX_NAME_LEN {
            return Err("longer than 253 characters");
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err("a registrable name has at least two labels, such as example.com");
        }
        for label in &labels {
            if label.is_empty() {
                return Err("it has an empty label");
            }
            if label.len() > MAX_LABEL_LEN {
                return Err("a label is longer than 63 characters");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err("labels may hold only letters, digits and hyphens");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err("a label starts or ends with a hyphen");
            }
        }
        let tld = labels[labels.len() - 1];
        if tld.bytes().all(|b| b.is_ascii_digit()) {
            return Err("the top-level label is numeric (an IP address is not a domain)");
        }
        Ok(Self(name))
    }

    /// The normalised name, as sent upstream.
    pub fn as_str(&self) -> &str {
        &self.0
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
    fn equivalent_spellings_normalise_to_one_name() {
        for input in ["Example.COM", "example.com.", "EXAMPLE.com."] {
            assert_eq!(DomainName::parse(input).unwrap().as_str(), "example.com");
        }
    }

    #[test]
    fn unicode_names_become_punycode() {
        let name = DomainName::parse("Bücher.example").unwrap();
        assert_eq!(name.as_str(), "xn--bcher-kva.example");
        assert_eq!(DomainName::parse("xn--bcher-kva.example").unwrap(), name);
    }

    #[test]
    fn hostile_and_malformed_names_are_rejected() {
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}com", "abcdefghi.".repeat(26));
        for input in [
            "",
            ".",
            "com",
            "a..com",
            "-a.com",
            "a-.com",
            "a_b.com",
            "a b.com",
            "../x.com",
            "a%2Fb.com",
            "a/b.com",
            "a?.com",
            "a#.com",
            "a\0.com",
            "1.2.3.4",
            &long_label,
            &long_name,
        ] {
            assert!(DomainName::parse(input).is_err(), "{input:?} was accepted");
        }
    }

    #[test]
    fn the_error_names_the_input_and_the_reason() {
        let err = DomainName::parse("bad_name.com").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid domain name \"bad_name.com\": labels may hold only letters, digits and hyphens"
        );
    }
}
