//! Secrets read from files (`CLOUDFLARE_API_TOKEN_FILE` and the like), the way
//! container secret stores hand them over (Docker and Kubernetes mount them as
//! files): a flag's value shows in the process list, a file's content does not.
//! The trailing newline editors and `echo` leave is dropped. Errors name the
//! variable and the path, never the content; a secret given both ways is refused.

use std::fmt;
use std::path::Path;

use secrecy::SecretString;

use super::ConfigError;

/// Largest secret file read (tokens and key lists are far smaller).
const MAX_FILE_LEN: u64 = 64 * 1024;

/// A value parser reading the secret in the file at its path, for `variable`.
pub(super) fn read(
    variable: &'static str,
) -> impl Fn(&str) -> Result<SecretString, String> + Clone + Send + Sync + 'static {
    move |path| {
        let content = read_file(variable, path)?;
        let secret = content.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(format!("{variable}: the file {path} is empty"));
        }
        Ok(SecretString::from(secret))
    }
}

/// Secrets one per line (blank lines and surrounding spaces ignored).
#[derive(Clone)]
pub struct SecretLines(pub Vec<SecretString>);

impl fmt::Debug for SecretLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretLines({} redacted)", self.0.len())
    }
}

/// A value parser reading one secret per line of the file at its path, for `variable`.
pub(super) fn read_lines(
    variable: &'static str,
) -> impl Fn(&str) -> Result<SecretLines, String> + Clone + Send + Sync + 'static {
    move |path| {
        let content = read_file(variable, path)?;
        let lines: Vec<SecretString> = content
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(SecretString::from)
            .collect();
        match lines.is_empty() {
            true => Err(format!("{variable}: the file {path} holds no key")),
            false => Ok(SecretLines(lines)),
        }
    }
}

fn read_file(variable: &'static str, path: &str) -> Result<String, String> {
    let path = Path::new(path);
    let unreadable =
        |reason: String| format!("{variable}: cannot read {}: {reason}", path.display());
    let length = std::fs::metadata(path)
        .map_err(|error| unreadable(error.kind().to_string()))?
        .len();
    if length > MAX_FILE_LEN {
        return Err(unreadable(format!("larger than {MAX_FILE_LEN} bytes")));
    }
    // The content is never quoted: a non-UTF-8 file is refused by kind only.
    std::fs::read_to_string(path).map_err(|error| unreadable(error.kind().to_string()))
}

/// The secret given as `value` (variable `name`) or read from `file` (`file_name`).
pub(super) fn one_of<'a, T>(
    value: Option<&'a T>,
    name: &'static str,
    file: Option<&'a T>,
    file_name: &'static str,
) -> Result<Option<&'a T>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::Unusable(format!(
            "{name} and {file_name} are both set: give the secret one way"
        ))),
        (value, file) => Ok(value.or(file)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn file(name: &str, content: &str) -> String {
        let path = std::env::temp_dir().join(format!("gw-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline_only() {
        let path = file("token", "tok en-123\r\n");
        let secret = read("CLOUDFLARE_API_TOKEN_FILE")(&path).unwrap();
        assert_eq!(secret.expose_secret(), "tok en-123");
        let keys =
            read_lines("GATEWAY_ACCESS_KEYS_FILE")(&file("keys", "one\n\n  two \n")).unwrap();
        let keys: Vec<&str> = keys.0.iter().map(ExposeSecret::expose_secret).collect();
        assert_eq!(keys, ["one", "two"]);
    }

    #[test]
    fn errors_name_the_variable_and_never_the_content() {
        let missing = read("CLOUDFLARE_API_TOKEN_FILE")("/nonexistent/token").unwrap_err();
        assert!(
            missing.starts_with("CLOUDFLARE_API_TOKEN_FILE: cannot read /nonexistent/token"),
            "{missing}"
        );
        let empty = read("CLOUDFLARE_API_KEY_FILE")(&file("empty", "\n")).unwrap_err();
        assert!(empty.contains("CLOUDFLARE_API_KEY_FILE") && empty.contains("is empty"));
        let binary = file("binary", "secret-\u{0}\u{0}");
        std::fs::write(&binary, b"secret-\xff\xfe").unwrap();
        let invalid = read("CLOUDFLARE_API_TOKEN_FILE")(&binary).unwrap_err();
        assert!(!invalid.contains("secret-"), "{invalid}");
        let both = one_of(
            Some(&1),
            "CLOUDFLARE_API_TOKEN",
            Some(&2),
            "CLOUDFLARE_API_TOKEN_FILE",
        );
        assert_eq!(
            both.unwrap_err().to_string(),
            "CLOUDFLARE_API_TOKEN and CLOUDFLARE_API_TOKEN_FILE are both set: give the secret one way"
        );
    }
}
