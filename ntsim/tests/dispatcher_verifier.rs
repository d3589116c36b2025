//! Each misuse of dispatcher objects and waits, provoked, with the bug check code and parameters
//! ddi.md sections 8, 12 and 13 (and errata 2, 4, 8, 14) give it.

mod support;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use ntsim::{
    bugcheck::{code, verifier},
    wdk_sys::{ntddk, KDPC, PVOID},
};
use support::{
    dispatcher::{
        current_thread, relative_ms, wait_multiple, wait_multiple_count, wait_single, Event,
        KMutex, Semaphore, Timer, Waitable, MUTANT_NOT_OWNED, SEMAPHORE_LIMIT_EXCEEDED, WAIT_0,
    },
    expect_bugcheck, machine, raise, Dpc,
};

#[test]
fn blocking_wait_at_dispatch_with_a_timeout_is_0xc4_0x3b() {
    let m = machine(2);
    let event = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        event.init(0, false);
        raise(2);
        event.wait(Some(relative_ms(10)))
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params[..3],
        [verifier::WAIT_AT_DISPATCH, 2, event.param()]
    );
    assert_ne!(b.params[3], 0, "P4: the timeout pointer");
}

#[test]
fn blocking_wait_at_dispatch_without_a_timeout_is_0xc4_0x121() {
    let m = machine(2);
    let event = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        event.init(0, true);
        raise(2);
        event.wait(None)
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [verifier::WAIT_AT_DISPATCH_INFINITE, 2, event.param(), 0],
        "even when the object is signaled"
    );
}

#[test]
fn any_wait_above_dispatch_is_0xc4_0x120() {
    let m = machine(2);
    let event = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        event.init(0, true);
        raise(3);
        event.wait(Some(0))
    });
    assert_eq!(
        b.params[..3],
        [verifier::WAIT_ABOVE_DISPATCH, 3, event.param()]
    );
}

#[test]
fn wait_for_multiple_at_dispatch_without_a_timeout_is_0xc4_0x121() {
    let m = machine(2);
    let a = Event::alloc();
    let b_ = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        a.init(0, true);
        b_.init(0, true);
        raise(2);
        wait_multiple(&[a.addr(), b_.addr()], true, None, false)
    });
    assert_eq!(b.params[0], verifier::WAIT_AT_DISPATCH_INFINITE);
    assert_eq!(b.params[1], 2);
}

unsafe extern "C" fn dpc_blocking_wait(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    let _ = wait_single(context as usize, Some(relative_ms(1)));
}

#[test]
fn blocking_wait_in_a_dpc_is_0xb8() {
    let m = machine(2);
    let event = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        event.init(0, false);
        let dpc = Dpc::new(dpc_blocking_wait, event.addr());
        assert!(dpc.insert());
        support::flush_dpcs();
    });
    assert_eq!(b.code, code::ATTEMPTED_SWITCH_FROM_DPC);
    assert_eq!(b.params, [0, event.param(), 0, 0]);
}

