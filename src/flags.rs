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

/// The origin of a URL a browser reaches the gateway at (`https://gateway.example.com`,
/// `http://localhost:8080/`), as browsers send it in `Origin`: scheme and authority,
/// lowercase, without the scheme's default port. A path, query or user name is refused.
pub fn public_origin(value: &str) -> Result<String, String> {
    let refuse =
        || "expected a URL such as https://gateway.example.com or http://localhost:8080".to_owned();
    let value = value.trim().to_ascii_lowercase();
    let (scheme, rest) = value.split_once("://").ok_or_else(refuse)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let plain = |byte: u8| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte);
    if !matches!(scheme, "http" | "https") || authority.is_empty() || !authority.bytes().all(plain)
    {
        return Err(refuse());
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_becomes_the_origin_a_browser_sends() {
        for (url, origin) in [
            (
                "https://Gateway.example.com/",
                "https://gateway.example.com",
            ),
            (
                "https://gateway.example.com:443",
                "https://gateway.example.com",
            ),
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://[::1]:80/", "http://[::1]"),
        ] {
            assert_eq!(public_origin(url).as_deref(), Ok(origin), "{url}");
        }
        for refused in [
            "gateway.example.com",
            "ftp://gw.example",
            "https://gw.example/graphql",
            "https://user@gw.example",
            "https://",
        ] {
            assert!(public_origin(refused).is_err(), "{refused}");
        }
    }
}
