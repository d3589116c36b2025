//! Run-down protection (ddi.md 9): the state machine, the cache-aware family, contention, and
//! each misuse with the bug check ddi.md 13.3 assigns it.

mod support;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use ntsim::{
    bugcheck::{code, verifier},
    wdk_sys::{KDPC, PVOID},
};
use support::{
    expect_bugcheck, machine, raise,
    runtime::{cache_aware_size, wait_for, CacheAware, RunRef},
    Dpc,
};

const TAG: u32 = u32::from_le_bytes(*b"RunD");

#[test]
fn acquire_release_and_the_word_follow_the_header_layout() {
    let m = machine(2);
    m.run(|| {
        let r = RunRef::new();
        assert_eq!(r.word(), 0, "fresh: no holders, not run down");
        assert!(r.acquire());
        assert_eq!(r.word(), 2, "one holder = EX_RUNDOWN_COUNT_INC");
        assert!(r.acquire(), "recursive acquisition is allowed");
        assert!(r.acquire_ex(3));
        assert_eq!(r.word(), 10);
        r.release_ex(3);
        r.release();
        r.release();
        assert_eq!(r.word(), 0);
        // Acquire and release are legal at DISPATCH_LEVEL.
        let old = raise(2);
        assert!(r.acquire());
        r.release();
        support::lower(old);
    })
    .expect("no bug check");
}

#[test]
fn wait_runs_down_then_completed_then_reinitialize() {
    let m = machine(2);
    m.run(|| {
        let r = RunRef::new();
        r.wait();
        assert_eq!(
            r.word(),
            1,
            "run down with no holders: EX_RUNDOWN_ACTIVE only"
        );
        assert!(!r.acquire(), "acquires fail once run-down began");
        assert!(!r.acquire_ex(2));
        assert_eq!(r.word(), 1, "a failed acquire changes nothing");
        r.wait();
        assert_eq!(r.word(), 1, "a second wait is a harmless no-op");
        r.completed();
        assert!(!r.acquire(), "acquires still fail after ExRundownCompleted");
        r.wait();
        r.reinit();
        assert_eq!(r.word(), 0);
        assert!(r.acquire(), "ReInitialize makes acquires succeed again");
        r.release();
        r.wait();
        r.reinit();
        assert!(r.acquire());
        r.release();
    })
    .expect("no bug check");
}

unsafe extern "C" fn hold_then_release(context: PVOID) {
    // context: [run_ref, acquired flag, released flag]
    // SAFETY: the test leaks this array for the machine's life.
    let slots = unsafe { &*(context as *const [AtomicU64; 3]) };
    let r = RunRef::from_addr(slots[0].load(Ordering::Acquire));
    assert!(r.acquire());
    slots[1].store(1, Ordering::Release);
    support::stall(150_000);
    slots[2].store(1, Ordering::Release);
    r.release();
}

unsafe extern "C" fn waiter(context: PVOID) {
    RunRef::from_addr(context as u64).wait();
}

#[test]
fn the_wait_blocks_new_acquires_and_returns_only_after_the_last_release() {
    let m = machine(4);
    m.run(|| {
        let r = RunRef::new();
        let slots: &'static [AtomicU64; 3] = Box::leak(Box::new([
            AtomicU64::new(r.addr()),
            AtomicU64::new(0),
            AtomicU64::new(0),
        ]));
        let holder = support::spawn(hold_then_release, std::ptr::from_ref(slots) as usize);
        wait_for(&slots[1]);
        // The holder has protection; now run down from this thread.
        r.wait();
        assert_eq!(
            slots[2].load(Ordering::Acquire),
            1,
            "the wait returned only after the holder released"
        );
        assert_eq!(r.word(), 1);
        assert!(!r.acquire());
        support::join(holder);
    })
    .expect("no bug check");
}