#[test]
fn releasing_a_mutex_nobody_owns_raises_mutant_not_owned_0x7e() {
    let m = machine(2);
    let mutex = KMutex::alloc();
    let b = expect_bugcheck(&m, move || mutex.init().release());
    assert_eq!(b.code, code::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
    assert_eq!(b.params, [MUTANT_NOT_OWNED, mutex.param(), 0, 0]);
}

#[test]
fn releasing_a_mutex_another_thread_owns_raises_mutant_not_owned_0x7e() {
    let m = machine(4);
    let mutex = KMutex::alloc();
    let b = expect_bugcheck(&m, move || {
        mutex.init();
        let owner = Event::notification(false);
        let _thread = support::dispatcher::spawn_fn(move || {
            assert_eq!(mutex.acquire(), WAIT_0);
            owner.set();
            // Keep it: wait for an event nobody sets.
            let _ = Event::notification(false).wait(None);
        });
        assert_eq!(owner.wait(None), WAIT_0);
        mutex.release()
    });
    assert_eq!(b.code, code::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
    assert_eq!(b.params, [MUTANT_NOT_OWNED, mutex.param(), 0, 0]);
    assert_eq!(
        mutex.state_in_memory(),
        0,
        "still owned by the other thread"
    );
}

unsafe extern "C" fn dpc_releases_mutex(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    KMutex::from_context(context as usize).release();
}

#[test]
fn releasing_a_thread_owned_mutex_inside_a_dpc_is_0x1e() {
    // Errata 8: the check is owner thread and DPC context; an exception escaping a DPC is 0x1E.
    let m = machine(2);
    let mutex = KMutex::alloc();
    let b = expect_bugcheck(&m, move || {
        assert_eq!(mutex.init().acquire(), WAIT_0);
        let dpc = Dpc::new(dpc_releases_mutex, mutex.addr());
        assert!(dpc.insert());
        support::flush_dpcs();
    });
    assert_eq!(b.code, code::KMODE_EXCEPTION_NOT_HANDLED);
    assert_eq!(b.params, [MUTANT_NOT_OWNED, mutex.param(), 0, 0]);
    assert!(b.context.starts_with("DPC runner"), "{}", b.context);
}

#[test]
fn a_semaphore_released_past_its_limit_raises_0x7e_and_keeps_its_count() {
    let m = machine(2);
    let semaphore = Semaphore::alloc();
    let b = expect_bugcheck(&m, move || semaphore.init(2, 3).release(2));
    assert_eq!(b.code, code::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
    assert_eq!(
        b.params,
        [SEMAPHORE_LIMIT_EXCEEDED, semaphore.param(), 0, 0]
    );
    assert_eq!(
        semaphore.state_in_memory(),
        2,
        "the count is left unchanged"
    );
}

unsafe extern "C" fn dpc_overflows_semaphore(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    Semaphore::from_context(context as usize).release(1);
}

#[test]
fn a_semaphore_limit_exception_escaping_a_dpc_is_0x1e() {
    let m = machine(2);
    let semaphore = Semaphore::alloc();
    let b = expect_bugcheck(&m, move || {
        semaphore.init(1, 1);
        let dpc = Dpc::new(dpc_overflows_semaphore, semaphore.addr());
        assert!(dpc.insert());
        support::flush_dpcs();
    });
    assert_eq!(b.code, code::KMODE_EXCEPTION_NOT_HANDLED);
    assert_eq!(
        b.params,
        [SEMAPHORE_LIMIT_EXCEEDED, semaphore.param(), 0, 0]
    );
    assert_eq!(semaphore.state_in_memory(), 1);
}

#[test]
fn a_system_thread_ending_while_owning_a_mutex_is_0x4000008a() {
    let m = machine(2);
    let mutex = KMutex::alloc();
    let thread = Arc::new(AtomicUsize::new(0));
    let me = Arc::clone(&thread);
    let b = expect_bugcheck(&m, move || {
        me.store(current_thread(), Ordering::Release);
        assert_eq!(mutex.init().acquire(), WAIT_0);
        assert_eq!(mutex.acquire(), WAIT_0);
        mutex.release();
    });
    assert_eq!(b.code, code::THREAD_TERMINATE_HELD_MUTEX);
    assert_eq!(
        b.params,
        [thread.load(Ordering::Acquire) as u64, mutex.param(), 0, 0],
        "P1 thread, P2 mutex (errata 4)"
    );
}

unsafe extern "C" fn dpc_takes_mutex_twice_releases_once(
    _: *mut KDPC,
    context: PVOID,
    _: PVOID,
    _: PVOID,
) {
    let mutex = KMutex::from_context(context as usize);
    assert_eq!(mutex.wait(Some(0)), WAIT_0);
    assert_eq!(mutex.wait(Some(0)), WAIT_0);
    assert_eq!(mutex.release(), -1);
}

#[test]
fn mutex_ownership_disables_normal_kernel_apcs_once_not_per_acquire() {
    // A DPC that polls a mutex twice and releases it once still owns it: the kernel APC
    // disable count is one lower (0xFFFF), not two (0xFFFE). 0xC7 P1 4 reports before/after.
    let m = machine(2);
    let mutex = KMutex::alloc();
    let b = expect_bugcheck(&m, move || {
        mutex.init();
        let dpc = Dpc::new(dpc_takes_mutex_twice_releases_once, mutex.addr());
        assert!(dpc.insert());
        support::flush_dpcs();
    });
    assert_eq!(b.code, code::TIMER_OR_DPC_INVALID);
    assert_eq!(b.params[0], 4);
    assert_eq!(b.params[2..], [0, 0xFFFF]);
}

#[test]
fn more_than_64_wait_objects_is_0xc() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        let events: Vec<usize> = (0..65).map(|_| Event::notification(true).addr()).collect();
        wait_multiple(&events, false, Some(0), true)
    });
    assert_eq!(b.code, code::MAXIMUM_WAIT_OBJECTS_EXCEEDED);
    assert_eq!(b.params[0], 65, "P1 Count (ntsim convention)");
    assert_ne!(b.params[1], 0, "P2 the wait-block array");
}

#[test]
fn more_than_3_wait_objects_without_wait_blocks_is_0xc() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        let events: Vec<usize> = (0..4).map(|_| Event::notification(true).addr()).collect();
        wait_multiple(&events, true, Some(0), false)
    });
    assert_eq!(b.code, code::MAXIMUM_WAIT_OBJECTS_EXCEEDED);
    assert_eq!(b.params, [4, 0, 0, 0]);
}

#[test]
fn three_wait_objects_need_no_wait_blocks() {
    let m = machine(2);
    let status = m
        .run(|| {
            let events: Vec<usize> = (0..3).map(|_| Event::notification(true).addr()).collect();
            wait_multiple_count(&events, 3, true, Some(0), false)
        })
        .unwrap();
    assert_eq!(status, WAIT_0);
}

#[test]
fn a_call_other_than_a_wait_after_wait_true_is_0xc4_0xe5() {
    let m = machine(2);
    let event = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        event.init(1, false).set_and_wait();
        event.state()
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 2, event.param(), 0]);
    assert_eq!(b.detected_in, "KeReadStateEvent");
}

