//! Each Driver Verifier rule of the spin-lock slice, provoked, with its bug check code and
//! parameters as ddi.md section 12 gives them.

mod support;

use std::time::Duration;

use ntsim::{
    bugcheck::{code, verifier},
    wdk_sys::{KDPC, PVOID},
    BugCheck,
};
use support::{expect_bugcheck, lower, machine, raise, Dpc, SpinLock};

#[test]
fn acquire_above_dispatch_is_0xc4_0x42() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        raise(5);
        l.acquire()
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [verifier::ACQUIRE_SPIN_LOCK_ABOVE_DISPATCH, 5, l.addr(), 0]
    );
    assert!(m.bugcheck().is_some(), "the machine stays dead");
    assert!(m.run(|| 1).is_err(), "a dead machine runs nothing");
}

#[test]
fn at_dpc_level_acquire_below_dispatch_is_0xc4_0x40() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || l.acquire_at_dpc());
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [
            verifier::ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH,
            0,
            l.addr(),
            0
        ]
    );
}

#[test]
fn from_dpc_level_release_below_dispatch_is_0xc4_0x41() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || l.release_from_dpc());
    assert_eq!(
        b.params,
        [
            verifier::RELEASE_FROM_DPC_LEVEL_BELOW_DISPATCH,
            0,
            l.addr(),
            0
        ]
    );
}

#[test]
fn at_dpc_level_above_dispatch_is_the_irql_dispatch_rule() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        raise(3);
        l.acquire_at_dpc();
    });
    assert_eq!(b.params, [verifier::RULE_IRQL_DISPATCH, 3, l.addr(), 0]);
}

#[test]
fn release_of_a_lock_not_held_is_0xc4_0x1007() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        raise(2);
        l.release(0);
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params, [verifier::RELEASED_NOT_ACQUIRED, l.addr(), 0, 0]);
}

#[test]
fn release_at_passive_is_0xc4_0x32() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || l.release(0));
    assert_eq!(
        b.params,
        [verifier::RELEASE_SPIN_LOCK_BAD_IRQL, 0, l.addr(), 0]
    );
}

#[test]
fn release_by_another_thread_is_0xc4_0x1004() {
    // A DPC takes the lock and keeps it; this thread then releases it.
    unsafe extern "C" fn take(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        SpinLock::from_addr(context as usize).acquire_at_dpc();
        support::stall(200_000);
    }
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        let dpc = Dpc::new(take, l.context());
        assert!(dpc.insert());
        std::thread::sleep(Duration::from_millis(50));
        raise(2);
        l.release(0);
    });
    assert_eq!(b.params[0], verifier::RELEASED_BY_OTHER_THREAD);
    assert_eq!(b.params[1], l.addr());
}

#[test]
fn release_with_another_irql_than_saved_is_rule_0x20015() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        assert_eq!(l.acquire(), 0);
        l.release(1);
    });
    assert_eq!(
        b.params,
        [verifier::RULE_IRQL_KE_RELEASE_SPIN_LOCK, l.addr(), 1, 0]
    );
}

#[test]
fn recursive_acquisition_is_0xf() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        l.acquire();
        l.acquire_at_dpc();
    });
    assert_eq!(b.code, code::SPIN_LOCK_ALREADY_OWNED);
    assert_eq!(b.params[0], l.addr());
}

#[test]
fn release_with_the_wrong_family_is_0xc4_0x1009() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        l.acquire();
        l.release_from_dpc();
    });
    assert_eq!(b.params, [verifier::RELEASE_API_MISMATCH, l.addr(), 0, 0]);
}

#[test]
fn out_of_order_release_of_raising_acquires_is_0xc4_0x1003() {
    let m = machine(4);
    let (first, second) = (SpinLock::new(), SpinLock::new());
    let b = expect_bugcheck(&m, move || {
        let old = first.acquire();
        second.acquire();
        first.release(old);
    });
    assert_eq!(
        b.params,
        [
            verifier::RELEASED_OUT_OF_ORDER,
            first.addr(),
            second.addr(),
            0
        ]
    );
}

