//! Output: a readable table (locktorture-style) or JSON.

use serde::Serialize;
use synclab_protocol::{
    primitive::{context, PrimitiveInfo, REGISTRY},
    wire::{
        histogram_upper_ns, inconclusive, kernel, role, verdict, worker_kind, InfoResponse,
        StressRequest, StressResponse, WorkerStats, FLAG_APC_LEVEL, FLAG_BUSTED, FLAG_DPC,
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
struct VariantJson {
    name: &'static str,
    ddis: &'static str,
    contexts: Vec<&'static str>,
    held_irql: &'static str,
    apc_while_held: &'static str,
    depth: u32,
    threaded_dpcs: bool,
}

#[derive(Serialize)]
struct PrimitiveJson {
    id: u32,
    name: &'static str,
    title: &'static str,
    kernel_type: &'static str,
    shared: bool,
    recursion: &'static str,
    variants: Vec<VariantJson>,
}

fn contexts(bits: u32) -> Vec<&'static str> {
    context::EACH
        .into_iter()
        .filter(|c| bits & c != 0)
        .map(|c| match c {
            context::PASSIVE => "passive",
            context::APC => "apc",
            _ => "dpc",
        })
        .collect()
}

fn primitive_json(row: &PrimitiveInfo) -> PrimitiveJson {
    PrimitiveJson {
        id: row.primitive.id(),
        name: row.name,
        title: row.title,
        kernel_type: row.kernel_type,
        shared: row.shared,
        recursion: row.recursion,
        variants: row
            .variants
            .iter()
            .map(|v| VariantJson {
                name: v.name,
                ddis: v.ddis,
                contexts: contexts(v.contexts),
                held_irql: v.held_irql.name(),
                apc_while_held: v.apc.name(),
                depth: v.depth,
                threaded_dpcs: v.threaded_dpcs,
            })
            .collect(),
    }
}

/// Prints the registry: what `run` can stress, and how.
pub fn print_list(json: bool) {
    if json {
        let rows: Vec<PrimitiveJson> = REGISTRY.iter().map(primitive_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return;
    }
    println!(
        "{:<13} {:<9} {:<32} {:<15} {:<15} {:<28} APC state while held",
        "primitive", "variant", "kernel type", "contexts", "held IRQL", "modes / recursion"
    );
    for row in &REGISTRY {
        for (i, v) in row.variants.iter().enumerate() {
            let (name, ty, modes) = if i == 0 {
                let modes = if row.shared {
                    "shared+exclusive"
                } else {
                    "exclusive"
                };
                let recursion = if row.recursion == "none" {
                    String::new()
                } else {
                    " / recursive".to_owned()
                };
                (row.name, row.kernel_type, format!("{modes}{recursion}"))
            } else {
                ("", "", String::new())
            };
            println!(
                "{:<13} {:<9} {:<32} {:<15} {:<15} {:<28} {}",
                name,
                v.name,
                ty,
                contexts(v.contexts).join(","),
                v.held_irql.name(),
                modes,
                v.apc.name()
            );
        }
    }
    println!("\nContexts: passive = PASSIVE_LEVEL threads, apc = threads at APC_LEVEL (--apc-level), dpc = DPCs at DISPATCH_LEVEL (--dpc).");
    println!("Each variant's DDIs: synclab list --json.");
}

#[derive(Serialize)]
struct Parameters {
    primitive: String,
    variant: String,
    writers: u32,
    readers: u32,
    dpc: bool,
    apc_level: bool,
    busted: bool,
    iterations: u32,
    duration_ms: u32,
    hold_us: u32,
    long_hold_us: u32,
    long_hold_per_mille: u32,
    delay_us: u32,
    stutter_ms: u32,
    seed: u64,
    max_processors: u32,
    processors: u32,
}

#[derive(Serialize)]
struct Violations {
    exclusion: u64,
    reader: u64,
    irql: u64,
    restore: u64,
    apc: u64,
    recursion: u64,
    lost_updates: u64,
}

#[derive(Serialize)]
struct Totals {
    acquisitions: u64,
    writes: u64,
    reads: u64,
    protected_counter: u64,
    contended: u64,
    max_concurrent_readers: u64,
    violations: Violations,
    max_wait_ns: u64,
    elapsed_ns: u64,
    throughput_per_s: f64,
}

#[derive(Serialize)]
struct Fairness {
    min: u64,
    max: u64,
    mean: f64,
    stddev: f64,
    starvation: bool,
}

#[derive(Serialize)]
struct Latency {
    p50_ns: u64,
    p90_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    histogram: Vec<Bucket>,
    timing_cost_ns: u64,
}

#[derive(Serialize)]
struct Bucket {
    below_ns: u64,
    count: u64,
}

#[derive(Serialize)]
struct Dispatch {
    dpc_invocations: u64,
    longest_invocation_ns: u64,
    busy_ns: u64,
}

#[derive(Serialize)]
struct Worker {
    index: usize,
    kind: &'static str,
    role: &'static str,
    processor: u32,
    irql: u32,
    acquisitions: u64,
    writes: u64,
    reads: u64,
    contended: u64,
    conversions: u64,
    exclusion_violations: u64,
    reader_violations: u64,
    irql_violations: u64,
    restore_violations: u64,
    apc_violations: u64,
    recursion_violations: u64,
    max_wait_ns: u64,
    mean_wait_ns: u64,
}

#[derive(Serialize)]
struct StressJson<'a> {
    device: &'a str,
    emulated: bool,
    parameters: Parameters,
    totals: Totals,
    fairness: Fairness,
    latency: Latency,
    dispatch: Dispatch,
    workers: Vec<Worker>,
    verdict: &'static str,
    reason: Option<String>,
    cancelled: bool,
}

const fn kind_name(kind: u32) -> &'static str {
    match kind {
        worker_kind::THREAD => "thread",
        worker_kind::DPC => "dpc",
        worker_kind::THREADED_DPC => "threaded-dpc",
        _ => "?",
    }
}

