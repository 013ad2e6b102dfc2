//! `registrar-gateway watch`, run as a user runs it (the binary, its stdout and
//! exit code) against a gateway on a real socket: one exit code per outcome, the
//! action to take printed, the access key from the environment.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::TestApp;

/// `watch <domain>` against `app`, with `env` (and nothing else) and `args`.
fn watch(app: &TestApp, domain: &str, env: &[(&str, &str)], args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_registrar-gateway"))
        .env_clear()
        .envs(env.iter().copied())
        .args(["watch", domain, "--url"])
        .arg(app.url("/graphql"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts")
}

/// Its exit code, stdout and stderr once it ends (a guard against hanging, not a sync).
async fn finished(child: Child) -> (i32, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("watch ended")
        .unwrap();
    (
        output.status.code().expect("an exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Reads `child`'s stdout up to its first line (the first status), and hands the rest back.
async fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next_line().await.unwrap().expect("a first line");
    child.stdout = Some(lines.into_inner().into_inner());
    line
}

#[tokio::test]
async fn a_succeeded_registration_exits_0_and_says_so() {
    let app = TestApp::builder().spawn().await;
    let (code, stdout, stderr) = finished(watch(&app, "demo-succeeded.com", &[], &[])).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("demo-succeeded.com SUCCEEDED"), "{stdout}");
    assert!(
        stdout.ends_with("demo-succeeded.com: registered\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn failed_action_required_and_errors_exit_with_codes_of_their_own() {
    let app = TestApp::builder()
        .args(&["--poll-initial", "50ms", "--poll-max", "50ms"])
        .spawn()
        .await;
    let (code, stdout, _) = finished(watch(&app, "demo-failed.com", &[], &["--json"])).await;
    assert_eq!(code, 3, "{stdout}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        last,
        serde_json::json!({ "outcome": "failed", "exitCode": 3 })
    );

    let mut child = watch(&app, "demo-action-required.com", &[], &[]);
    let first = first_line(&mut child).await;
    assert!(
        first.contains("demo-action-required.com PENDING"),
        "{first}"
    );
    app.simulator()
        .advance_clock(Duration::from_secs(20))
        .unwrap();
    let (code, stdout, _) = finished(child).await;
    assert_eq!(code, 4, "{stdout}");
    assert!(
        stdout
            .contains("ACTION_REQUIRED: the user must act: registrant_email_confirmation_pending"),
        "the action is printed: {stdout}"
    );

    let (code, _, stderr) = finished(watch(&app, "no-such-workflow.com", &[], &[])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("WORKFLOW_NOT_FOUND"), "{stderr}");
    let (code, _, stderr) = finished(watch(&app, "not a domain", &[], &[])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("BAD_USER_INPUT"), "{stderr}");
}

#[tokio::test]
async fn a_workflow_blocked_past_the_limit_exits_5() {
    let app = TestApp::builder()
        .args(&[
            "--poll-initial",
            "50ms",
            "--poll-max",
            "50ms",
            "--poll-blocked-initial",
            "50ms",
            "--blocked-max-watch",
            "200ms",
        ])
        .spawn()
        .await;
    let mut child = watch(&app, "demo-blocked.com", &[], &[]);
    first_line(&mut child).await;
    app.simulator()
        .advance_clock(Duration::from_secs(20))
        .unwrap();
    let (code, stdout, _) = finished(child).await;
    assert_eq!(code, 5, "{stdout}");
    assert!(stdout.contains("BLOCKED: blocked by registry"), "{stdout}");
}

#[tokio::test]
async fn the_access_key_comes_from_gateway_access_key() {
    let app = TestApp::builder()
        .args(&["--access-key", "watch-key-0123"])
        .spawn()
        .await;
    let (code, _, stderr) = finished(watch(&app, "demo-succeeded.com", &[], &[])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("refused the access key"), "{stderr}");
    let env = [("GATEWAY_ACCESS_KEY", "watch-key-0123")];
    let (code, stdout, stderr) = finished(watch(&app, "demo-succeeded.com", &env, &[])).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
}
