//! Every primitive of the registry, in every context its row allows, run end to end on ntsim
//! with 8 emulated processors: SUCCESS with exact counters and observed contention, readers and
//! writers where the family is shared; both busted controls FAILURE; every context a row
//! forbids refused with its status. One parametric test per property, over the registry.
#![cfg(not(windows))] // These tests run the driver on ntsim, the host kernel.

mod common;

use synclab_protocol::{
    primitive::{context, PrimitiveInfo, Variant, REGISTRY},
    status::STATUS_INVALID_PARAMETER_MIX,
    wire::{
        inconclusive, role, verdict, worker_kind, StressRequest, StressResponse, FLAG_APC_LEVEL,
        FLAG_BUSTED, FLAG_DPC,
    },
};

const CPUS: u32 = 8;

/// The contexts to run a variant in: each alone, and threads with DPCs together.
fn mixes(v: &Variant) -> Vec<(&'static str, u32, bool)> {
    let mut out = Vec::new();
    if v.contexts & context::PASSIVE != 0 {
        out.push(("passive threads", 0, true));
    }
    if v.contexts & context::APC != 0 {
        out.push(("APC_LEVEL threads", FLAG_APC_LEVEL, true));
    }
    if v.contexts & context::DPC != 0 {
        out.push(("DPCs alone", FLAG_DPC, false));
        out.push(("threads and DPCs on one lock", FLAG_DPC, true));
    }
    out
}

const fn request(row: &PrimitiveInfo, variant: u32, flags: u32, threads: bool) -> StressRequest {
    let mut r = StressRequest::new(row.primitive, 0, 2000);
    r.variant = variant;
    r.flags = flags;
    if threads {
        r.writers = 3;
        r.readers = if row.shared { 3 } else { 0 };
    }
    // 2000 holds of 20 us: every worker runs for tens of milliseconds, long enough to overlap
    // with the others however a loaded 2-core host schedules them.
    r.hold_us = 20;
    r.seed = 7;
    r
}

fn describe(row: &PrimitiveInfo, v: &Variant, what: &str) -> String {
    format!("{} ({}) from {what}", row.name, v.name)
}

fn assert_success(response: &StressResponse, what: &str) {
    assert_eq!(response.violations(), 0, "{what}: violations {response:#?}");
    assert_eq!(
        response.protected_counter, response.writes,
        "{what}: the counter is exact"
    );
    assert_eq!(
        response.total_acquisitions,
        response.writes + response.reads,
        "{what}"
    );
    assert!(
        response.contended > 0 || response.max_concurrent_readers > 1,
        "{what}: contention observed"
    );
    assert_eq!(response.verdict, verdict::SUCCESS, "{what}");
    for (i, w) in response.workers().iter().enumerate() {
        assert!(
            w.acquisitions >= 2000,
            "{what}: worker {i} did its iterations"
        );
    }
}

fn selected(row: &PrimitiveInfo) -> bool {
    std::env::var("SYNCLAB_TEST_PRIMITIVE").map_or(true, |p| p == row.name)
}

#[test]
fn every_primitive_succeeds_with_exact_counters_and_contention_in_every_legal_context() {
    let (machine, file) = common::machine(CPUS);
    let mut runs = 0;
    for row in REGISTRY.iter().filter(|r| selected(r)) {
        for (index, v) in row.variants.iter().enumerate() {
            let index = u32::try_from(index).expect("few variants");
            for (what, flags, threads) in mixes(v) {
                let what = describe(row, v, what);
                let r = request(row, index, flags, threads);
                let response =
                    common::stress(&machine, file, &r).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_success(&response, &what);
                assert_eq!(response.request, r, "{what}: the request is echoed");
                let workers = response.workers();
                if flags & FLAG_DPC != 0 {
                    let dpcs: Vec<_> = workers
                        .iter()
                        .filter(|w| w.kind != worker_kind::THREAD)
                        .collect();
                    assert_eq!(dpcs.len(), CPUS as usize, "{what}: one DPC per processor");
                    if v.threaded_dpcs {
                        assert!(
                            dpcs.iter().any(|w| w.kind == worker_kind::THREADED_DPC),
                            "{what}: threaded DPCs too"
                        );
                    }
                }
                if row.shared && threads {
                    assert!(response.reads > 0 && response.writes > 0, "{what}");
                    assert!(
                        workers.iter().any(|w| w.role == role::READER),
                        "{what}: readers ran"
                    );
                }
                runs += 1;
            }
        }
    }
    assert!(machine.bugcheck().is_none());
    common::unload_clean(&machine, file);
    assert!(runs > 0);
}

