//! Framework spin locks, `WdfSpinLockCreate/Acquire/Release` (ddi.md 11.1, 12.3): IRQL on
//! return, the framework verifier's 0x10D checks, the kernel checks they share with spin locks,
//! and exclusion under a stress from system threads and DPCs.

mod support;

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use ntsim::{
    bugcheck::{code, verifier, wdf},
    wdk_sys::{call_unsafe_wdf_function_binding, KDPC, PVOID, WDF_NO_OBJECT_ATTRIBUTES},
};
use support::{
    expect_bugcheck, irql, lower, machine, raise,
    spin_families::{roomy_machine, stress, wait_until, Arena, Plan, WdfLock},
    Dpc, SpinLock,
};

#[test]
fn acquire_raises_to_dispatch_and_release_restores_the_callers_irql() {
    let m = machine(2);
    let seen = m
        .run(|| {
            let l = WdfLock::create();
            let mut out = Vec::new();
            for start in [0, 1, 2] {
                if start > 0 {
                    raise(start);
                }
                l.acquire();
                out.push((start, irql()));
                l.release();
                out.push((start, irql()));
                lower(0);
            }
            out
        })
        .expect("no bug check");
    assert_eq!(seen, [(0, 2), (0, 0), (1, 2), (1, 1), (2, 2), (2, 2)]);
}

#[test]
fn create_above_dispatch_fails_with_invalid_device_request() {
    let m = machine(2);
    let status = m
        .run(|| {
            raise(3);
            let mut handle = std::ptr::null_mut();
            // SAFETY: no attributes; `handle` is writable.
            let status = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfSpinLockCreate,
                    WDF_NO_OBJECT_ATTRIBUTES,
                    &raw mut handle
                )
            };
            lower(0);
            (status, handle.is_null())
        })
        .expect("no bug check");
    assert_eq!(
        status,
        (ntsim::wdk_sys::STATUS_INVALID_DEVICE_REQUEST, true)
    );
}

#[test]
fn create_with_a_null_output_is_0x10d_0x4() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        // SAFETY: deliberately NULL: the framework verifier must catch it.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfSpinLockCreate,
                WDF_NO_OBJECT_ATTRIBUTES,
                std::ptr::null_mut()
            )
        }
    });
    assert_eq!(b.code, code::WDF_VIOLATION);
    assert_eq!(b.params, [wdf::REQUIRED_PARAMETER_IS_NULL, 0, 0, 0]);
}

#[test]
fn recursive_acquire_is_0x10d_0x2() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        let l = WdfLock::create();
        l.acquire();
        l.acquire();
    });
    assert_eq!(b.code, code::WDF_VIOLATION);
    assert_eq!(b.params[0], wdf::RECURSIVE_LOCK);
    assert_ne!(b.params[1], 0, "P2 is the lock handle");
    assert_eq!(b.params[2..], [0, 0]);
}

#[test]
fn release_of_a_lock_never_acquired_is_0x10d_0xb_p3_1() {
    let m = machine(2);
    let handle = AtomicUsize::new(0);
    let handle: &'static AtomicUsize = Box::leak(Box::new(handle));
    let b = expect_bugcheck(&m, move || {
        let l = WdfLock::create();
        handle.store(l.context(), Ordering::Relaxed);
        l.release();
    });
    assert_eq!(b.code, code::WDF_VIOLATION);
    assert_eq!(
        b.params,
        [
            wdf::INVALID_LOCK_OPERATION,
            handle.load(Ordering::Relaxed) as u64,
            1,
            0
        ]
    );
}

