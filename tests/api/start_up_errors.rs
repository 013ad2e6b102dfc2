//! Settings the gateway cannot use stop it at start-up with one message in the
//! user's terms: the environment variable (or flag) they set, and what is wrong
//! with it in plain words, never a parser's. Each runs the real binary, as an
//! operator would, with only the environment the test gives it.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{ACCOUNT, TOKEN, spawn_process, spawn_simulator};

/// Runs the gateway with `env` (and nothing else) and `args`; returns its exit
/// success and what it printed on stderr.
async fn start(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_registrar-gateway"))
        .env_clear()
        .envs(env.iter().copied())
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    // A guard, not a synchronisation: a refused setting exits at once.
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the gateway stopped instead of serving")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

#[tokio::test]
async fn a_bad_base_url_names_cloudflare_base_url_in_plain_words() {
    let env = [
        ("CLOUDFLARE_BASE_URL", "api.example.com/client/v4"),
        ("CLOUDFLARE_API_TOKEN", "a-token"),
    ];
    let (ok, stderr) = start(&env, &[]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("CLOUDFLARE_BASE_URL") && stderr.contains("not a URL"),
        "{stderr}"
    );
    assert!(
        stderr.contains("expected an absolute URL such as https://api.cloudflare.com/client/v4"),
        "{stderr}"
    );
    assert!(!stderr.contains("--base-url"), "named the flag: {stderr}");
    assert!(
        !stderr.contains("relative URL"),
        "the parser's words: {stderr}"
    );

    let (ok, stderr) = start(&[], &["--base-url", "ftp://api.example.com"]).await;
    assert!(!ok);
    assert!(
        stderr.contains("'--base-url'")
            && stderr.contains("the scheme ftp: is not http: or https:"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_missing_secret_file_names_its_variable_and_says_it_does_not_exist() {
    let env = [("CLOUDFLARE_API_TOKEN_FILE", "/run/secrets/no-such-token")];
    let (ok, stderr) = start(&env, &[]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("CLOUDFLARE_API_TOKEN_FILE")
            && stderr.contains("the file /run/secrets/no-such-token does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("entity not found"), "{stderr}");
    assert!(
        !stderr.contains("--api-token-file"),
        "named the flag: {stderr}"
    );
}

#[tokio::test]
async fn a_redis_url_that_is_not_one_says_why_without_showing_it() {
    let env = [("REDIS_URL", "http://:hunter2@cache.internal:6379")];
    let (ok, stderr) = start(&env, &[]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(
            "REDIS_URL is not a usable Redis URL: its scheme is http:, not redis: or rediss:"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("--redis-url"), "named the flag: {stderr}");
    assert!(!stderr.contains("hunter2"), "showed the URL: {stderr}");
    assert!(!stderr.contains("InvalidClientConfig"), "{stderr}");
}

#[tokio::test]
async fn settings_given_both_ways_are_named_as_given() {
    let env = [("CLOUDFLARE_API_TOKEN", "a-token")];
    let token_file = std::env::temp_dir().join(format!("gw-token-{}", std::process::id()));
    std::fs::write(&token_file, "another-token\n").unwrap();
    let (ok, stderr) = start(&env, &["--api-token-file", token_file.to_str().unwrap()]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("CLOUDFLARE_API_TOKEN and --api-token-file are both set"),
        "{stderr}"
    );
}

/// `--verify-credentials` asks the upstream's token check (the simulator's
/// `GET /user/tokens/verify`) at start-up: a refused token stops the gateway with a
/// message naming the variable it came from, never the token itself.
#[tokio::test]
async fn verify_credentials_stops_a_refused_token_naming_its_variable() {
    let simulator = spawn_simulator().await;
    let refused = "revoked-token-7f3a9c";
    simulator.handle.refuse_credential(refused);
    let base_url = simulator.handle.base_url();
    let env = [
        ("CLOUDFLARE_BASE_URL", base_url.as_str()),
        ("CLOUDFLARE_API_TOKEN", refused),
        ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT),
        ("GATEWAY_VERIFY_CREDENTIALS", "true"),
    ];
    let (ok, stderr) = start(&env, &[]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(
            "CLOUDFLARE_API_TOKEN did not pass the check GATEWAY_VERIFY_CREDENTIALS asked for"
        ) && stderr.contains("HTTP 401: 1000 Invalid API Token"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(refused),
        "the token is never printed: {stderr}"
    );
    simulator.stop().await;
}

/// A token the upstream accepts passes the check and the gateway serves; real
/// credentials without `CLOUDFLARE_ACCOUNT_ID` start with a warning that every query
/// must then name its account.
#[tokio::test]
async fn verify_credentials_lets_an_active_token_start_and_a_missing_account_is_warned_of() {
    let simulator = spawn_simulator().await;
    let base_url = simulator.handle.base_url();
    let env = [
        ("CLOUDFLARE_BASE_URL", base_url.as_str()),
        ("CLOUDFLARE_API_TOKEN", TOKEN),
        ("GATEWAY_VERIFY_CREDENTIALS", "true"),
    ];
    let gateway = spawn_process(&[], &env).await;
    gateway
        .log_line("the API token passed Cloudflare's token check", |line| {
            line["variable"] == "CLOUDFLARE_API_TOKEN"
        })
        .await;
    let warning = gateway
        .log_line("CLOUDFLARE_ACCOUNT_ID is not set", |_| true)
        .await;
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert_eq!(
        simulator.handle.stats().requests_total,
        1,
        "one check, nothing else"
    );
    simulator.stop().await;
}
