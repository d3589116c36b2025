//! Runs live on their own control threads: the queue callback returns at once, at most
//! `MAX_CONCURRENT_RUNS` run together and the rest are refused with `STATUS_DEVICE_BUSY`, and
//! teardown waits for every control thread.
#![cfg(not(windows))] // These tests run the driver on ntsim, the host kernel.

mod common;

use ntsim::{Access, Identity, IoError};
use synclab_protocol::{
    limits::MAX_CONCURRENT_RUNS,
    status::STATUS_DEVICE_BUSY,
    wire::{verdict, StressRequest},
    Primitive,
};

#[test]
#[allow(
    clippy::needless_collect,
    reason = "every run starts before any is joined"
)]
fn runs_beyond_the_limit_are_refused_with_device_busy_and_the_rest_complete() {
    let (machine, first) = common::machine(4);
    let mut request = StressRequest::new(Primitive::SpinLock, 1, 0);
    request.duration_ms = 1500;
    let files: Vec<_> = std::iter::once(first)
        .chain((1..2 * MAX_CONCURRENT_RUNS).map(|_| {
            machine
                .open(Identity::Administrator, Access::READ_WRITE)
                .expect("an administrator opens the device")
        }))
        .collect();
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|&file| {
                let machine = &machine;
                scope.spawn(move || common::stress(machine, file, &request))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    let completed = outcomes.iter().filter(|o| o.is_ok()).count();
    let busy = outcomes
        .iter()
        .filter(|o| matches!(o, Err(IoError::Status(s)) if *s == STATUS_DEVICE_BUSY))
        .count();
    assert_eq!(completed, MAX_CONCURRENT_RUNS, "{outcomes:?}");
    assert_eq!(busy, MAX_CONCURRENT_RUNS, "{outcomes:?}");
    for response in outcomes.iter().flatten() {
        assert_eq!(response.violations(), 0);
        assert_ne!(response.verdict, verdict::FAILURE);
    }
    for file in files {
        machine.close(file);
    }
    let report = machine.unload().expect("no bug check at unload");
    assert_eq!(report.leaked_handles, 0);
    assert!(report.pool.values().all(|s| s.outstanding_bytes == 0));
}
