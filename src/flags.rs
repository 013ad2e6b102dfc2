//! Value parsers shared by every clap section, the gateway's and the simulator's:
//! a leaf module (it imports only [`crate::domain`]) so the two command lines can
//! both use it without importing each other.

use std::time::Duration;

use secrecy::SecretString;

use crate::domain::AccountId;

/// A credential or key. Only emptiness is refused here: clap quotes a refused value
/// in its message, so the format is checked in `GatewayConfig::validate`, which never shows it.
pub fn secret(value: &str) -> Result<SecretString, String> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(SecretString::from(value))
}

/// An account id, as the domain type parses it.
pub fn account_id(value: &str) -> Result<AccountId, String> {
    AccountId::parse(value).map_err(|error| error.to_string())
}

/// An absolute `http://` or `https://` URL, such as an API root.
pub fn http_url(value: &str) -> Result<reqwest::Url, String> {
    const EXAMPLE: &str = "expected an absolute URL such as https://api.cloudflare.com/client/v4";
    let url = reqwest::Url::parse(value).map_err(|_| format!("not a URL: {EXAMPLE}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        scheme => Err(format!(
            "the scheme {scheme}: is not http: or https: ({EXAMPLE})"
        )),
    }
}

/// Parses `500ms`, `2s`, `5m`, `1h`.
pub fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|error| format!("{error} (expected e.g. 500ms, 2s, 5m)"))
}

/// A network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`), or one address (`10.0.0.1`).
pub fn network(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| "expected an address or a CIDR such as 10.0.0.0/8".to_owned())
}