#[test]
fn acquires_fail_as_soon_as_another_thread_begins_the_wait() {
    let m = machine(4);
    m.run(|| {
        let r = RunRef::new();
        assert!(r.acquire(), "this thread holds protection");
        let w = support::spawn(waiter, r.context());
        // The waiter sets EX_RUNDOWN_ACTIVE when its wait begins.
        let mut spins = 0;
        while r.word() & 1 == 0 {
            spins += 1;
            assert!(spins < 10_000, "the waiter never began");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(r.word(), 3, "running down with one holder");
        assert!(!r.acquire(), "no new holder once the wait began");
        assert!(!r.acquire_ex(5));
        r.release();
        support::join(w);
        assert_eq!(r.word(), 1);
    })
    .expect("no bug check");
}

unsafe extern "C" fn release_in_dpc(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    RunRef::from_addr(context as u64).release();
}

#[test]
fn protection_handed_to_a_dpc_is_not_a_self_deadlock() {
    // No ownership (ddi.md 9 rule 7): a DPC releases what this thread acquired; the wait by
    // the acquirer afterwards is legal.
    let m = machine(2);
    m.run(|| {
        let r = RunRef::new();
        assert!(r.acquire());
        let dpc = Dpc::new(release_in_dpc, r.context());
        assert!(dpc.insert());
        support::flush_dpcs();
        r.wait();
        assert_eq!(r.word(), 1);
    })
    .expect("no bug check");
}

unsafe extern "C" fn churn(context: PVOID) {
    // context: [run_ref, successes, failures, stop]
    // SAFETY: leaked for the machine's life.
    let slots = unsafe { &*(context as *const [AtomicU64; 4]) };
    let r = RunRef::from_addr(slots[0].load(Ordering::Acquire));
    for _ in 0..2_000 {
        if r.acquire() {
            slots[1].fetch_add(1, Ordering::AcqRel);
            r.release();
        } else {
            slots[2].fetch_add(1, Ordering::AcqRel);
        }
    }
}

unsafe extern "C" fn churn_dpc(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // SAFETY: leaked for the machine's life.
    let slots = unsafe { &*(context as *const [AtomicU64; 4]) };
    let r = RunRef::from_addr(slots[0].load(Ordering::Acquire));
    for _ in 0..200 {
        if r.acquire_ex(2) {
            slots[1].fetch_add(1, Ordering::AcqRel);
            r.release_ex(2);
        } else {
            slots[2].fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[test]
fn run_down_under_contention_from_threads_and_dpcs() {
    let m = machine(4);
    let (ok, failed) = m
        .run(|| {
            let r = RunRef::new();
            let slots: &'static [AtomicU64; 4] = Box::leak(Box::new([
                AtomicU64::new(r.addr()),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
            ]));
            let context = std::ptr::from_ref(slots) as usize;
            let threads: Vec<_> = (0..3).map(|_| support::spawn(churn, context)).collect();
            let dpcs: Vec<Dpc> = (0..4_u8)
                .map(|cpu| {
                    let d = Dpc::new(churn_dpc, context);
                    assert_eq!(d.target(cpu), 0);
                    d
                })
                .collect();
            for d in &dpcs {
                assert!(d.insert());
            }
            std::thread::sleep(Duration::from_millis(5));
            r.wait();
            // Run down: no holder is left and none can appear.
            assert_eq!(r.word(), 1);
            let failures_at_wait = slots[2].load(Ordering::Acquire);
            let successes_at_wait = slots[1].load(Ordering::Acquire);
            for t in threads {
                support::join(t);
            }
            support::flush_dpcs();
            assert_eq!(
                slots[1].load(Ordering::Acquire),
                successes_at_wait,
                "no acquire succeeded after the wait returned"
            );
            assert_eq!(r.word(), 1, "every release balanced its acquire");
            let ok = slots[1].load(Ordering::Acquire);
            let failed = slots[2].load(Ordering::Acquire);
            assert!(failed >= failures_at_wait);
            assert_eq!(
                ok + failed,
                3 * 2_000 + 4 * 200,
                "every attempt is counted once"
            );
            r.reinit();
            assert!(r.acquire(), "reinitialised after contention");
            r.release();
            (ok, failed)
        })
        .expect("no bug check");
    assert!(ok + failed > 0);
}

#[test]
fn cache_aware_references_follow_the_same_state_machine() {
    let m = machine(2);
    m.run(|| {
        assert_eq!(cache_aware_size(), 128);
        let a = CacheAware::allocate(TAG).expect("allocated");
        let b = CacheAware::in_storage(128);
        for r in [a, b] {
            assert!(r.acquire());
            assert!(r.acquire_ex(2));
            r.release_ex(2);
            r.release();
            r.wait();
            assert!(!r.acquire());
            r.completed();
            r.reinit();
            assert!(r.acquire());
            r.release();
        }
        a.free();
    })
    .expect("no bug check");
    let stats = m.pool_stats();
    let tag = stats.get(&TAG).expect("charged to the driver's tag");
    assert_eq!(
        (tag.allocations, tag.frees, tag.outstanding_bytes),
        (1, 1, 0)
    );
}

#[test]
fn releasing_more_than_acquired_is_0xc4_0x1007() {
    let m = machine(2);
    let r = RunRef::uninitialized();
    let b = expect_bugcheck(&m, move || {
        r.init();
        assert!(r.acquire());
        r.release_ex(2);
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params, [verifier::RELEASED_NOT_ACQUIRED, r.addr(), 1, 2]);
}

#[test]
fn release_without_acquire_is_0xc4_0x1007() {
    let m = machine(2);
    let r = RunRef::uninitialized();
    let b = expect_bugcheck(&m, move || {
        r.init();
        r.release();
    });
    assert_eq!(b.params, [verifier::RELEASED_NOT_ACQUIRED, r.addr(), 0, 1]);
}

#[test]
fn rundown_completed_before_any_wait_is_0xc4_0xe5() {
    let m = machine(2);
    let r = RunRef::uninitialized();
    let b = expect_bugcheck(&m, move || {
        r.init();
        r.completed();
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 0, r.addr(), 0]);
}

#[test]
fn reinitialize_while_the_wait_is_in_progress_is_0xc4_0xe5() {
    let m = machine(4);
    let r = RunRef::uninitialized();
    let b = expect_bugcheck(&m, move || {
        r.init();
        assert!(r.acquire());
        let _w = support::spawn(waiter, r.context());
        while r.word() & 1 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        r.reinit();
    });
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 0, r.addr(), 3]);
}