const fn role_name(r: u32) -> &'static str {
    match r {
        role::WRITER => "writer",
        role::READER => "reader",
        _ => "?",
    }
}

/// The verdict shown: a cancelled run that caught no violation is CANCELLED (the part that ran
/// proves nothing either way); one that did is still FAILURE.
const fn shown_verdict(r: &StressResponse) -> &'static str {
    if r.cancelled != 0 && r.verdict != verdict::FAILURE {
        "CANCELLED"
    } else {
        verdict_name(r.verdict)
    }
}

/// One line naming a request's primitive, variant, workers and length, for the client's
/// "running" notice.
#[must_use]
pub fn describe_request(q: &StressRequest) -> String {
    let primitive = Primitive::from_id(q.primitive);
    let name = primitive.map_or("?", Primitive::name);
    let variant = primitive
        .and_then(|p| p.info().variant(q.variant))
        .map_or("?", |v| v.name);
    let length = if q.iterations == 0 {
        format!("{} ms", q.duration_ms)
    } else {
        format!(
            "{} acquisitions per worker, at most {} ms",
            q.iterations, q.duration_ms
        )
    };
    format!(
        "{name}/{variant}: {} writers, {} readers{}, {length}",
        q.writers,
        q.readers,
        if q.flags & FLAG_DPC != 0 {
            ", DPCs"
        } else {
            ""
        }
    )
}

const fn verdict_name(v: u32) -> &'static str {
    match v {
        verdict::SUCCESS => "SUCCESS",
        verdict::FAILURE => "FAILURE",
        verdict::INCONCLUSIVE => "INCONCLUSIVE",
        _ => "?",
    }
}

/// Why a clean run is INCONCLUSIVE, in words.
fn reason(r: &StressResponse) -> Option<String> {
    let q = &r.request;
    let used = if q.max_processors == 0 {
        r.processors
    } else {
        q.max_processors.min(r.processors)
    };
    let at_dispatch = Primitive::from_id(q.primitive)
        .and_then(|p| p.info().variant(q.variant))
        .is_some_and(synclab_protocol::primitive::Variant::held_at_dispatch);
    (r.verdict == verdict::INCONCLUSIVE).then(|| match r.inconclusive_reason {
        inconclusive::NO_CONTENTION if r.worker_count <= 1 => {
            "one worker alone cannot contend: no acquisition found the lock held, so the run could not have caught a broken lock".to_owned()
        }
        inconclusive::NO_CONTENTION if used <= 1 && at_dispatch => {
            "on one processor IRQL alone keeps the holders of a DISPATCH_LEVEL lock apart, so no two could overlap and the run could not have caught a broken lock (use --cpus 2 or more)".to_owned()
        }
        inconclusive::NO_CONTENTION => {
            "no acquisition found the lock held and no two readers overlapped: the run could not have caught a broken lock (add workers, iterations or hold time)".to_owned()
        }
        other => format!("reason {other}"),
    })
}

