//! The run's schedule keeps the machine safe and the figures honest: DPC workers never hold a
//! processor at `DISPATCH_LEVEL` long enough to approach the DPC watchdog, a thread sharing their
//! processor keeps running, and a run given a duration lasts that long.
#![cfg(not(windows))] // These tests run the driver on ntsim, the host kernel.

mod common;

use std::time::Duration;

use ntsim::MachineConfig;
use synclab_protocol::{
    limits::MAX_HOLD_US,
    wire::{verdict, worker_kind, StressRequest, FLAG_DPC},
    Primitive,
};

/// One or two processors with a strict DPC watchdog: a single DPC over 1 s, or a processor at
/// `DISPATCH_LEVEL` for 1.5 s without a break, bugchecks 0x133. The old schedule (each DPC worker
/// re-queuing itself on its own processor) kept the processor at `DISPATCH_LEVEL` for the whole
/// 2 s of holds of the first test, so it tripped the cumulative limit. (The limits leave room
/// for the host descheduling an emulated context on a loaded 2-core machine.)
fn strict_watchdog(cpus: u32) -> MachineConfig {
    MachineConfig {
        dpc_time_limit: Duration::from_secs(1),
        dpc_watchdog_limit: Duration::from_millis(1500),
        ..MachineConfig::with_processors(cpus)
    }
}

#[test]
fn a_lone_dpc_worker_at_the_longest_hold_never_approaches_the_watchdog() {
    let (machine, file) = common::machine_with(strict_watchdog(1));
    let mut r = StressRequest::new(Primitive::SpinLock, 0, 20_000);
    r.flags = FLAG_DPC;
    r.hold_us = MAX_HOLD_US;
    let response = common::stress(&machine, file, &r).expect("no bug check");
    assert!(machine.bugcheck().is_none());
    // One worker alone cannot contend: nothing shows the run could have failed.
    assert_eq!(response.verdict, verdict::INCONCLUSIVE);
    assert_eq!(response.violations(), 0);
    assert_eq!(response.writes, 20_000);
    // Batches of at most 5 at a 100 us hold, and at most half of the time at DISPATCH_LEVEL.
    assert!(
        response.dpc_invocations >= 20_000 / 5,
        "{}",
        response.dpc_invocations
    );
    assert!(
        response.dpc_busy_ns * 100 <= response.elapsed_ns * 55,
        "busy {} ns of {} ns",
        response.dpc_busy_ns,
        response.elapsed_ns
    );
    assert!(response.dpc_max_invocation_ns < 1_000_000_000);
    common::unload_clean(&machine, file);
}

fn thread_beside_dpc(cpus: u32) -> Box<synclab_protocol::wire::StressResponse> {
    let (machine, file) = common::machine_with(strict_watchdog(cpus));
    let mut r = StressRequest::new(Primitive::SpinLock, 1, 0);
    r.flags = FLAG_DPC;
    r.hold_us = MAX_HOLD_US;
    r.duration_ms = 1500;
    let response = common::stress(&machine, file, &r).expect("no bug check");
    assert!(machine.bugcheck().is_none());
    assert_eq!(response.violations(), 0);
    let thread = response.workers()[0];
    assert_eq!(thread.kind, worker_kind::THREAD);
    assert_eq!(thread.processor, 0, "bound to the DPC worker's processor");
    // Progress throughout: many acquisitions, and never a wait anywhere near the run's length.
    assert!(thread.acquisitions >= 500, "{thread:?}");
    assert!(thread.max_wait_ns < 250_000_000, "{thread:?}");
    common::unload_clean(&machine, file);
    response
}

#[test]
fn a_thread_on_the_dpc_workers_processor_keeps_running() {
    // On one processor IRQL alone keeps the thread and the DPC apart: no contention a broken
    // lock could fail, so INCONCLUSIVE, but the thread progresses and nothing bugchecks.
    let alone = thread_beside_dpc(1);
    assert_eq!(alone.verdict, verdict::INCONCLUSIVE);
    // With a second processor the DPC workers contend with the thread: SUCCESS.
    let two = thread_beside_dpc(2);
    assert_eq!(two.verdict, verdict::SUCCESS, "{two:#?}");
    assert!(two.contended > 0);
}

#[test]
fn a_run_given_a_duration_lasts_that_long() {
    let (machine, file) = common::machine(2);
    let mut r = StressRequest::new(Primitive::SpinLock, 2, 0);
    r.duration_ms = 2000;
    r.hold_us = 5;
    let response = common::stress(&machine, file, &r).expect("the run completes");
    let elapsed = Duration::from_nanos(response.elapsed_ns);
    assert!(
        elapsed >= Duration::from_millis(1800) && elapsed <= Duration::from_millis(2200),
        "{elapsed:?}"
    );
    assert_eq!(response.verdict, verdict::SUCCESS);
    assert_eq!(response.protected_counter, response.writes);
    common::unload_clean(&machine, file);
}

#[test]
fn iterations_end_a_run_before_its_duration() {
    let (machine, file) = common::machine(2);
    let mut r = StressRequest::new(Primitive::SpinLock, 2, 100);
    r.duration_ms = 60_000;
    let response = common::stress(&machine, file, &r).expect("the run completes");
    assert_eq!(response.writes, 200);
    assert!(response.elapsed_ns < 30_000_000_000);
    common::unload_clean(&machine, file);
}

#[test]
fn stutter_pauses_every_worker_in_alternate_phases() {
    // 2000 holds of 100 us are 200 ms of work. In 50 ms phases of running and pausing, that
    // takes at least four running phases and the three pauses between them: 350 ms.
    let (machine, file) = common::machine(2);
    let mut r = StressRequest::new(Primitive::SpinLock, 1, 2000);
    r.hold_us = MAX_HOLD_US;
    r.stutter_ms = 50;
    let response = common::stress(&machine, file, &r).expect("the run completes");
    assert_eq!(response.violations(), 0);
    assert_eq!(response.writes, 2000);
    assert!(
        response.elapsed_ns >= 340_000_000,
        "{} ns: the pauses did not happen",
        response.elapsed_ns
    );
    common::unload_clean(&machine, file);
}
