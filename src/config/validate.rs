//! Settings that parse one by one but cannot work, alone or together: refused at
//! start-up with a message that names them, rather than found out under load.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

use secrecy::ExposeSecret;

use super::{ConfigError, GatewayConfig};

impl GatewayConfig {
    /// Checks what parsing cannot: zero intervals, inverted bounds, shares outside
    /// 0..=1, credentials that are not header values; and warns when an upstream
    /// read (with its retries) could outlast the HTTP request timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let subscriptions = &self.subscriptions;
        let upstream = &self.upstream;
        positive("--ws-keepalive", subscriptions.ws_keepalive)?;
        positive("--ws-init-timeout", subscriptions.ws_init_timeout)?;
        positive("--poll-initial", subscriptions.poll_initial)?;
        positive("--poll-blocked-initial", subscriptions.poll_blocked_initial)?;
        positive("--upstream-timeout", upstream.request_timeout)?;
        positive("--header-read-timeout", self.http.header_read_timeout)?;
        positive("--idle-timeout", self.http.idle_timeout)?;
        if self.http.max_connections == 0 {
            return unusable("--max-connections must be at least 1");
        }
        let per_client = &self.fair_share;
        if per_client.max_connections_per_client == 0 || per_client.max_websockets_per_client == 0 {
            return unusable(
                "--max-connections-per-client and --max-websockets-per-client must be at least 1",
            );
        }
        positive("--upstream-budget-window", upstream.budget_window)?;
        ordered(
            "--poll-initial",
            subscriptions.poll_initial,
            "--poll-max",
            subscriptions.poll_max,
        )?;
        ordered(
            "--poll-blocked-initial",
            subscriptions.poll_blocked_initial,
            "--poll-blocked-max",
            subscriptions.poll_blocked_max,
        )?;
        share("--poll-jitter", subscriptions.poll_jitter)?;
        share(
            "--upstream-budget-background-share",
            upstream.budget_background_share,
        )?;
        if !(0.0..0.95).contains(&upstream.budget_reserve) {
            return unusable("--budget-reserve must be at least 0 and below 0.95");
        }
        if !(subscriptions.poll_multiplier >= 1.0 && subscriptions.poll_multiplier.is_finite()) {
            return unusable("--poll-multiplier must be at least 1");
        }
        if subscriptions.max_per_connection == 0 || upstream.budget == 0 {
            return unusable(
                "--max-subscriptions-per-connection and --upstream-budget must be at least 1",
            );
        }
        if subscriptions.poller_lease_ttl < Duration::from_millis(100) {
            return unusable("--poller-lease-ttl must be at least 100ms");
        }
        let fair_share = &self.fair_share;
        if !(fair_share.client_budget_share > 0.0 && fair_share.client_budget_share <= 1.0) {
            return unusable("--client-budget-share must be above 0 and at most 1");
        }
        if fair_share.max_subscriptions_per_client == 0
            || fair_share.max_new_credentials_per_client == 0
        {
            return unusable(
                "--max-subscriptions-per-client and --max-new-credentials-per-client must be at least 1",
            );
        }
        if !(1..=1024).contains(&subscriptions.history) {
            return unusable("--subscription-history must be between 1 and 1024");
        }
        self.store.validate()?;
        self.warn_if_a_read_can_outlast_the_request();
        for warning in self.exposure_warnings() {
            tracing::warn!("{warning}");
        }
        self.secrets_are_header_values()
    }

    /// Credentials and access keys are sent or compared as HTTP header values.
    fn secrets_are_header_values(&self) -> Result<(), ConfigError> {
        let given = self.upstream.given_credentials()?;
        let named = [
            ("CLOUDFLARE_API_TOKEN", given.token),
            ("CLOUDFLARE_EMAIL", given.email),
            ("CLOUDFLARE_API_KEY", given.key),
        ];
        let access_keys = self
            .access
            .keys()?
            .iter()
            .map(|key| ("GATEWAY_ACCESS_KEYS", Some(key)));
        for (name, secret) in named.into_iter().chain(access_keys) {
            let header_safe = secret.is_none_or(|secret| {
                secret
                    .expose_secret()
                    .bytes()
                    .all(|byte| byte.is_ascii_graphic())
            });
            if !header_safe {
                return unusable(&format!(
                    "{name} must be visible ASCII characters without spaces"
                ));
            }
        }
        Ok(())
    }

    /// The longest an upstream read can take: every attempt timing out, with the
    /// backoffs between them.
    pub fn worst_case_upstream_read(&self) -> Duration {
        let upstream = &self.upstream;
        let attempts = upstream
            .request_timeout
            .saturating_mul(upstream.retries + 1);
        let backoffs: Duration = (0..upstream.retries)
            .map(|retry| {
                let doubled = upstream
                    .retry_initial
                    .saturating_mul(2_u32.saturating_pow(retry));
                doubled.min(upstream.retry_max)
            })
            .sum();
        attempts.saturating_add(backoffs)
    }

    /// A read that can outlast the request timeout turns a slow upstream into a 408
    /// instead of a stale answer or UPSTREAM_TIMEOUT. The defaults fit; a shorter
    /// --request-timeout may be deliberate (a load balancer's), so this only warns.
    fn warn_if_a_read_can_outlast_the_request(&self) {
        let worst = self.worst_case_upstream_read();
        if worst >= self.http.request_timeout {
            tracing::warn!(
                worst_case_read_s = worst.as_secs_f64(),
                request_timeout_s = self.http.request_timeout.as_secs_f64(),
                "an upstream read ((--upstream-retries + 1) x --upstream-timeout plus backoff) can outlast \
                 --request-timeout: slow upstream answers will end as 408 instead of stale data"
            );
        }
    }
}

