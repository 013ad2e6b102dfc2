//! Trust for `rediss://`. By default the Redis client (redis-rs over rustls) trusts
//! the system's roots, as read by rustls-native-certs (which also honours
//! `SSL_CERT_FILE`). A Redis whose certificate a private CA signed (self-hosted,
//! or a managed service's private endpoint) needs that CA instead: `--redis-ca-file`,
//! a PEM file, replaces the system's roots for Redis only.

use std::path::Path;

use redis::TlsCertificates;

use super::{RedisStoreError, RedisUrl};

/// What starts each certificate in a PEM file.
const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// A client for `url`, trusting the CAs in `ca_file` when one is given. Neither the
/// URL nor the file's content is ever shown in an error.
pub(super) fn client(
    url: &RedisUrl,
    ca_file: Option<&Path>,
) -> Result<redis::Client, RedisStoreError> {
    let bad_url = |error: redis::RedisError| RedisStoreError::BadUrl(format!("{:?}", error.kind()));
    let Some(path) = ca_file else {
        return redis::Client::open(url.expose()).map_err(bad_url);
    };
    let unusable = |reason: String| RedisStoreError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|error| unusable(error.to_string()))?;
    // The client would take a file without certificates as an empty trust store
    // and then refuse every server: say so at start-up instead.
    if !pem
        .windows(PEM_CERTIFICATE.len())
        .any(|window| window == PEM_CERTIFICATE)
    {
        return Err(unusable("no PEM certificate in it".to_owned()));
    }
    let certificates = TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    redis::Client::build_with_tls(url.expose(), certificates)
        .map_err(|error| unusable(format!("unreadable PEM ({:?})", error.kind())))
}