#[test]
fn waiting_while_holding_protection_is_a_self_deadlock_0xc4_0x1000() {
    let m = machine(2);
    let r = RunRef::uninitialized();
    let b = expect_bugcheck(&m, move || {
        r.init();
        assert!(r.acquire_ex(2));
        r.wait();
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params, [verifier::SELF_DEADLOCK, r.addr(), 2, 2]);
}

#[test]
fn acquire_above_dispatch_level_is_0xc4_0xe5() {
    let m = machine(2);
    let r = RunRef::uninitialized();
    let b = expect_bugcheck(&m, move || {
        r.init();
        raise(3);
        r.acquire()
    });
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 3, r.addr(), 2]);
}

#[test]
fn wait_at_dispatch_level_is_0xc4_0xe5() {
    let m = machine(2);
    let r = RunRef::uninitialized();
    let b = expect_bugcheck(&m, move || {
        r.init();
        raise(2);
        r.wait();
    });
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 2, r.addr(), 1]);
}

#[test]
fn initialize_at_dispatch_level_is_0xc4_0xe5() {
    let m = machine(2);
    let r = RunRef::uninitialized();
    let b = expect_bugcheck(&m, move || {
        raise(2);
        r.init();
    });
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 2, r.addr(), 1]);
}

#[test]
fn cache_aware_storage_smaller_than_its_size_is_0xc4_0xe1() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || CacheAware::in_storage(64).addr());
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params[0], verifier::INVALID_SYNC_OBJECT_ADDRESS);
    assert_ne!(b.params[1], 0);
    assert_eq!(&b.params[2..], &[64, 128]);
}

#[test]
fn freeing_a_cache_aware_reference_twice_is_0xc2() {
    let m = machine(2);
    let slot = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&slot);
    let b = expect_bugcheck(&m, move || {
        let r = CacheAware::allocate(TAG).expect("allocated");
        seen.store(r.addr(), Ordering::Release);
        r.free();
        r.free();
    });
    assert_eq!(b.code, code::BAD_POOL_CALLER);
    assert_eq!(b.params, [0x7, 0, slot.load(Ordering::Acquire), 0]);
}
