//! Each misuse of an executive resource, provoked, with the bug check code and parameters of
//! ddi.md sections 7.2, 12 and 13.

mod support;

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use ntsim::{
    bugcheck::{code, verifier},
    wdk_sys::{ntddk, PVOID},
    BugCheck, HostError, Machine, MachineConfig,
};
use support::{
    enter_critical_region, expect_bugcheck, leave_critical_region, machine, raise,
    resource::{await_bugcheck, current_resource_thread, owner_pointer, Resource, Steps},
    spawn,
};

const C4: u32 = code::DRIVER_VERIFIER_DETECTED_VIOLATION;

/// Runs `holder` and `culprit` as two system threads of `m` at once; returns the bug check the
/// culprit causes (the holder, blocked on a step that never comes, halts with the machine).
fn with_holder(
    m: &Machine,
    holder: impl FnOnce() + Send + 'static,
    culprit: impl FnOnce() + Send + 'static,
) -> BugCheck {
    std::thread::scope(|s| {
        let held = s.spawn(|| m.run(holder));
        let b = expect_bugcheck(m, culprit);
        assert!(
            matches!(
                held.join().expect("host thread"),
                Err(HostError::BugCheck(_))
            ),
            "the holder stops with the machine"
        );
        b
    })
}

#[test]
fn acquires_convert_and_delete_above_apc_level_break_irql_ex_apc_lte3() {
    type Call = fn(Resource);
    let calls: [(&str, Call); 8] = [
        ("exclusive", |r| {
            r.exclusive(true);
        }),
        ("shared", |r| {
            r.shared(false);
        }),
        ("starve", |r| {
            r.shared_starve_exclusive(true);
        }),
        ("wait for exclusive", |r| {
            r.shared_wait_for_exclusive(true);
        }),
        ("convert", Resource::convert_to_shared),
        ("delete", |r| {
            r.delete();
        }),
        ("helper", Resource::enter_region_exclusive),
        ("helper shared", Resource::enter_region_shared),
    ];
    for (what, call) in calls {
        let m = machine(2);
        let r = Resource::new(&m);
        let b = expect_bugcheck(&m, move || {
            enter_critical_region();
            raise(2);
            call(r);
        });
        assert_eq!(b.code, C4, "{what}");
        assert_eq!(
            b.params,
            [verifier::RULE_IRQL_EX_APC_LTE3, 2, r.addr(), 0],
            "{what}"
        );
    }
}

#[test]
fn release_init_and_queries_above_dispatch_level_are_0xc4_0xe5() {
    type Call = fn(Resource);
    let calls: [(&str, Call); 5] = [
        ("release", Resource::release),
        ("init", |r| {
            r.init();
        }),
        ("is exclusive", |r| {
            r.is_exclusive();
        }),
        ("waiters", |r| {
            r.exclusive_waiters();
        }),
        ("release for thread", |r| r.release_for_thread(0)),
    ];
    for (what, call) in calls {
        let m = machine(2);
        let r = Resource::uninitialised();
        let b = expect_bugcheck(&m, move || {
            raise(3);
            call(r);
        });
        assert_eq!(b.code, C4, "{what}");
        assert_eq!(
            b.params,
            [verifier::API_AT_WRONG_IRQL, 3, r.addr(), 0],
            "{what}"
        );
    }
}

#[test]
fn release_and_leave_critical_region_at_dispatch_level_takes_the_docs_apc_limit() {
    // Docs <= APC_LEVEL, header <= DISPATCH_LEVEL: the stricter one (ddi.md 14).
    let m = machine(2);
    let r = Resource::new(&m);
    let b = expect_bugcheck(&m, move || {
        r.enter_region_exclusive();
        raise(2);
        r.release_and_leave_region();
    });
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 2, r.addr(), 0]);
}

#[test]
fn acquire_with_normal_kernel_apcs_enabled_is_0xc4_0x37() {
    let m = machine(2);
    let r = Resource::new(&m);
    let b = expect_bugcheck(&m, move || r.shared(true));
    assert_eq!(b.code, C4);
    // P2 IRQL, P3 the APC-disable count, P4 the resource.
    assert_eq!(
        b.params,
        [verifier::RESOURCE_ACQUIRE_APCS_ENABLED, 0, 0, r.addr()]
    );
}