/// locktorture's fairness figures over the workers' acquisitions; `???` when max/2 > min.
#[allow(clippy::cast_precision_loss, reason = "statistics for display")]
fn fairness(workers: &[WorkerStats]) -> Fairness {
    let counts: Vec<u64> = workers.iter().map(|w| w.acquisitions).collect();
    let max = counts.iter().copied().max().unwrap_or(0);
    let min = counts.iter().copied().min().unwrap_or(0);
    let n = counts.len().max(1) as f64;
    let mean = counts.iter().sum::<u64>() as f64 / n;
    let variance = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    Fairness {
        min,
        max,
        mean,
        stddev: variance.sqrt(),
        starvation: max / 2 > min,
    }
}

/// The latency below which fraction `q` of the acquisitions fall: the upper bound of the log2
/// bucket that holds that rank (so an overestimate by at most 2x).
fn percentile(histogram: &[u64], q: f64) -> u64 {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rank within the total"
    )]
    let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (k, &count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return histogram_upper_ns(k);
        }
    }
    histogram_upper_ns(histogram.len() - 1)
}

fn latency(r: &StressResponse) -> Latency {
    let h = &r.latency_histogram;
    Latency {
        p50_ns: percentile(h, 0.5),
        p90_ns: percentile(h, 0.9),
        p99_ns: percentile(h, 0.99),
        p999_ns: percentile(h, 0.999),
        max_ns: r.max_wait_ns,
        histogram: h
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(k, &count)| Bucket {
                below_ns: histogram_upper_ns(k),
                count,
            })
            .collect(),
        timing_cost_ns: r.timing_cost_ns,
    }
}

#[allow(clippy::cast_precision_loss, reason = "display only")]
fn throughput(r: &StressResponse) -> f64 {
    if r.elapsed_ns == 0 {
        0.0
    } else {
        r.total_acquisitions as f64 * 1e9 / r.elapsed_ns as f64
    }
}

fn parameters(r: &StressResponse) -> Parameters {
    let q = &r.request;
    let primitive = Primitive::from_id(q.primitive);
    Parameters {
        primitive: primitive.map_or_else(|| q.primitive.to_string(), |p| p.name().to_owned()),
        variant: primitive
            .and_then(|p| p.info().variant(q.variant))
            .map_or_else(|| q.variant.to_string(), |v| v.name.to_owned()),
        writers: q.writers,
        readers: q.readers,
        dpc: q.flags & FLAG_DPC != 0,
        apc_level: q.flags & FLAG_APC_LEVEL != 0,
        busted: q.flags & FLAG_BUSTED != 0,
        iterations: q.iterations,
        duration_ms: q.duration_ms,
        hold_us: q.hold_us,
        long_hold_us: q.long_hold_us,
        long_hold_per_mille: q.long_hold_per_mille,
        delay_us: q.delay_us,
        stutter_ms: q.stutter_ms,
        seed: q.seed,
        max_processors: q.max_processors,
        processors: r.processors,
    }
}

/// Prints a stress run's figures and its verdict.
pub fn print_stress(device: &str, r: &StressResponse, json: bool) {
    let emulated = device.contains("emulated");
    if json {
        print_stress_json(device, emulated, r);
    } else {
        print_stress_table(device, emulated, r);
    }
}

