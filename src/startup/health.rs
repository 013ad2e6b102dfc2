//! The container health check: probes a running gateway's `/healthz` without
//! shipping curl in the image (`registrar-gateway healthcheck`).

use std::net::SocketAddr;

/// Why a health probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No answer.
    #[error("no answer from {url}: {source}")]
    Unreachable {
        /// What was probed.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// An answer other than 2xx.
    #[error("{url} answered HTTP {status}")]
    Unhealthy {
        /// What was probed.
        url: String,
        /// The status received.
        status: reqwest::StatusCode,
    },
}

/// Probes `/healthz` of a gateway listening on `address` (wildcard addresses are
/// probed on loopback): the container health check, without shipping curl.
pub async fn probe_health(mut address: SocketAddr) -> Result<(), ProbeError> {
    if address.ip().is_unspecified() {
        let loopback: std::net::IpAddr = match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        address.set_ip(loopback);
    }
    let url = format!("http://{address}/healthz");
    let client = reqwest::Client::new();
    let request = client.get(&url).timeout(std::time::Duration::from_secs(2));
    let response = request
        .send()
        .await
        .map_err(|source| ProbeError::Unreachable {
            url: url.clone(),
            source,
        })?;
    match response.status() {
        status if status.is_success() => Ok(()),
        status => Err(ProbeError::Unhealthy { url, status }),
    }
}
