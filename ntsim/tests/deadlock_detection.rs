//! Deadlock detection across lock kinds (ddi.md 12.2, 13.3): a cycle in the order of
//! acquisition between spin locks, fast/guarded mutexes and dispatcher mutexes is 0xC4/0x1001
//! at the acquire that closes it, before anything blocks.

mod support;

use ntsim::bugcheck::{code, verifier};
use ntsim::wdk_sys::KLOCK_QUEUE_HANDLE;
use support::{
    blocking::Mutex, dispatcher::KMutex, expect_bugcheck, machine, spin_families::queued, SpinLock,
};

#[test]
fn kmutex_then_fast_mutex_against_fast_mutex_then_kmutex_is_0xc4_0x1001() {
    let m = machine(4);
    let fast = Mutex::new();
    let kmutex = m.run(KMutex::new).expect("initialised in the machine");
    m.run(move || {
        assert_eq!(kmutex.acquire(), 0);
        fast.acquire();
        fast.release();
        kmutex.release();
    })
    .expect("the first order is fine");
    let bug = expect_bugcheck(&m, move || {
        fast.acquire();
        kmutex.acquire()
    });
    assert_eq!(bug.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(bug.params[0], verifier::LOCK_HIERARCHY_VIOLATION);
    assert_eq!(bug.params[1], kmutex.addr_for_tests() as u64);
    assert!(bug.message.contains("KMUTEX"), "{}", bug.message);
}

#[test]
fn queued_and_plain_spin_lock_orders_are_checked_together() {
    let m = machine(4);
    let (a, b) = (SpinLock::new(), SpinLock::new());
    // A (ordinary) then B (in-stack queued)...
    m.run(move || {
        let old = a.acquire();
        let mut handle = KLOCK_QUEUE_HANDLE::default();
        queued::acquire_at_dpc(b, &raw mut handle);
        queued::release_from_dpc(&raw mut handle);
        a.release(old);
    })
    .expect("A then B");
    // ...against B (in-stack queued) then A (ordinary).
    let bug = expect_bugcheck(&m, move || {
        let mut handle = KLOCK_QUEUE_HANDLE::default();
        queued::acquire(b, &raw mut handle);
        a.acquire_at_dpc();
        a.release_from_dpc();
        queued::release(&raw mut handle);
    });
    assert_eq!(
        bug.params,
        [verifier::LOCK_HIERARCHY_VIOLATION, a.addr(), b.addr(), 0]
    );
    assert!(
        bug.message.contains("KeAcquireInStackQueuedSpinLock"),
        "{}",
        bug.message
    );
}
