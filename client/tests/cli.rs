//! The `synclab` binary end to end on the host backend (the driver in an in-process ntsim
//! machine): JSON output, verdicts and exit codes.
#![cfg(not(windows))] // On Windows the binary talks to the installed driver instead.

use std::process::{Command, Output};

use serde_json::Value;

fn synclab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synclab"))
        .args(args)
        .output()
        .expect("the synclab binary runs")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn run_spinlock_json_carries_parameters_totals_workers_and_verdict() {
    let output = synclab(&[
        "run",
        "spinlock",
        "--threads",
        "3",
        "--iterations",
        "500",
        "--dpc",
        "--cpus",
        "4",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "SUCCESS exits 0");
    let v = json(&output);
    assert_eq!(v["verdict"], "SUCCESS");
    assert_eq!(v["emulated"], true);
    let p = &v["parameters"];
    assert_eq!(p["primitive"], "spinlock");
    assert_eq!(p["threads"], 3);
    assert_eq!(p["iterations"], 500);
    assert_eq!(p["dpc"], true);
    assert_eq!(p["busted"], false);
    assert_eq!(p["processors"], 4);
    let t = &v["totals"];
    assert_eq!(t["acquisitions"], 7 * 500);
    assert_eq!(t["protected_counter"], 7 * 500);
    assert_eq!(t["exclusion_violations"], 0);
    assert_eq!(t["irql_violations"], 0);
    assert_eq!(t["restore_violations"], 0);
    let workers = v["workers"].as_array().expect("a workers array");
    assert_eq!(workers.len(), 7);
    assert_eq!(workers.iter().filter(|w| w["kind"] == "thread").count(), 3);
    assert_eq!(workers.iter().filter(|w| w["kind"] == "dpc").count(), 4);
    assert!(workers.iter().all(|w| w["acquisitions"] == 500));
}

#[test]
fn busted_run_reports_failure_and_exits_1() {
    let output = synclab(&[
        "run",
        "spinlock",
        "--threads",
        "4",
        "--iterations",
        "3000",
        "--dpc",
        "--cpus",
        "4",
        "--hold-us",
        "1",
        "--busted",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "FAILURE exits 1");
    let v = json(&output);
    assert_eq!(v["verdict"], "FAILURE");
    assert_eq!(v["parameters"]["busted"], true);
    assert!(v["totals"]["exclusion_violations"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn table_output_says_the_figures_are_emulated_and_ends_with_the_verdict() {
    let output = synclab(&[
        "run",
        "spinlock",
        "--threads",
        "2",
        "--iterations",
        "100",
        "--cpus",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("emulated kernel"), "{text}");
    assert!(text.trim_end().ends_with("End of test: SUCCESS"), "{text}");
}

#[test]
fn out_of_range_arguments_are_refused_with_exit_2() {
    let output = synclab(&["run", "spinlock", "--threads", "65"]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("threads = 65, allowed 0..=64"), "{err}");

    let output = synclab(&["run", "spinlock", "--threads", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no workers"));

    let output = synclab(&["run", "nosuchlock"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("known: spinlock"));
}

#[test]
fn info_json_reports_the_emulated_kernel() {
    let output = synclab(&["info", "--cpus", "3", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let v = json(&output);
    assert_eq!(v["kernel"], "emulated (ntsim)");
    assert_eq!(v["processors"], 3);
    assert_eq!(v["timestamp_frequency"], 10_000_000);
    assert_eq!(v["abi_version"], 1);
}