#[test]
fn release_with_normal_kernel_apcs_enabled_is_0xc4_0x38() {
    let m = machine(2);
    let r = Resource::new(&m);
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        r.exclusive(true);
        leave_critical_region();
        r.release();
    });
    assert_eq!(
        b.params,
        [verifier::RESOURCE_RELEASE_APCS_ENABLED, 0, 0, r.addr()]
    );
}

#[test]
fn release_by_a_thread_that_does_not_own_it_is_0xe3() {
    let m = machine(4);
    let r = Resource::new(&m);
    let steps = Steps::new();
    let culprit: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = with_holder(
        &m,
        move || {
            enter_critical_region();
            r.exclusive(true);
            steps.done(1);
            steps.wait(2);
        },
        move || {
            steps.wait(1);
            culprit.store(current_resource_thread(), Ordering::Release);
            enter_critical_region();
            r.release();
        },
    );
    assert_eq!(b.code, code::RESOURCE_NOT_OWNED);
    let thread = culprit.load(Ordering::Acquire) as u64;
    assert_ne!(thread, 0);
    assert_eq!(b.params, [r.addr(), thread, 0, 0]);

    // Released more often than acquired, by the owner itself.
    let m = machine(2);
    let r = Resource::new(&m);
    let me: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        me.store(current_resource_thread(), Ordering::Release);
        enter_critical_region();
        r.shared(true);
        r.release();
        r.release();
    });
    assert_eq!(b.code, code::RESOURCE_NOT_OWNED);
    assert_eq!(
        b.params,
        [r.addr(), me.load(Ordering::Acquire) as u64, 0, 0]
    );
}

#[test]
fn exclusive_request_by_a_shared_owner_with_wait_is_a_self_deadlock() {
    let m = machine(2);
    let r = Resource::new(&m);
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        r.shared(true);
        r.exclusive(true)
    });
    assert_eq!(b.code, C4);
    assert_eq!(b.params, [verifier::SELF_DEADLOCK, r.addr(), 0, 0]);
}

/// A: holds the resource shared, then `ExAcquireSharedWaitForExclusive` while B waits for it
/// exclusively. Nobody releases A's hold for it.
unsafe extern "C" fn shared_then_wait_for_exclusive(context: PVOID) {
    let r = Resource::at(context as usize);
    enter_critical_region();
    r.shared(true);
    STEPS.done(1);
    r.await_exclusive_waiters(1);
    r.shared_wait_for_exclusive(true);
}

/// B: waits for exclusive access.
unsafe extern "C" fn wait_exclusive(context: PVOID) {
    let r = Resource::at(context as usize);
    enter_critical_region();
    r.exclusive(true);
}

static STEPS: Steps = Steps::zero();

#[test]
fn shared_wait_for_exclusive_behind_its_own_hold_is_a_self_deadlock_after_the_hang_budget() {
    // Errata 13: reported only once nobody released the hold for it within the hang budget.
    let m = Machine::new(MachineConfig {
        processors: 4,
        hang_budget: Duration::from_millis(500),
        ..MachineConfig::default()
    });
    let r = Resource::new(&m);
    let addr = r.address();
    m.run(move || {
        let _ = spawn(shared_then_wait_for_exclusive, addr);
        STEPS.wait(1);
        let _ = spawn(wait_exclusive, addr);
    })
    .expect("threads started");
    let b = await_bugcheck(&m, Duration::from_secs(60));
    assert_eq!(b.code, C4, "{b}");
    assert_eq!(b.params, [verifier::SELF_DEADLOCK, r.addr(), 0, 0]);
    assert_eq!(b.detected_in, "ExAcquireSharedWaitForExclusive");
}

#[test]
fn deleting_an_owned_or_waited_for_resource_is_0xc4_0x100b() {
    let m = machine(2);
    let r = Resource::new(&m);
    let me: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        me.store(current_resource_thread(), Ordering::Release);
        enter_critical_region();
        r.shared(true);
        r.delete();
    });
    assert_eq!(b.code, C4);
    assert_eq!(
        b.params,
        [
            verifier::DELETED_LOCK_STILL_OWNED,
            r.addr(),
            me.load(Ordering::Acquire) as u64,
            0
        ]
    );
}