#[test]
fn shared_families_let_readers_overlap() {
    let (machine, file) = common::machine(CPUS);
    for row in REGISTRY.iter().filter(|r| r.shared && selected(r)) {
        let mut r = StressRequest::new(row.primitive, 0, 300);
        r.readers = 6;
        r.hold_us = 20;
        let response = common::stress(&machine, file, &r).expect("the run completes");
        assert_eq!(response.verdict, verdict::SUCCESS, "{}", row.name);
        assert!(
            response.max_concurrent_readers > 1,
            "{}: readers shared the lock",
            row.name
        );
        assert_eq!(response.writes, 0);
        assert_eq!(response.reads, 6 * 300);
    }
    common::unload_clean(&machine, file);
}

/// Both busted controls must fail every time, at the client's defaults (4 writers, 10 000
/// iterations) and at the smallest run the issue names (2 writers, 100 iterations).
#[test]
fn busted_controls_fail_every_time() {
    let (machine, file) = common::machine(CPUS);
    let controls = [
        ("exclusive", synclab_protocol::Primitive::SpinLock),
        ("shared", synclab_protocol::Primitive::ReaderWriterSpinLock),
    ];
    for (kind, primitive) in controls {
        for (writers, iterations) in [(4, 10_000), (2, 100)] {
            for run in 0..20 {
                let mut r = StressRequest::new(primitive, writers, iterations);
                r.flags = FLAG_BUSTED;
                let response = common::stress(&machine, file, &r).expect("the run completes");
                assert_eq!(
                    response.verdict,
                    verdict::FAILURE,
                    "{kind} control, {writers} writers x {iterations}, run {run}"
                );
                assert!(response.exclusion_violations > 0);
                assert_eq!(response.irql_violations, 0, "only exclusion is broken");
                assert_eq!(response.restore_violations, 0);
            }
        }
    }
    assert!(
        machine.bugcheck().is_none(),
        "a busted run is not a kernel fault"
    );
    common::unload_clean(&machine, file);
}

#[test]
fn busted_control_of_every_family_fails() {
    let (machine, file) = common::machine(CPUS);
    for row in REGISTRY.iter().filter(|r| selected(r)) {
        let mut r = StressRequest::new(row.primitive, 3, 300);
        r.flags = FLAG_BUSTED;
        let response = common::stress(&machine, file, &r).expect("the run completes");
        assert_eq!(response.verdict, verdict::FAILURE, "{}", row.name);
        assert!(response.exclusion_violations > 0, "{}", row.name);
        assert_eq!(
            response.irql_violations + response.apc_violations + response.restore_violations,
            0,
            "{}: the control keeps the family's IRQL and APC contract",
            row.name
        );
    }
    common::unload_clean(&machine, file);
}

#[test]
fn every_illegal_context_is_refused_with_its_status() {
    let (machine, file) = common::machine(CPUS);
    let mut refused = 0;
    for row in &REGISTRY {
        for (index, v) in row.variants.iter().enumerate() {
            let index = u32::try_from(index).expect("few variants");
            for ctx in context::EACH {
                if v.contexts & ctx != 0 {
                    continue;
                }
                let (flags, threads) = match ctx {
                    context::APC => (FLAG_APC_LEVEL, true),
                    context::DPC => (FLAG_DPC, false),
                    _ => (0, true),
                };
                let r = request(row, index, flags, threads);
                assert_eq!(
                    common::refused(&machine, file, &r),
                    STATUS_INVALID_PARAMETER_MIX,
                    "{}",
                    describe(row, v, context::name(ctx))
                );
                refused += 1;
            }
        }
    }
    // Never in a DPC: 3 fast mutex, 3 guarded mutex, 1 push lock, 5 resource and 2 KMUTEX
    // variants, and the wait lock (nor at APC_LEVEL).
    assert_eq!(refused, 3 + 3 + 1 + 5 + 2 + 2);
    assert!(machine.bugcheck().is_none());
    common::unload_clean(&machine, file);
}

#[test]
fn one_worker_alone_is_inconclusive() {
    let (machine, file) = common::machine(2);
    let r = StressRequest::new(synclab_protocol::Primitive::FastMutex, 1, 500);
    let response = common::stress(&machine, file, &r).expect("the run completes");
    assert_eq!(response.verdict, verdict::INCONCLUSIVE);
    assert_eq!(response.inconclusive_reason, inconclusive::NO_CONTENTION);
    assert_eq!(response.violations(), 0);
    assert_eq!(response.protected_counter, 500);
    let log = machine.debug_log();
    assert!(
        log.iter().any(|l| l
            .starts_with("synclab: fastmutex: End of test: INCONCLUSIVE: variant=plain writers=1")),
        "{log:#?}"
    );
    common::unload_clean(&machine, file);
}
