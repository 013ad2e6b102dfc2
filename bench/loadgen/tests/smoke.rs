//! The benchmark harness cannot rot: `loadgen smoke` runs every scenario for a
//! second or two with small numbers against the debug binaries and must finish
//! with a table, a pass/fail line per target and a JSON file, having said on
//! stderr what ran. No timing is asserted (nor whether a target passed: the
//! smoke's numbers are not the targets' loads).
//!
//! The gateway is another package of the workspace, so Cargo gives this test no
//! path to it: `cargo test` at the workspace root builds both into the same
//! directory, and the test looks for it beside `loadgen`.

use std::path::Path;
use std::process::Command;

#[test]
fn the_loadgen_smoke_run_completes_and_prints_every_scenario() {
    let loadgen = Path::new(env!("CARGO_BIN_EXE_loadgen"));
    let bin_dir = loadgen.parent().expect("the binary has a directory");
    assert!(
        bin_dir.join("registrar-gateway").is_file(),
        "no registrar-gateway beside {}: run `cargo test` at the workspace root \
         (or `cargo build -p registrar-gateway` first)",
        loadgen.display()
    );
    let json_out = std::env::temp_dir().join(format!("loadgen-smoke-{}.json", std::process::id()));
    let output = Command::new(loadgen)
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--json-out")
        .arg(&json_out)
        .arg("smoke")
        .output()
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "loadgen smoke failed:\n{stdout}\n{stderr}"
    );
    for table in [
        "== collapse (moving states)",
        "== collapse (mixed states)",
        "== query throughput",
        "== fan-out (websocket",
        "== fan-out (SSE",
        "== simulator",
        "== soak",
        "== budget",
    ] {
        assert!(stdout.contains(table), "no {table} table in:\n{stdout}");
    }
    for scenario in [
        "collapse",
        "query throughput",
        "fan-out",
        "simulator",
        "soak",
        "budget",
    ] {
        for said in [
            format!("[loadgen] {scenario}: started"),
            format!("[loadgen] {scenario}: finished in "),
        ] {
            assert!(stderr.contains(&said), "no {said:?} on stderr:\n{stderr}");
        }
    }
    let targets = stdout
        .split("\n== targets ==\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no targets section in:\n{stdout}"));
    for judged in [
        "collapse (moving states): ratio upstream / ideal = ",
        "): upstream 429 responses = ",
    ] {
        let line = targets.lines().find(|line| line.contains(judged));
        let line = line.unwrap_or_else(|| panic!("no {judged:?} line in:\n{targets}"));
        assert!(
            line.starts_with("PASS ") || line.starts_with("FAIL "),
            "{line}"
        );
    }
    let json = std::fs::read_to_string(&json_out).expect("the JSON file was written");
    let _ = std::fs::remove_file(&json_out);
    let document: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(
        document["scenarios"].as_array().map(Vec::len),
        Some(8),
        "{document}"
    );
}