impl GatewayConfig {
    /// Settings that work but expose the gateway or its credential: logged at
    /// start-up so an operator sees them before an attacker does.
    pub fn exposure_warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        let no_keys = self.access.keys().is_ok_and(<[_]>::is_empty);
        if !self.listen.ip().is_loopback() && no_keys {
            warnings.push(
                "listening beyond loopback (--listen) without access keys: anyone who can reach \
                 the gateway reads statuses and spends its Cloudflare budget; set \
                 GATEWAY_ACCESS_KEYS",
            );
        }
        if !self.listen.ip().is_loopback() && self.http.allowed_hosts.is_empty() {
            warnings.push(
                "listening beyond loopback (--listen) without --allowed-hosts: every Host name \
                 is answered, so a page on any site can reach the gateway through a name it \
                 rebinds to it (DNS rebinding); set --allowed-hosts to the names clients use",
            );
        }
        if let Some(url) = &self.upstream.base_url
            && url.scheme() == "http"
            && !is_loopback_host(url)
        {
            warnings.push(
                "CLOUDFLARE_BASE_URL is plain http:// to a host beyond loopback: credentials and \
                 answers cross the network unencrypted; use https://",
            );
        }
        warnings
    }
}

/// Whether `url` names this machine (`localhost` or a loopback address).
fn is_loopback_host(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let address = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn unusable(message: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Unusable(message.to_owned()))
}

fn positive(flag: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return unusable(&format!("{flag} must be longer than zero"));
    }
    Ok(())
}

fn ordered(
    lower_flag: &str,
    lower: Duration,
    upper_flag: &str,
    upper: Duration,
) -> Result<(), ConfigError> {
    if upper < lower {
        return unusable(&format!(
            "{upper_flag} must not be shorter than {lower_flag}"
        ));
    }
    Ok(())
}

fn share(flag: &str, value: f64) -> Result<(), ConfigError> {
    if !(0.0..=1.0).contains(&value) {
        return unusable(&format!("{flag} must be between 0 and 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_for(args: &[&str]) -> String {
        let mut all = vec!["gw"];
        all.extend_from_slice(args);
        let config = GatewayConfig::from_args(all).unwrap();
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_defaults_are_usable() {
        GatewayConfig::from_args(["gw"])
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn unusable_settings_are_refused_by_name() {
        assert_eq!(
            error_for(&["--ws-keepalive", "0s"]),
            "--ws-keepalive must be longer than zero"
        );
        assert_eq!(
            error_for(&["--poll-initial", "10s", "--poll-max", "5s"]),
            "--poll-max must not be shorter than --poll-initial"
        );
        assert_eq!(
            error_for(&["--poll-jitter", "2"]),
            "--poll-jitter must be between 0 and 1"
        );
    }

    #[test]
    fn the_default_upstream_read_fits_the_request_timeout() {
        let defaults = GatewayConfig::from_args(["gw"]).unwrap();
        assert_eq!(
            defaults.worst_case_upstream_read(),
            Duration::from_millis(25_500)
        );
        assert!(defaults.worst_case_upstream_read() < defaults.http.request_timeout);
        let slow = GatewayConfig::from_args(["gw", "--upstream-timeout", "15s"]).unwrap();
        assert_eq!(
            slow.worst_case_upstream_read(),
            Duration::from_millis(46_500)
        );
    }

    fn warnings_for(args: &[&str]) -> Vec<&'static str> {
        let mut all = vec!["gw"];
        all.extend_from_slice(args);
        GatewayConfig::from_args(all).unwrap().exposure_warnings()
    }

    #[test]
    fn listening_beyond_loopback_without_access_keys_is_warned_about() {
        assert!(
            warnings_for(&[]).is_empty(),
            "the default listens on loopback"
        );
        let hosts = ["--allowed-hosts", "gw.example"];
        let open = warnings_for(&["--listen", "0.0.0.0:8080", hosts[0], hosts[1]]);
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(open[0].contains("without access keys"), "{open:?}");
        let keyed = warnings_for(&[
            "--listen",
            "0.0.0.0:8080",
            "--access-key",
            "k-123",
            hosts[0],
            hosts[1],
        ]);
        assert!(keyed.is_empty(), "{keyed:?}");
        assert!(warnings_for(&["--listen", "[::1]:8080"]).is_empty());
    }

    #[test]
    fn listening_beyond_loopback_without_allowed_hosts_is_warned_about() {
        let args = ["--listen", "0.0.0.0:8080", "--access-key", "k-123"];
        let open = warnings_for(&args);
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(open[0].contains("without --allowed-hosts"), "{open:?}");
        let named = warnings_for(&[
            args[0],
            args[1],
            args[2],
            args[3],
            "--allowed-hosts",
            "gw.example",
        ]);
        assert!(named.is_empty(), "{named:?}");
    }

    #[test]
    fn a_plain_http_upstream_beyond_loopback_is_warned_about() {
        let plain = warnings_for(&["--base-url", "http://cf.example/client/v4"]);
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert!(plain[0].contains("plain http://"), "{plain:?}");
        for quiet in [
            "https://cf.example/client/v4",
            "http://127.0.0.1:9000/client/v4",
            "http://localhost:9000",
            "http://[::1]:9000",
        ] {
            assert!(warnings_for(&["--base-url", quiet]).is_empty(), "{quiet}");
        }
    }

    #[test]
    fn a_credential_that_is_not_a_header_value_is_refused_without_showing_it() {
        let error = error_for(&["--api-token", "secret with spaces"]);
        assert_eq!(
            error,
            "CLOUDFLARE_API_TOKEN must be visible ASCII characters without spaces"
        );
    }
}
