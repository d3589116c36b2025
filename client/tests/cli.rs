//! The `synclab` binary end to end on the host backend (the driver in an in-process ntsim
//! machine): the registry listing, JSON output, verdicts and exit codes, and Ctrl-C.
#![cfg(not(windows))] // On Windows the binary talks to the installed driver instead.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use synclab_protocol::primitive::REGISTRY;

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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn list_json_is_the_registry() {
    let output = synclab(&["list", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let rows = json(&output);
    let rows = rows.as_array().expect("an array of primitives");
    assert_eq!(rows.len(), REGISTRY.len());
    for (row, info) in rows.iter().zip(&REGISTRY) {
        assert_eq!(row["name"], info.name);
        assert_eq!(row["shared"], info.shared);
        let variants = row["variants"].as_array().expect("variants");
        assert_eq!(variants.len(), info.variants.len());
        for (v, vi) in variants.iter().zip(info.variants) {
            assert_eq!(v["name"], vi.name);
            assert!(!v["contexts"].as_array().expect("contexts").is_empty());
        }
    }
    let fast = rows
        .iter()
        .find(|r| r["name"] == "fastmutex")
        .expect("fastmutex");
    assert_eq!(
        fast["variants"][0]["contexts"],
        serde_json::json!(["passive", "apc"])
    );
    assert_eq!(fast["variants"][0]["held_irql"], "APC_LEVEL");
}

#[test]
fn list_table_names_every_primitive_and_variant() {
    let output = synclab(&["list"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    for info in &REGISTRY {
        assert!(text.contains(info.name), "{text}");
        for v in info.variants {
            assert!(text.contains(v.name), "{text}");
        }
    }
}

#[test]
fn run_json_carries_parameters_totals_latency_workers_and_verdict() {
    let output = synclab(&[
        "run",
        "rwspin",
        "--writers",
        "2",
        "--readers",
        "2",
        "--iterations",
        "2000",
        "--hold-us",
        "5",
        "--dpc",
        "--cpus",
        "4",
        "--seed",
        "42",
        "--long-hold-us",
        "50",
        "--long-hold-per-mille",
        "5",
        "--delay-us",
        "1",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let v = json(&output);
    assert_eq!(v["verdict"], "SUCCESS");
    assert_eq!(v["emulated"], true);
    let params = &v["parameters"];
    assert_eq!(params["primitive"], "rwspin");
    assert_eq!(params["variant"], "raise");
    assert_eq!(params["writers"], 2);
    assert_eq!(params["readers"], 2);
    assert_eq!(params["iterations"], 2000);
    assert_eq!(params["dpc"], true);
    assert_eq!(params["seed"], 42);
    assert_eq!(params["long_hold_us"], 50);
    assert_eq!(params["long_hold_per_mille"], 5);
    assert_eq!(params["delay_us"], 1);
    assert_eq!(params["processors"], 4);
    let totals = &v["totals"];
    assert_eq!(totals["acquisitions"], 8 * 2000);
    assert_eq!(totals["protected_counter"], totals["writes"]);
    assert!(
        totals["contended"].as_u64().unwrap_or(0) > 0
            || totals["max_concurrent_readers"].as_u64().unwrap_or(0) > 1
    );
    for kind in [
        "exclusion",
        "reader",
        "irql",
        "restore",
        "apc",
        "recursion",
        "lost_updates",
    ] {
        assert_eq!(totals["violations"][kind], 0, "{kind}");
    }
    let latency = &v["latency"];
    let p50 = latency["p50_ns"].as_u64().expect("p50");
    let p99 = latency["p99_ns"].as_u64().expect("p99");
    assert!(p50 <= p99);
    assert!(latency["timing_cost_ns"].is_u64());
    let fairness = &v["fairness"];
    assert!(fairness["stddev"].is_f64() && fairness["starvation"].is_boolean());
    let workers = v["workers"].as_array().expect("a workers array");
    assert_eq!(workers.len(), 8);
    assert_eq!(
        workers.iter().filter(|w| w["role"] == "reader").count(),
        2 + 2
    );
    assert_eq!(workers.iter().filter(|w| w["kind"] == "dpc").count(), 4);
    assert!(v["dispatch"]["dpc_invocations"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn busted_run_reports_failure_and_exits_1() {
    let output = synclab(&[
        "run",
        "spinlock",
        "--threads",
        "2",
        "--iterations",
        "100",
        "--busted",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "FAILURE exits 1");
    let v = json(&output);
    assert_eq!(v["verdict"], "FAILURE");
    assert_eq!(v["parameters"]["busted"], true);
    assert!(v["totals"]["violations"]["exclusion"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn one_worker_is_inconclusive_and_exits_5_with_the_reason() {
    let output = synclab(&[
        "run",
        "spinlock",
        "--dpc",
        "--threads",
        "0",
        "--cpus",
        "1",
        "--hold-us",
        "100",
        "--iterations",
        "2000",
    ]);
    assert_eq!(output.status.code(), Some(5), "INCONCLUSIVE exits 5");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("one worker alone cannot contend"), "{text}");
    assert!(
        text.trim_end().ends_with("End of test: INCONCLUSIVE"),
        "{text}"
    );
}

#[test]
fn duration_alone_drives_the_run() {
    let output = synclab(&["run", "fastmutex", "--duration-ms", "2000", "--json"]);
    assert!(
        matches!(output.status.code(), Some(0 | 5)),
        "{}",
        stderr(&output)
    );
    let v = json(&output);
    assert_eq!(
        v["parameters"]["iterations"], 0,
        "no default iteration count"
    );
    let elapsed = v["totals"]["elapsed_ns"].as_u64().expect("elapsed");
    assert!(
        (1_800_000_000..=2_200_000_000).contains(&elapsed),
        "{elapsed}"
    );
}

#[test]
fn table_output_says_the_figures_are_emulated_and_ends_with_the_verdict() {
    let output = synclab(&[
        "run",
        "kmutex",
        "--variant",
        "recursive",
        "--threads",
        "3",
        "--iterations",
        "2000",
        "--hold-us",
        "5",
        "--cpus",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("emulated kernel"), "{text}");
    assert!(text.contains("acquire latency"), "{text}");
    assert!(text.contains("p99.9"), "{text}");
    assert!(text.trim_end().ends_with("End of test: SUCCESS"), "{text}");
}

#[test]
fn bad_arguments_are_refused_with_exit_2_and_say_why() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["run", "spinlock", "--threads", "65"],
            "threads = 65 (writers + readers), allowed 0..=64",
        ),
        (&["run", "spinlock", "--threads", "0"], "no workers"),
        (&["run", "nosuchlock"], "known: spinlock"),
        (
            &["run", "fastmutex", "--dpc"],
            "fast mutex (plain) cannot be acquired at DISPATCH_LEVEL",
        ),
        (
            &["run", "fastmutex", "--readers", "2"],
            "has no shared mode",
        ),
        (
            &["run", "spinlock", "--variant", "nope"],
            "known: raise, atdpc, try, fordpc",
        ),
        (
            &[
                "run",
                "spinlock",
                "--threads",
                "32",
                "--hold-us",
                "100",
                "--dpc",
                "--cpus",
                "4",
            ],
            "one DPC invocation may spend at most 1000 us",
        ),
    ];
    for (args, says) in cases {
        let output = synclab(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let output = synclab(&["run", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("5  INCONCLUSIVE"), "{text}");
    assert!(text.contains("--long-hold-per-mille"), "{text}");
}

#[test]
fn info_json_reports_the_emulated_kernel() {
    let output = synclab(&["info", "--cpus", "3", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let v = json(&output);
    assert_eq!(v["kernel"], "emulated (ntsim)");
    assert_eq!(v["processors"], 3);
    assert_eq!(v["timestamp_frequency"], 10_000_000);
    assert_eq!(v["abi_version"], 2);
}

/// Starts a one-minute run, sends SIGINT (Ctrl-C) once it is under way, and returns the
/// client's output and how long it took to exit after the signal.
fn interrupted_run(extra: &[&str]) -> (Output, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_synclab"))
        .args([
            "run",
            "spinlock",
            "--dpc",
            "--cpus",
            "4",
            "--duration-ms",
            "60000",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the synclab binary starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("a first line");
    assert!(line.contains("running spinlock/raise"), "{line}");
    // The request is on its way to the driver; let the run get going.
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let mut output = child.wait_with_output().expect("the client exits");
    let took = signalled.elapsed();
    output.stderr = line.into_bytes();
    stderr
        .read_to_end(&mut output.stderr)
        .expect("the rest of stderr");
    (output, took)
}

#[test]
fn ctrl_c_cancels_a_long_run_which_prints_its_partial_figures_and_exits_130() {
    let (output, took) = interrupted_run(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(130),
        "{stdout}\n{}",
        stderr(&output)
    );
    assert!(
        took <= Duration::from_secs(1),
        "exited {took:?} after SIGINT"
    );
    assert!(stderr(&output).contains("cancelling the run"));
    assert!(stdout.contains("Total: "), "{stdout}");
    assert!(
        stdout.contains("cancelled: the run was stopped early"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("End of test: CANCELLED"),
        "{stdout}"
    );
}

#[test]
fn ctrl_c_json_says_cancelled_with_the_figures_of_the_part_that_ran() {
    let (output, took) = interrupted_run(&["--json"]);
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(
        took <= Duration::from_secs(1),
        "exited {took:?} after SIGINT"
    );
    let value = json(&output);
    assert_eq!(value["verdict"], "CANCELLED");
    assert_eq!(value["cancelled"], true);
    assert!(value["totals"]["acquisitions"].as_u64().expect("a count") > 0);
    assert_eq!(value["parameters"]["duration_ms"], 60_000, "what was asked");
    let ran = value["totals"]["elapsed_ns"]
        .as_u64()
        .expect("how long it ran");
    assert!(
        (250_000_000..10_000_000_000).contains(&ran),
        "the part that ran: {ran} ns"
    );
}
