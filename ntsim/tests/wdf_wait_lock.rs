//! KMDF wait locks: the critical region the acquire enters, timeouts, IRQL rules, the framework
//! verifier's verdicts, the end-of-context checks that catch a leaked wait lock or fast mutex,
//! and a stress run.

mod support;

use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use ntsim::{
    bugcheck::{code, verifier, wdf},
    wdk_sys::{
        call_unsafe_wdf_function_binding, DRIVER_OBJECT, KDPC, NTSTATUS, PCUNICODE_STRING, PVOID,
        PWDFDEVICE_INIT, STATUS_SUCCESS, STATUS_TIMEOUT, WDFDRIVER, WDF_DRIVER_CONFIG,
        WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES,
    },
    HostError, IoError,
};
use support::{
    apcs_disabled,
    blocking::{run_parallel, wait_until, Counter, Job, Mutex, WaitLock},
    expect_bugcheck, flush_dpcs, irql, lower, machine, raise, Dpc,
};

/// 10 ms, relative.
const TEN_MS: i64 = -100_000;
/// 30 s, relative: long enough that only a release ends the wait.
const THIRTY_S: i64 = -300_000_000;

#[test]
fn the_holder_is_in_a_critical_region_at_passive_level() {
    let m = machine(2);
    let seen = m
        .run(|| {
            let lock = WaitLock::create();
            let status = lock.acquire(None);
            let held = (irql(), apcs_disabled());
            lock.release();
            let after = apcs_disabled();
            let tried = lock.acquire(Some(0));
            lock.release();
            let timed = lock.acquire(Some(TEN_MS));
            lock.release();
            lock.delete();
            (status, held, after, tried, timed)
        })
        .expect("no bug check");
    assert_eq!(
        seen,
        (
            STATUS_SUCCESS,
            (0, true),
            false,
            STATUS_SUCCESS,
            STATUS_SUCCESS
        )
    );
}

#[test]
fn a_busy_lock_times_out_and_leaves_the_critical_region_again() {
    let m = machine(4);
    let handle = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (h1, d1, h2, d2) = (handle.clone(), done.clone(), handle, done);
    let jobs: Vec<Job<(i32, i32, bool)>> = vec![
        Box::new(move || {
            let lock = WaitLock::create();
            assert_eq!(lock.acquire(None), STATUS_SUCCESS);
            h1.store(lock.raw(), Ordering::Release);
            wait_until("the other thread timed out", || d1.load(Ordering::Acquire));
            lock.release();
            (0, 0, false)
        }),
        Box::new(move || {
            wait_until("the lock is held", || h2.load(Ordering::Acquire) != 0);
            let lock = WaitLock::from_addr(h2.load(Ordering::Acquire));
            let tried = lock.acquire(Some(0));
            let timed = lock.acquire(Some(TEN_MS));
            let in_region = apcs_disabled();
            d2.store(true, Ordering::Release);
            (tried, timed, in_region)
        }),
    ];
    let results = run_parallel(&m, jobs);
    assert_eq!(
        results[1].clone().expect("no bug check"),
        (STATUS_TIMEOUT, STATUS_TIMEOUT, false)
    );
    results[0].clone().expect("no bug check");
}

#[test]
fn a_waiter_sleeps_until_the_release_and_then_gets_it() {
    let m = machine(8);
    let handle = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicBool::new(false));
    let (h1, r1) = (handle.clone(), released.clone());
    let mut jobs: Vec<Job<(i32, bool)>> = vec![Box::new(move || {
        let lock = WaitLock::create();
        assert_eq!(lock.acquire(None), STATUS_SUCCESS);
        h1.store(lock.raw(), Ordering::Release);
        wait_until("both waiters sleep", || lock.sleepers() == 2);
        r1.store(true, Ordering::Release);
        lock.release();
        (STATUS_SUCCESS, true)
    })];
    for timeout in [None, Some(THIRTY_S)] {
        let (h, r) = (handle.clone(), released.clone());
        jobs.push(Box::new(move || {
            wait_until("the lock is held", || h.load(Ordering::Acquire) != 0);
            let lock = WaitLock::from_addr(h.load(Ordering::Acquire));
            let status = lock.acquire(timeout);
            let after = r.load(Ordering::Acquire);
            lock.release();
            (status, after)
        }));
    }
    for result in run_parallel(&m, jobs) {
        assert_eq!(result.expect("no bug check"), (STATUS_SUCCESS, true));
    }
}

#[test]
fn a_zero_timeout_acquire_works_at_dispatch_level() {
    let m = machine(2);
    let status = m
        .run(|| {
            let lock = WaitLock::create();
            raise(2);
            let status = lock.acquire(Some(0));
            lock.release();
            lower(0);
            status
        })
        .expect("no bug check");
    assert_eq!(status, STATUS_SUCCESS);
}