#[test]
fn lower_irql_to_a_higher_irql_is_0xc4_0x31() {
    let m = machine(4);
    let b = expect_bugcheck(&m, || {
        raise(1);
        lower(2);
    });
    assert_eq!(b.params, [verifier::LOWER_IRQL_INVALID, 1, 2, 0]);
}

#[test]
fn raise_irql_to_a_lower_irql_is_0xc4_0x30() {
    let m = machine(4);
    let b = expect_bugcheck(&m, || {
        raise(2);
        raise(1)
    });
    assert_eq!(b.params, [verifier::RAISE_IRQL_INVALID, 2, 1, 0]);
}

#[test]
fn system_thread_ending_while_holding_a_spin_lock_is_0xc4_0x100a() {
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        l.acquire();
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params[0], verifier::THREAD_TERMINATED_OWNING_LOCK);
    assert_eq!(b.params[1], l.addr());
}

#[test]
fn system_thread_ending_at_raised_irql_is_lowered_not_fatal() {
    // Errata 9: the exit path lowers IRQL to PASSIVE_LEVEL before its checks, so a raised IRQL
    // alone is not a bug check. ntsim notes it in the log.
    let m = machine(1);
    m.run(|| {
        raise(2);
    })
    .expect("no bug check");
    assert!(m.bugcheck().is_none());
    assert!(m.debug_log().iter().any(|l| l.contains("ended at IRQL 2")));
    // The only processor was given back: another context can still raise on it.
    assert_eq!(m.run(|| raise(2)).expect("the processor is free"), 0);
}

#[test]
fn a_spin_lock_held_forever_ends_in_0x133_naming_the_holder() {
    unsafe extern "C" fn hog(context: PVOID) {
        SpinLock::from_addr(context as usize).acquire();
        loop {
            support::stall(100);
        }
    }
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        let _thread = support::spawn(hog, l.context());
        std::thread::sleep(Duration::from_millis(50));
        l.acquire()
    });
    assert_eq!(b.code, code::DPC_WATCHDOG_VIOLATION);
    assert_eq!(b.params[0], 1);
    assert_eq!(b.params[3], l.addr());
    assert!(b.message.contains("held by system thread"), "{}", b.message);
}

unsafe extern "C" fn dpc_returns_raised(_: *mut KDPC, _: PVOID, _: PVOID, _: PVOID) {
    raise(5);
}

unsafe extern "C" fn dpc_lowers(_: *mut KDPC, _: PVOID, _: PVOID, _: PVOID) {
    lower(0);
}

unsafe extern "C" fn dpc_keeps_lock(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    SpinLock::from_addr(context as usize).acquire_at_dpc();
}

fn run_dpc(routine: support::DpcRoutine, context: usize) -> BugCheck {
    let m = machine(4);
    let b = expect_bugcheck(&m, move || {
        let dpc = Dpc::new(routine, context);
        assert!(dpc.insert());
        support::flush_dpcs();
    });
    assert!(b.context.starts_with("DPC runner"), "{}", b.context);
    b
}

#[test]
fn dpc_returning_at_a_raised_irql_is_0xc8() {
    let b = run_dpc(dpc_returns_raised, 0);
    assert_eq!(b.code, code::IRQL_UNEXPECTED_VALUE);
    assert_eq!(b.params[0], (5 << 16) | (2 << 8));
}

#[test]
fn dpc_lowering_below_dispatch_is_0xc4_0x31_with_p4_1() {
    let b = run_dpc(dpc_lowers, 0);
    assert_eq!(b.params, [verifier::LOWER_IRQL_INVALID, 2, 0, 1]);
}

#[test]
fn dpc_returning_with_a_spin_lock_held_is_0x133() {
    let l = SpinLock::new();
    let b = run_dpc(dpc_keeps_lock, l.context());
    assert_eq!(b.code, code::DPC_WATCHDOG_VIOLATION);
    assert_eq!(b.params, [0, l.addr(), 0, 0]);
}
