//! Output: a readable table (locktorture-style) or JSON.

use serde::Serialize;
use synclab_protocol::{
    wire::{
        kernel, verdict, worker_kind, InfoResponse, StressResponse, WorkerStats, FLAG_BUSTED,
        FLAG_DPC,
    },
    Primitive,
};

#[derive(Serialize)]
struct InfoJson<'a> {
    device: &'a str,
    kernel: &'static str,
    emulated: bool,
    driver_version: String,
    abi_version: u32,
    os_version: String,
    kmdf_version: String,
    processors: u32,
    timestamp_frequency: u64,
}

const fn kernel_name(kernel: u32) -> &'static str {
    match kernel {
        kernel::WINDOWS => "windows",
        kernel::EMULATED => "emulated (ntsim)",
        _ => "unknown",
    }
}

/// Prints `IOCTL_SYNCLAB_GET_INFO`'s answer.
pub fn print_info(device: &str, info: &InfoResponse, json: bool) {
    let v = info.driver_version;
    let value = InfoJson {
        device,
        kernel: kernel_name(info.kernel),
        emulated: info.kernel == kernel::EMULATED,
        driver_version: format!("{}.{}.{}", v[0], v[1], v[2]),
        abi_version: info.header.abi_version,
        os_version: format!(
            "{}.{}.{}",
            info.os_version[0], info.os_version[1], info.os_version[2]
        ),
        kmdf_version: format!("{}.{}", info.kmdf_version[0], info.kmdf_version[1]),
        processors: info.processor_count,
        timestamp_frequency: info.timestamp_frequency,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return;
    }
    println!("device:              {device}");
    println!("kernel:              {}", value.kernel);
    println!(
        "driver version:      {} (ABI {})",
        value.driver_version, value.abi_version
    );
    println!("OS version:          {}", value.os_version);
    println!("KMDF version:        {}", value.kmdf_version);
    println!("processors:          {}", value.processors);
    println!("timestamp frequency: {} Hz", value.timestamp_frequency);
    if value.emulated {
        println!("note: these figures come from ntsim, the emulated kernel, not from Windows");
    }
}

#[derive(Serialize)]
struct Parameters {
    primitive: String,
    threads: u32,
    dpc: bool,
    busted: bool,
    iterations: u32,
    duration_ms: u32,
    hold_us: u32,
    max_processors: u32,
    processors: u32,
}

#[derive(Serialize)]
struct Totals {
    acquisitions: u64,
    protected_counter: u64,
    exclusion_violations: u64,
    irql_violations: u64,
    restore_violations: u64,
    max_wait_ns: u64,
    elapsed_ns: u64,
}

#[derive(Serialize)]
struct Worker {
    index: usize,
    kind: &'static str,
    processor: u32,
    acquisitions: u64,
    exclusion_violations: u64,
    irql_violations: u64,
    restore_violations: u64,
    max_wait_ns: u64,
}

#[derive(Serialize)]
struct StressJson<'a> {
    device: &'a str,
    emulated: bool,
    parameters: Parameters,
    totals: Totals,
    workers: Vec<Worker>,
    starvation_hint: bool,
    verdict: &'static str,
}

const fn kind_name(kind: u32) -> &'static str {
    match kind {
        worker_kind::THREAD => "thread",
        worker_kind::DPC => "dpc",
        _ => "?",
    }
}

/// locktorture's hint: the busiest worker did more than twice the work of the idlest.
fn starvation(workers: &[WorkerStats]) -> bool {
    let max = workers.iter().map(|w| w.acquisitions).max().unwrap_or(0);
    let min = workers.iter().map(|w| w.acquisitions).min().unwrap_or(0);
    max / 2 > min
}