#[test]
fn a_blocking_acquire_above_passive_level_is_0xc4_0xe5() {
    for (level, timeout) in [(1, None), (1, Some(TEN_MS)), (2, None)] {
        let m = machine(2);
        let handle = Arc::new(AtomicUsize::new(0));
        let seen = handle.clone();
        let b = expect_bugcheck(&m, move || {
            let lock = WaitLock::create();
            seen.store(lock.raw(), Ordering::Relaxed);
            raise(level);
            lock.acquire(timeout)
        });
        assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
        assert_eq!(
            b.params,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(level),
                handle.load(Ordering::Relaxed) as u64,
                0
            ],
            "IRQL {level}, timeout {timeout:?}"
        );
    }
}

#[test]
fn a_zero_timeout_acquire_above_dispatch_level_is_0xc4_0xe5() {
    let m = machine(2);
    let handle = Arc::new(AtomicUsize::new(0));
    let seen = handle.clone();
    let b = expect_bugcheck(&m, move || {
        let lock = WaitLock::create();
        seen.store(lock.raw(), Ordering::Relaxed);
        raise(3);
        lock.acquire(Some(0))
    });
    assert_eq!(
        b.params,
        [
            verifier::API_AT_WRONG_IRQL,
            3,
            handle.load(Ordering::Relaxed) as u64,
            0
        ]
    );
}

#[test]
fn recursive_acquire_without_timeout_is_0x10d_0x2() {
    let m = machine(2);
    let handle = Arc::new(AtomicUsize::new(0));
    let seen = handle.clone();
    let b = expect_bugcheck(&m, move || {
        let lock = WaitLock::create();
        seen.store(lock.raw(), Ordering::Relaxed);
        assert_eq!(lock.acquire(None), STATUS_SUCCESS);
        lock.acquire(None)
    });
    assert_eq!(b.code, code::WDF_VIOLATION);
    assert_eq!(
        b.params,
        [
            wdf::RECURSIVE_LOCK,
            handle.load(Ordering::Relaxed) as u64,
            0,
            0
        ]
    );
}

#[test]
fn a_timed_acquire_by_the_owner_just_times_out() {
    // KMDF asserts only for the NULL-timeout case; with a timeout the owner's own wait fails.
    let m = machine(2);
    let seen = m
        .run(|| {
            let lock = WaitLock::create();
            assert_eq!(lock.acquire(None), STATUS_SUCCESS);
            let statuses = (lock.acquire(Some(0)), lock.acquire(Some(TEN_MS)));
            let still_one_region = apcs_disabled();
            lock.release();
            (statuses, still_one_region, apcs_disabled())
        })
        .expect("no bug check");
    assert_eq!(seen, ((STATUS_TIMEOUT, STATUS_TIMEOUT), true, false));
}

#[test]
fn release_by_a_thread_that_does_not_hold_it_is_0x10d_0xb() {
    let m = machine(2);
    let handle = Arc::new(AtomicUsize::new(0));
    let seen = handle.clone();
    let b = expect_bugcheck(&m, move || {
        let lock = WaitLock::create();
        seen.store(lock.raw(), Ordering::Relaxed);
        lock.release();
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

    let m = machine(4);
    let handle = Arc::new(AtomicUsize::new(0));
    let (h1, h2) = (handle.clone(), handle.clone());
    let jobs: Vec<Job<()>> = vec![
        Box::new(move || {
            let lock = WaitLock::create();
            assert_eq!(lock.acquire(None), STATUS_SUCCESS);
            h1.store(lock.raw(), Ordering::Release);
            wait_until("the machine stops", || false);
        }),
        Box::new(move || {
            wait_until("the lock is held", || h2.load(Ordering::Acquire) != 0);
            WaitLock::from_addr(h2.load(Ordering::Acquire)).release();
        }),
    ];
    let results = run_parallel(&m, jobs);
    let Err(HostError::BugCheck(b)) = results[1].clone() else {
        panic!("expected a bug check");
    };
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
fn a_thread_ending_with_a_wait_lock_held_is_0x20() {
    // The lock is an event to the kernel: what the exit check finds is the critical region
    // its acquire entered (CombinedApcDisable 0xFFFF).
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        let lock = WaitLock::create();
        lock.acquire(None)
    });
    assert_eq!(b.code, code::KERNEL_APC_PENDING_DURING_EXIT);
    assert_eq!(b.params, [0, 0xFFFF, 0, 1]);
}

unsafe extern "C" fn dpc_keeps_wait_lock(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // Legal at DISPATCH_LEVEL with a zero timeout; the acquire's critical region stays entered.
    assert_eq!(
        WaitLock::from_addr(context as usize).acquire(Some(0)),
        STATUS_SUCCESS
    );
}

#[test]
fn a_dpc_returning_with_a_wait_lock_held_is_0xc7() {
    // The DPC changed the APC-disable count (ddi.md 13.5): P1 = 4, P3/P4 before/after.
    let m = machine(4);
    let b = expect_bugcheck(&m, || {
        let lock = WaitLock::create();
        let dpc = Dpc::new(dpc_keeps_wait_lock, lock.raw());
        assert!(dpc.insert());
        flush_dpcs();
    });
    assert_eq!(b.code, code::TIMER_OR_DPC_INVALID);
    assert_eq!(
        b.params,
        [4, dpc_keeps_wait_lock as *const () as u64, 0, 0xFFFF]
    );
}

static LEAKED_MUTEX: AtomicUsize = AtomicUsize::new(0);

fn create_driver(driver: *mut DRIVER_OBJECT, path: PCUNICODE_STRING, add: AddDevice) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        Size: u32::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or(0),
        EvtDriverDeviceAdd: Some(add),
        ..WDF_DRIVER_CONFIG::default()
    };
    // SAFETY: the loader's driver object and path; a sized config; no attributes or handle out.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver,
            path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            WDF_NO_HANDLE.cast::<WDFDRIVER>()
        )
    }
}

