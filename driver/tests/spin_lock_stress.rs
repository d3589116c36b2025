//! The spin lock IOCTL end to end: client request → I/O manager → KMDF queue → driver →
//! system threads and DPCs on the emulated processors → response.
#![cfg(not(windows))] // These tests run the driver on ntsim, the host kernel.

mod common;

use synclab_protocol::{
    wire::{verdict, worker_kind, StressRequest, FLAG_BUSTED, FLAG_DPC},
    Primitive,
};

#[test]
fn spin_lock_excludes_passive_threads_and_dpcs_on_four_processors() {
    let (machine, file) = common::machine(4);
    let mut request = StressRequest::new(Primitive::SpinLock, 4, 3000);
    request.flags = FLAG_DPC;
    let response = common::stress(&machine, file, &request).expect("the run completes");

    assert_eq!(response.verdict, verdict::SUCCESS);
    assert_eq!(response.processors, 4);
    assert_eq!(
        response.worker_count, 8,
        "4 threads + one DPC per processor"
    );
    assert_eq!(response.total_acquisitions, 8 * 3000);
    assert_eq!(response.writes, 8 * 3000);
    assert_eq!(response.protected_counter, response.total_acquisitions);
    assert_eq!(response.violations(), 0);
    assert_eq!(response.request, request, "the request is echoed");

    let workers = response.workers();
    assert!(workers[..4].iter().all(|w| w.kind == worker_kind::THREAD));
    let mut dpc_cpus: Vec<u32> = workers[4..]
        .iter()
        .inspect(|w| assert_eq!(w.kind, worker_kind::DPC))
        .map(|w| w.processor)
        .collect();
    dpc_cpus.sort_unstable();
    assert_eq!(
        dpc_cpus,
        vec![0, 1, 2, 3],
        "each DPC ran on its own target processor"
    );
    assert!(workers.iter().all(|w| w.acquisitions == 3000));
    let log = machine.debug_log();
    assert!(
        log.iter().any(|l| l.starts_with(
            "synclab: spinlock: End of test: SUCCESS: variant=raise writers=4 readers=0 dpc_workers=4 context=PASSIVE_LEVEL iterations=3000"
        )),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("synclab: spinlock: Start of test: variant=raise")),
        "{log:#?}"
    );
    common::unload_clean(&machine, file);
}

#[test]
fn spin_lock_on_eight_processors_with_hold_time() {
    let (machine, file) = common::machine(8);
    let mut request = StressRequest::new(Primitive::SpinLock, 6, 500);
    request.flags = FLAG_DPC;
    request.hold_us = 2;
    let response = common::stress(&machine, file, &request).expect("the run completes");
    assert_eq!(response.verdict, verdict::SUCCESS);
    assert_eq!(response.worker_count, 14);
    assert_eq!(response.protected_counter, 14 * 500);
    assert_eq!(response.violations(), 0);
    assert!(response.elapsed_ns > 0);
    common::unload_clean(&machine, file);
}

#[test]
fn busted_lock_yields_violations_and_failure() {
    let (machine, file) = common::machine(4);
    let mut request = StressRequest::new(Primitive::SpinLock, 4, 4000);
    request.flags = FLAG_DPC | FLAG_BUSTED;
    request.hold_us = 1;
    let response = common::stress(&machine, file, &request).expect("the run completes");
    assert_eq!(response.verdict, verdict::FAILURE);
    assert!(
        response.exclusion_violations > 0,
        "two workers were seen inside at once"
    );
    assert_eq!(
        response.irql_violations, 0,
        "the busted lock still raises to DISPATCH_LEVEL"
    );
    assert_eq!(response.restore_violations, 0);
    let log = machine.debug_log();
    assert!(
        log.iter().any(|l| l.contains("End of test: FAILURE: ")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains(": VIOLATION: worker ") && l.contains("another writer inside")),
        "a line per violation names the worker: {log:#?}"
    );
    // A busted lock is a harness failure, not a kernel fault: the machine is still alive.
    assert!(machine.bugcheck().is_none());
    common::unload_clean(&machine, file);
}

#[test]
fn duration_stops_the_run_before_the_iterations() {
    let (machine, file) = common::machine(2);
    let mut request = StressRequest::new(Primitive::SpinLock, 2, 10_000_000);
    request.duration_ms = 200;
    request.hold_us = 5;
    let response = common::stress(&machine, file, &request).expect("the run completes");
    assert_eq!(response.verdict, verdict::SUCCESS);
    assert!(response.total_acquisitions < 2 * 10_000_000);
    assert_eq!(response.protected_counter, response.total_acquisitions);
    common::unload_clean(&machine, file);
}

#[test]
fn info_reports_the_emulated_kernel() {
    let (machine, file) = common::machine(6);
    let info = common::info(&machine, file).expect("GET_INFO succeeds");
    assert_eq!(info.header.abi_version, synclab_protocol::ABI_VERSION);
    assert_eq!(info.kernel, synclab_protocol::wire::kernel::EMULATED);
    assert_eq!(info.processor_count, 6);
    assert_eq!(info.timestamp_frequency, 10_000_000);
    assert_eq!(info.os_version[0], 10);
    common::unload_clean(&machine, file);
}