/// Prints a stress run's figures and its verdict.
pub fn print_stress(device: &str, r: &StressResponse, json: bool) {
    let q = &r.request;
    let parameters = Parameters {
        primitive: Primitive::from_id(q.primitive)
            .map_or_else(|| q.primitive.to_string(), |p| p.name().to_owned()),
        threads: q.threads,
        dpc: q.flags & FLAG_DPC != 0,
        busted: q.flags & FLAG_BUSTED != 0,
        iterations: q.iterations,
        duration_ms: q.duration_ms,
        hold_us: q.hold_us,
        max_processors: q.max_processors,
        processors: r.processors,
    };
    let verdict = if r.verdict == verdict::SUCCESS {
        "SUCCESS"
    } else {
        "FAILURE"
    };
    let emulated = device.contains("emulated");
    if json {
        print_stress_json(device, emulated, r, parameters, verdict);
    } else {
        print_stress_table(device, emulated, r, &parameters, verdict);
    }
}

fn print_stress_json(
    device: &str,
    emulated: bool,
    r: &StressResponse,
    parameters: Parameters,
    verdict: &'static str,
) {
    let value = StressJson {
        device,
        emulated,
        totals: Totals {
            acquisitions: r.total_acquisitions,
            protected_counter: r.protected_counter,
            exclusion_violations: r.exclusion_violations,
            irql_violations: r.irql_violations,
            restore_violations: r.restore_violations,
            max_wait_ns: r.max_wait_ns,
            elapsed_ns: r.elapsed_ns,
        },
        workers: r
            .workers()
            .iter()
            .enumerate()
            .map(|(index, w)| Worker {
                index,
                kind: kind_name(w.kind),
                processor: w.processor,
                acquisitions: w.acquisitions,
                exclusion_violations: w.exclusion_violations,
                irql_violations: w.irql_violations,
                restore_violations: w.restore_violations,
                max_wait_ns: w.max_wait_ns,
            })
            .collect(),
        starvation_hint: starvation(r.workers()),
        parameters,
        verdict,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

fn print_stress_table(
    device: &str,
    emulated: bool,
    r: &StressResponse,
    parameters: &Parameters,
    verdict: &str,
) {
    let p = parameters;
    println!("SyncLab stress: {} on {device}", p.primitive);
    if emulated {
        println!("note: figures come from ntsim, the emulated kernel; they show correctness, not Windows performance");
    }
    let line = format!(
        "parameters: threads={} dpc={} busted={} iterations={} duration_ms={} hold_us={} processors={}",
        p.threads, p.dpc, p.busted, p.iterations, p.duration_ms, p.hold_us, p.processors
    );
    println!("{line}");
    println!(
        "{:>6} {:>6} {:>4} {:>13} {:>10} {:>10} {:>12} {:>13}",
        "worker",
        "kind",
        "cpu",
        "acquisitions",
        "excl.viol",
        "irql.viol",
        "restore.viol",
        "max_wait_us"
    );
    for (i, w) in r.workers().iter().enumerate() {
        println!(
            "{:>6} {:>6} {:>4} {:>13} {:>10} {:>10} {:>12} {:>13.1}",
            i,
            kind_name(w.kind),
            w.processor,
            w.acquisitions,
            w.exclusion_violations,
            w.irql_violations,
            w.restore_violations,
            ns_to_us(w.max_wait_ns)
        );
    }
    let max = r
        .workers()
        .iter()
        .map(|w| w.acquisitions)
        .max()
        .unwrap_or(0);
    let min = r
        .workers()
        .iter()
        .map(|w| w.acquisitions)
        .min()
        .unwrap_or(0);
    println!(
        "Total: {} acquisitions, counter {}, Max/Min per worker: {max}/{min}{}{}",
        r.total_acquisitions,
        r.protected_counter,
        if starvation(r.workers()) { " ???" } else { "" },
        if r.verdict == verdict::SUCCESS {
            ""
        } else {
            " !!!"
        }
    );
    println!(
        "violations: exclusion={} irql={} restore={}; lost updates={}; elapsed {:.3} ms",
        r.exclusion_violations,
        r.irql_violations,
        r.restore_violations,
        r.total_acquisitions.saturating_sub(r.protected_counter),
        ns_to_us(r.elapsed_ns) / 1000.0
    );
    println!("{line}");
    println!("End of test: {verdict}");
}

#[allow(clippy::cast_precision_loss, reason = "display only")]
fn ns_to_us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}