type AddDevice = extern "C" fn(WDFDRIVER, PWDFDEVICE_INIT) -> NTSTATUS;

extern "C" fn add_leaking_a_wait_lock(_driver: WDFDRIVER, _init: PWDFDEVICE_INIT) -> NTSTATUS {
    let lock = WaitLock::create();
    lock.acquire(None)
}

extern "C" fn add_leaking_a_fast_mutex(_driver: WDFDRIVER, _init: PWDFDEVICE_INIT) -> NTSTATUS {
    let mx = Mutex::new();
    LEAKED_MUTEX.store(mx.raw(), Ordering::Relaxed);
    mx.acquire();
    0
}

unsafe extern "system" fn entry_wait_lock(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    create_driver(driver, path, add_leaking_a_wait_lock)
}

unsafe extern "system" fn entry_fast_mutex(
    driver: *mut DRIVER_OBJECT,
    path: PCUNICODE_STRING,
) -> NTSTATUS {
    create_driver(driver, path, add_leaking_a_fast_mutex)
}

#[test]
fn a_kmdf_callback_returning_with_a_wait_lock_held_is_0x10d_0xf() {
    let m = machine(2);
    match m.load_driver("waitleak", entry_wait_lock) {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::WDF_VIOLATION);
            assert_eq!(
                b.params,
                [
                    wdf::CALLBACK_CRITICAL_REGION,
                    add_leaking_a_wait_lock as *const () as u64,
                    0,
                    0
                ]
            );
        }
        other => panic!("expected 0x10D/0xF, got {other:?}"),
    }
}

#[test]
fn a_kmdf_callback_returning_with_a_fast_mutex_held_is_0x10d_0xe() {
    let m = machine(2);
    match m.load_driver("mutexleak", entry_fast_mutex) {
        Err(IoError::Host(HostError::BugCheck(b))) => {
            assert_eq!(b.code, code::WDF_VIOLATION);
            // Entered at PASSIVE_LEVEL, returned at APC_LEVEL.
            assert_eq!(
                b.params,
                [
                    wdf::CALLBACK_IRQL_CHANGED,
                    0,
                    1,
                    add_leaking_a_fast_mutex as *const () as u64
                ]
            );
            assert_ne!(LEAKED_MUTEX.load(Ordering::Relaxed), 0);
        }
        other => panic!("expected 0x10D/0xE, got {other:?}"),
    }
}

#[test]
fn stress_eight_threads_one_million_acquisitions_exact_count() {
    const THREADS: u64 = 8;
    const EACH: u64 = 125_000;
    let m = machine(8);
    let lock = m.run(WaitLock::create).expect("created");
    let counter = Counter::default();
    let jobs: Vec<Job<()>> = (0..THREADS)
        .map(|_| {
            let counter = counter.clone();
            Box::new(move || {
                for i in 0..EACH {
                    // Every fourth acquisition first tries with a zero timeout.
                    if i % 4 != 0 || lock.acquire(Some(0)) == STATUS_TIMEOUT {
                        assert_eq!(lock.acquire(None), STATUS_SUCCESS);
                    }
                    counter.bump();
                    lock.release();
                }
                assert!(!apcs_disabled(), "every acquire's critical region was left");
            }) as Job<()>
        })
        .collect();
    for result in run_parallel(&m, jobs) {
        result.expect("no bug check, no hang");
    }
    assert_eq!(counter.get(), THREADS * EACH);
    let idle = m.run(move || lock.sleepers()).expect("no bug check");
    assert_eq!(idle, 0);
}