#[test]
fn release_by_a_context_that_did_not_acquire_is_0x10d_0xb_p3_1() {
    unsafe extern "C" fn holder(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        // SAFETY: the context is the leaked [handle, flag] pair below.
        let s = unsafe { &*context.cast::<[AtomicUsize; 2]>() };
        WdfLock::from_addr(s[0].load(Ordering::Relaxed)).acquire();
        s[1].store(1, Ordering::Release);
        support::stall(2_000_000);
    }
    let m = roomy_machine(4);
    let handle: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        let l = WdfLock::create();
        handle.store(l.context(), Ordering::Relaxed);
        let s: &'static [AtomicUsize; 2] = Box::leak(Box::new([
            AtomicUsize::new(l.context()),
            AtomicUsize::new(0),
        ]));
        assert!(Dpc::new(holder, std::ptr::from_ref(s) as usize).insert());
        wait_until("the holder", Duration::from_secs(30), || {
            s[1].load(Ordering::Acquire) == 1
        });
        raise(2);
        l.release();
    });
    assert_eq!(
        b.params,
        [
            wdf::INVALID_LOCK_OPERATION,
            handle.load(Ordering::Relaxed) as u64,
            1,
            0
        ]
    );
    assert!(b.message.contains("DPC runner"), "{}", b.message);
}

#[test]
fn acquire_above_dispatch_is_0xc4_0x42() {
    let m = machine(2);
    let handle: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        let l = WdfLock::create();
        handle.store(l.context(), Ordering::Relaxed);
        raise(3);
        l.acquire();
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [
            verifier::ACQUIRE_SPIN_LOCK_ABOVE_DISPATCH,
            3,
            handle.load(Ordering::Relaxed) as u64,
            0
        ]
    );
}

#[test]
fn release_below_dispatch_is_0xc4_0x32() {
    let m = machine(2);
    let handle: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        let l = WdfLock::create();
        handle.store(l.context(), Ordering::Relaxed);
        l.acquire();
        lower(0);
        l.release();
    });
    assert_eq!(
        b.params,
        [
            verifier::RELEASE_SPIN_LOCK_BAD_IRQL,
            0,
            handle.load(Ordering::Relaxed) as u64,
            0
        ]
    );
}

#[test]
fn a_handle_that_is_not_a_spin_lock_is_0x10d() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || WdfLock::from_addr(0xFFFF_C000_0BAD_0000).acquire());
    assert_eq!(b.code, code::WDF_VIOLATION);
    assert_eq!(b.params, [wdf::INVALID_HANDLE, 0xFFFF_C000_0BAD_0000, 0, 0]);
}

#[test]
fn released_before_a_later_raising_acquire_is_0xc4_0x1003() {
    let m = machine(2);
    let handle: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let inner = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        let l = WdfLock::create();
        handle.store(l.context(), Ordering::Relaxed);
        l.acquire();
        inner.acquire();
        l.release();
    });
    assert_eq!(
        b.params,
        [
            verifier::RELEASED_OUT_OF_ORDER,
            handle.load(Ordering::Relaxed) as u64,
            inner.addr(),
            0
        ]
    );
}

#[test]
fn system_thread_ending_with_the_lock_held_is_0xc4_0x100a() {
    let m = machine(2);
    let handle: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        let l = WdfLock::create();
        handle.store(l.context(), Ordering::Relaxed);
        l.acquire();
    });
    assert_eq!(
        b.params[..2],
        [
            verifier::THREAD_TERMINATED_OWNING_LOCK,
            handle.load(Ordering::Relaxed) as u64
        ]
    );
}

fn wdf_section(arena: &Arena, _: support::spin_families::Worker, _: u64) {
    let l = WdfLock::from_addr(arena.lock);
    l.acquire();
    arena.exclusive();
    l.release();
}

#[test]
fn stress_wdf_spin_lock_from_threads_and_dpcs() {
    let plan = Plan {
        cpus: 8,
        threads: 4,
        per_thread: 150_000,
        dpcs: 4,
        per_dpc: 100_000,
        make_lock: || WdfLock::create().context(),
        section: wdf_section,
    };
    let outcome = stress(plan);
    assert_eq!(outcome.violations, 0);
    assert_eq!(outcome.exclusive, 1_000_000);
    assert_eq!(outcome.counter, 1_000_000);
}
