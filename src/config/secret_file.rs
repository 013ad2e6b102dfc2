//! Secrets read from files (`CLOUDFLARE_API_TOKEN_FILE` and the like), the way
//! container secret stores hand them over (Docker and Kubernetes mount them as
//! files): a flag's value shows in the process list, a file's content does not.
//! The trailing newline editors and `echo` leave is dropped. Errors say what is
//! wrong with the file in plain words and show its path, never its content (clap
//! puts the setting's name in front, see [`crate::cli::in_the_users_terms`]); a
//! secret given both ways is refused.

use std::fmt;
use std::io::ErrorKind;
use std::path::Path;

use secrecy::SecretString;

use super::ConfigError;

/// Largest secret file read (tokens and key lists are far smaller).
const MAX_FILE_LEN: u64 = 64 * 1024;

/// A value parser: the secret in the file at `path`.
pub(super) fn read(path: &str) -> Result<SecretString, String> {
    let content = read_file(path)?;
    let secret = content.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(format!("the file {path} is empty"));
    }
    Ok(SecretString::from(secret))
}

/// Secrets one per line (blank lines and surrounding spaces ignored).
#[derive(Clone)]
pub struct SecretLines(pub Vec<SecretString>);

impl fmt::Debug for SecretLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretLines({} redacted)", self.0.len())
    }
}

/// A value parser: one secret per line of the file at `path`.
pub(super) fn read_lines(path: &str) -> Result<SecretLines, String> {
    let content = read_file(path)?;
    let lines: Vec<SecretString> = content
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(SecretString::from)
        .collect();
    match lines.is_empty() {
        true => Err(format!("the file {path} holds no key")),
        false => Ok(SecretLines(lines)),
    }
}

fn read_file(path: &str) -> Result<String, String> {
    let shown = Path::new(path).display();
    let unreadable = |error: std::io::Error| match error.kind() {
        ErrorKind::NotFound => format!("the file {shown} does not exist"),
        ErrorKind::PermissionDenied => {
            format!("the file {shown} cannot be read (permission denied)")
        }
        ErrorKind::IsADirectory => format!("{shown} is a folder, not a file"),
        // Not UTF-8: refused by kind only, the content is never quoted.
        ErrorKind::InvalidData => format!("the file {shown} is not UTF-8 text"),
        kind => format!("the file {shown} cannot be read ({kind})"),
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if metadata.is_dir() {
        return Err(format!("{shown} is a folder, not a file"));
    }
    if metadata.len() > MAX_FILE_LEN {
        return Err(format!(
            "the file {shown} is larger than {MAX_FILE_LEN} bytes"
        ));
    }
    std::fs::read_to_string(path).map_err(unreadable)
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
        let secret = read(&path).unwrap();
        assert_eq!(secret.expose_secret(), "tok en-123");
        let keys = read_lines(&file("keys", "one\n\n  two \n")).unwrap();
        let keys: Vec<&str> = keys.0.iter().map(ExposeSecret::expose_secret).collect();
        assert_eq!(keys, ["one", "two"]);
    }

    #[test]
    fn errors_say_what_is_wrong_with_the_file_and_never_show_the_content() {
        let missing = read("/nonexistent/token").unwrap_err();
        assert_eq!(missing, "the file /nonexistent/token does not exist");
        let empty = read(&file("empty", "\n")).unwrap_err();
        assert!(empty.ends_with("is empty"), "{empty}");
        let folder = read(&std::env::temp_dir().display().to_string()).unwrap_err();
        assert!(folder.ends_with("is a folder, not a file"), "{folder}");
        let binary = file("binary", "secret-\u{0}\u{0}");
        std::fs::write(&binary, b"secret-\xff\xfe").unwrap();
        let invalid = read(&binary).unwrap_err();
        assert!(invalid.ends_with("is not UTF-8 text"), "{invalid}");
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