#[test]
fn a_thread_ending_right_after_wait_true_is_0xc4_0xe5() {
    let m = machine(2);
    let mutex = KMutex::alloc();
    let b = expect_bugcheck(&m, move || {
        assert_eq!(mutex.init().acquire(), WAIT_0);
        // The release with Wait = TRUE must be followed by a wait; the thread ends instead.
        mutex.release_and_wait();
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 2, mutex.param(), 0]);
    assert_eq!(b.detected_in, "system thread exit");
}

#[test]
fn set_event_with_wait_true_at_dispatch_is_rule_irql_ke_set_event() {
    let m = machine(2);
    let event = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        event.init(0, false);
        raise(2);
        event.set_and_wait()
    });
    assert_eq!(
        b.params,
        [verifier::RULE_IRQL_KE_SET_EVENT, 2, event.param(), 1]
    );
}

#[test]
fn set_event_above_dispatch_is_0xc4_0x80() {
    let m = machine(2);
    let event = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        event.init(0, false);
        raise(4);
        event.set()
    });
    assert_eq!(
        b.params,
        [verifier::SET_EVENT_ABOVE_DISPATCH, 4, event.param(), 0]
    );
}

#[test]
fn release_semaphore_with_wait_true_above_passive_is_0xc4_0xe5() {
    // The docs require PASSIVE_LEVEL for Wait = TRUE (stricter than the header's APC_LEVEL).
    let m = machine(2);
    let semaphore = Semaphore::alloc();
    let b = expect_bugcheck(&m, move || {
        semaphore.init(0, 1);
        raise(1);
        semaphore.release_and_wait(1)
    });
    assert_eq!(
        b.params,
        [verifier::API_AT_WRONG_IRQL, 1, semaphore.param(), 1]
    );
    assert_eq!(semaphore.state_in_memory(), 0, "nothing released");
}

#[test]
fn reset_event_above_dispatch_is_rule_irql_ke_dispatch_lte() {
    let m = machine(2);
    let event = Event::alloc();
    let b = expect_bugcheck(&m, move || {
        event.init(0, true);
        raise(3);
        event.reset()
    });
    assert_eq!(
        b.params,
        [verifier::RULE_IRQL_KE_DISPATCH_LTE, 3, event.param(), 0]
    );
}

#[test]
fn initialize_semaphore_above_passive_is_0xc4_0xe5() {
    let m = machine(2);
    let b = expect_bugcheck(&m, move || {
        raise(1);
        Semaphore::new(0, 1)
    });
    assert_eq!(b.params[0], verifier::API_AT_WRONG_IRQL);
    assert_eq!(b.params[1], 1);
}

#[test]
fn waiting_on_something_that_is_not_a_dispatcher_object_is_an_access_violation() {
    let m = machine(2);
    let garbage = Box::into_raw(Box::new([0xEE_u8; 64])) as usize;
    let b = expect_bugcheck(&m, move || wait_single(garbage, Some(0)));
    assert_eq!(b.code, code::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
    assert_eq!(b.params, [0xC000_0005, garbage as u64, 0, 0]);
}

#[test]
fn freeing_pool_that_holds_an_armed_timer_is_0xc4_0x15() {
    let m = machine(2);
    let block = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&block);
    let b = expect_bugcheck(&m, move || {
        // SAFETY: a nonpaged allocation with a nonzero tag; freed below.
        let p = unsafe { ntddk::ExAllocatePool2(0x40, 256, u32::from_le_bytes(*b"Tmr ")) };
        assert!(!p.is_null());
        seen.store(p as usize, Ordering::Release);
        let timer = Timer::at_notification(p as usize + 64);
        assert!(!timer.set(-10_000_000_000, None), "armed for 1000 s");
        // SAFETY: `p` came from ExAllocatePool2 and is freed once.
        unsafe { ntddk::ExFreePool(p) };
    });
    let p = block.load(Ordering::Acquire) as u64;
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params, [verifier::FREED_ACTIVE_TIMER, p + 64, 0, p]);
}

unsafe extern "C" fn timer_dpc_keeps_mutex(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    assert_eq!(KMutex::from_context(context as usize).wait(Some(0)), WAIT_0);
}

#[test]
fn a_timer_dpc_changing_the_apc_disable_count_is_0xc7_with_p1_5() {
    let m = machine(2);
    let mutex = KMutex::alloc();
    let b = expect_bugcheck(&m, move || {
        mutex.init();
        let timer = Timer::new();
        let dpc = Dpc::new(timer_dpc_keeps_mutex, mutex.addr());
        assert!(!timer.set(-10_000, Some(dpc)));
        assert_eq!(timer.wait(None), WAIT_0);
        support::dispatcher::sleep_ms(10_000);
    });
    assert_eq!(b.code, code::TIMER_OR_DPC_INVALID);
    assert_eq!(b.params[0], 5, "P1 5: a timer DPC");
    assert_eq!(b.params[2..], [0, 0xFFFF]);
}