#[test]
fn deleting_a_resource_another_thread_waits_for_is_0xc4_0x100b() {
    let m = machine(4);
    let r = Resource::new(&m);
    let steps = Steps::new();
    let me: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = with_holder(
        &m,
        move || {
            steps.wait(1);
            enter_critical_region();
            r.exclusive(true);
        },
        move || {
            me.store(current_resource_thread(), Ordering::Release);
            enter_critical_region();
            r.exclusive(true);
            steps.done(1);
            r.await_exclusive_waiters(1);
            r.delete();
        },
    );
    assert_eq!(
        b.params,
        [
            verifier::DELETED_LOCK_STILL_OWNED,
            r.addr(),
            me.load(Ordering::Acquire) as u64,
            0
        ]
    );
}

#[test]
fn deleting_an_uninitialised_resource_is_0xc4_0xd1() {
    let m = machine(2);
    let r = Resource::uninitialised();
    let b = expect_bugcheck(&m, move || r.delete());
    assert_eq!(
        b.params,
        [verifier::RESOURCE_DELETE_UNINITIALIZED, r.addr(), 0, 0]
    );
    // Deleted twice: the second delete finds it uninitialised.
    let m = machine(2);
    let r = Resource::new(&m);
    let b = expect_bugcheck(&m, move || {
        r.delete();
        r.delete();
    });
    assert_eq!(
        b.params,
        [verifier::RESOURCE_DELETE_UNINITIALIZED, r.addr(), 0, 0]
    );
}

#[test]
fn initialising_a_live_resource_is_0xc4_0xd0() {
    let m = machine(2);
    let r = Resource::new(&m);
    let b = expect_bugcheck(&m, move || r.init());
    assert_eq!(b.params, [verifier::RESOURCE_REINITIALIZED, r.addr(), 0, 0]);
    // Reinitialising one that is still owned.
    let m = machine(2);
    let r = Resource::new(&m);
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        r.exclusive(true);
        r.reinit();
    });
    assert_eq!(b.params, [verifier::RESOURCE_REINITIALIZED, r.addr(), 0, 0]);
}

#[test]
fn using_an_uninitialised_resource_is_0xc4_0x1002() {
    let m = machine(2);
    let r = Resource::uninitialised();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        r.exclusive(true);
    });
    assert_eq!(b.params, [verifier::UNINITIALIZED_LOCK, r.addr(), 0, 0]);
    // Deleted, then acquired.
    let m = machine(2);
    let r = Resource::new(&m);
    let b = expect_bugcheck(&m, move || {
        r.delete();
        enter_critical_region();
        r.shared(true);
    });
    assert_eq!(b.params, [verifier::UNINITIALIZED_LOCK, r.addr(), 0, 0]);
}

#[test]
fn converting_without_exclusive_ownership_is_0x1f() {
    let m = machine(2);
    let r = Resource::new(&m);
    let me: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        me.store(current_resource_thread(), Ordering::Release);
        enter_critical_region();
        r.shared(true);
        r.convert_to_shared();
    });
    assert_eq!(b.code, code::SHARED_RESOURCE_CONV_ERROR);
    assert_eq!(
        b.params,
        [r.addr(), me.load(Ordering::Acquire) as u64, 0, 0]
    );
}