fn print_stress_json(device: &str, emulated: bool, r: &StressResponse) {
    let value = StressJson {
        device,
        emulated,
        parameters: parameters(r),
        totals: Totals {
            acquisitions: r.total_acquisitions,
            writes: r.writes,
            reads: r.reads,
            protected_counter: r.protected_counter,
            contended: r.contended,
            max_concurrent_readers: r.max_concurrent_readers,
            violations: Violations {
                exclusion: r.exclusion_violations,
                reader: r.reader_violations,
                irql: r.irql_violations,
                restore: r.restore_violations,
                apc: r.apc_violations,
                recursion: r.recursion_violations,
                lost_updates: r.lost_updates(),
            },
            max_wait_ns: r.max_wait_ns,
            elapsed_ns: r.elapsed_ns,
            throughput_per_s: throughput(r),
        },
        fairness: fairness(r.workers()),
        latency: latency(r),
        dispatch: Dispatch {
            dpc_invocations: r.dpc_invocations,
            longest_invocation_ns: r.dpc_max_invocation_ns,
            busy_ns: r.dpc_busy_ns,
        },
        workers: r
            .workers()
            .iter()
            .enumerate()
            .map(|(index, w)| Worker {
                index,
                kind: kind_name(w.kind),
                role: role_name(w.role),
                processor: w.processor,
                irql: w.irql,
                acquisitions: w.acquisitions,
                writes: w.writes,
                reads: w.reads,
                contended: w.contended,
                conversions: w.conversions,
                exclusion_violations: w.exclusion_violations,
                reader_violations: w.reader_violations,
                irql_violations: w.irql_violations,
                restore_violations: w.restore_violations,
                apc_violations: w.apc_violations,
                recursion_violations: w.recursion_violations,
                max_wait_ns: w.max_wait_ns,
                mean_wait_ns: w.total_wait_ns.checked_div(w.acquisitions).unwrap_or(0),
            })
            .collect(),
        verdict: shown_verdict(r),
        reason: reason(r),
        cancelled: r.cancelled != 0,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

fn print_stress_table(device: &str, emulated: bool, r: &StressResponse) {
    let p = parameters(r);
    println!(
        "SyncLab stress: {} ({}) on {device}",
        p.primitive, p.variant
    );
    if emulated {
        println!("note: figures come from ntsim, the emulated kernel; they show correctness, not Windows performance");
    }
    let line = format!(
        "parameters: writers={} readers={} dpc={} apc_level={} busted={} iterations={} duration_ms={} hold_us={} long_hold_us={} long_hold_per_mille={} delay_us={} stutter_ms={} seed={} processors={}",
        p.writers, p.readers, p.dpc, p.apc_level, p.busted, p.iterations, p.duration_ms, p.hold_us,
        p.long_hold_us, p.long_hold_per_mille, p.delay_us, p.stutter_ms, p.seed, p.processors
    );
    println!("{line}");
    println!(
        "{:>6} {:>12} {:>6} {:>4} {:>5} {:>12} {:>10} {:>10} {:>12}",
        "worker",
        "kind",
        "role",
        "cpu",
        "irql",
        "acquisitions",
        "contended",
        "violations",
        "max_wait_us"
    );
    for (i, w) in r.workers().iter().enumerate() {
        println!(
            "{:>6} {:>12} {:>6} {:>4} {:>5} {:>12} {:>10} {:>10} {:>12.1}",
            i,
            kind_name(w.kind),
            role_name(w.role),
            w.processor,
            w.irql,
            w.acquisitions,
            w.contended,
            w.violations(),
            ns_to_us(w.max_wait_ns)
        );
    }
    let f = fairness(r.workers());
    println!(
        "Total: {} acquisitions ({} writes, {} reads), counter {}, contended {}, max readers {}; Max/Min per worker: {}/{}{}{}",
        r.total_acquisitions,
        r.writes,
        r.reads,
        r.protected_counter,
        r.contended,
        r.max_concurrent_readers,
        f.max,
        f.min,
        if f.starvation { " ???" } else { "" },
        if r.verdict == verdict::FAILURE { " !!!" } else { "" }
    );
    println!(
        "fairness: mean {:.1}, stddev {:.1} acquisitions per worker",
        f.mean, f.stddev
    );
    println!(
        "violations: exclusion={} reader={} irql={} restore={} apc={} recursion={} lost_updates={}",
        r.exclusion_violations,
        r.reader_violations,
        r.irql_violations,
        r.restore_violations,
        r.apc_violations,
        r.recursion_violations,
        r.lost_updates()
    );
    let l = latency(r);
    println!(
        "acquire latency (upper bounds of log2 buckets): p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us; a timestamp pair costs {} ns",
        ns_to_us(l.p50_ns),
        ns_to_us(l.p90_ns),
        ns_to_us(l.p99_ns),
        ns_to_us(l.p999_ns),
        ns_to_us(l.max_ns),
        l.timing_cost_ns
    );
    println!(
        "throughput: {:.0} acquisitions/s over {:.3} ms",
        throughput(r),
        ns_to_us(r.elapsed_ns) / 1000.0
    );
    if r.dpc_invocations > 0 {
        println!(
            "DISPATCH_LEVEL: {} DPC invocations, longest {:.1} us, {:.3} ms in all",
            r.dpc_invocations,
            ns_to_us(r.dpc_max_invocation_ns),
            ns_to_us(r.dpc_busy_ns) / 1000.0
        );
    }
    if let Some(why) = reason(r) {
        println!("inconclusive: {why}");
    }
    if r.cancelled != 0 {
        println!("cancelled: the run was stopped early; these figures are the part that ran");
    }
    println!("{line}");
    println!("End of test: {}", shown_verdict(r));
}

#[allow(clippy::cast_precision_loss, reason = "display only")]
fn ns_to_us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}
