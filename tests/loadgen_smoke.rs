//! The benchmark harness cannot rot: `loadgen smoke` runs every scenario for a
//! second or two with small numbers against the debug binaries and must finish
//! with a table and a JSON file. No timing is asserted.

use std::path::Path;
use std::process::Command;

#[test]
fn the_loadgen_smoke_run_completes_and_prints_every_scenario() {
    let gateway = Path::new(env!("CARGO_BIN_EXE_registrar-gateway"));
    let json_out = std::env::temp_dir().join(format!("loadgen-smoke-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--bin-dir")
        .arg(gateway.parent().expect("the binary has a directory"))
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
        "== fan-out",
        "== simulator",
        "== soak",
    ] {
        assert!(stdout.contains(table), "no {table} table in:\n{stdout}");
    }
    let json = std::fs::read_to_string(&json_out).expect("the JSON file was written");
    let _ = std::fs::remove_file(&json_out);
    let document: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(
        document["scenarios"].as_array().map(Vec::len),
        Some(6),
        "{document}"
    );
}