#[test]
fn freeing_pool_that_contains_a_live_resource_is_0xc4_0x17() {
    const POOL_FLAG_NON_PAGED: u64 = 0x40;
    const TAG: u32 = u32::from_le_bytes(*b"Rsrc");
    let m = machine(2);
    let block: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        // SAFETY: plain allocation; the result is checked below.
        let p = unsafe { ntddk::ExAllocatePool2(POOL_FLAG_NON_PAGED, 256, TAG) } as usize;
        assert_ne!(p, 0);
        block.store(p, Ordering::Release);
        let r = Resource::at(p + 64);
        r.init();
        // Deleted first, the block could be freed; it is not.
        // SAFETY: `p` is the live block just allocated with TAG.
        unsafe { ntddk::ExFreePoolWithTag(p as PVOID, TAG) };
    });
    let p = block.load(Ordering::Acquire) as u64;
    assert_eq!(b.code, C4);
    assert_eq!(
        b.params,
        [verifier::FREED_POOL_CONTAINS_ERESOURCE, p + 64, 0, p]
    );
    // Deleted before the free: fine.
    let m = machine(2);
    m.run(|| {
        // SAFETY: plain allocation; the result is checked below.
        let p = unsafe { ntddk::ExAllocatePool2(POOL_FLAG_NON_PAGED, 104, TAG) } as usize;
        assert_ne!(p, 0);
        let r = Resource::at(p);
        r.init();
        r.delete();
        // SAFETY: `p` is the live block just allocated with TAG.
        unsafe { ntddk::ExFreePoolWithTag(p as PVOID, TAG) };
    })
    .expect("a deleted resource's memory may be freed");
}

#[test]
fn a_thread_ending_while_owning_a_resource_is_0xc4_0x100a() {
    for exclusive in [true, false] {
        let m = machine(2);
        let r = Resource::new(&m);
        let me: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        let b = expect_bugcheck(&m, move || {
            me.store(current_resource_thread(), Ordering::Release);
            enter_critical_region();
            if exclusive {
                r.exclusive(true);
            } else {
                r.shared(true);
            }
            leave_critical_region();
        });
        assert_eq!(b.code, C4);
        assert_eq!(
            b.params,
            [
                verifier::THREAD_TERMINATED_OWNING_LOCK,
                r.addr(),
                me.load(Ordering::Acquire) as u64,
                0
            ],
            "exclusive: {exclusive}"
        );
    }
}

#[test]
fn release_for_a_thread_that_owns_nothing_is_0x16e() {
    let m = machine(2);
    let r = Resource::new(&m);
    let me: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let bogus = 0x1234_5670_usize;
    let b = expect_bugcheck(&m, move || {
        me.store(current_resource_thread(), Ordering::Release);
        enter_critical_region();
        r.exclusive(true);
        r.release_for_thread(bogus);
    });
    assert_eq!(b.code, code::ERESOURCE_INVALID_RELEASE);
    assert_eq!(
        b.params,
        [r.addr(), me.load(Ordering::Acquire) as u64, bogus as u64, 0]
    );
}

#[test]
fn an_owner_pointer_without_its_low_bits_set_is_0x132() {
    let m = machine(2);
    let r = Resource::new(&m);
    let me: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let owner = owner_pointer() & !0x2; // only one of the two bits
    let b = expect_bugcheck(&m, move || {
        me.store(current_resource_thread(), Ordering::Release);
        enter_critical_region();
        r.exclusive(true);
        r.set_owner_pointer(owner);
    });
    assert_eq!(b.code, code::RESOURCE_OWNER_POINTER_INVALID);
    assert_eq!(
        b.params,
        [r.addr(), 0, me.load(Ordering::Acquire) as u64, owner as u64]
    );
}

#[test]
fn after_a_hand_off_the_acquiring_thread_no_longer_owns_it() {
    // Only ExReleaseResourceForThreadLite may release a handed-off acquisition.
    let m = machine(2);
    let r = Resource::new(&m);
    let owner = owner_pointer();
    let me: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let b = expect_bugcheck(&m, move || {
        me.store(current_resource_thread(), Ordering::Release);
        enter_critical_region();
        r.shared(true);
        r.set_owner_pointer_ex(owner, 0);
        r.release();
    });
    assert_eq!(b.code, code::RESOURCE_NOT_OWNED);
    assert_eq!(
        b.params,
        [r.addr(), me.load(Ordering::Acquire) as u64, 0, 0]
    );
}

#[test]
fn a_misaligned_resource_is_0xc4_0x3d() {
    let m = machine(2);
    let r = Resource::at(Resource::uninitialised().address() + 4);
    let b = expect_bugcheck(&m, move || r.init());
    assert_eq!(b.params, [verifier::BAD_RESOURCE_ADDRESS, 0, 0, r.addr()]);
}
