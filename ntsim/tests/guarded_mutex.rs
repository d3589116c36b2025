//! Guarded mutexes with the Windows 8 and later model (ddi.md sections 5, 11.2, 12, 13): the
//! holder at `APC_LEVEL`, the Unsafe pair's guarded-region rule, each verifier rule with its code
//! and parameters, and a stress run.

mod support;

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc,
};

use ntsim::bugcheck::{code, verifier};
use support::{
    all_apcs_disabled, apcs_disabled,
    blocking::{current_thread, run_parallel, wait_until, Counter, Job, Mutex},
    enter_critical_region, enter_guarded_region, expect_bugcheck, irql, leave_guarded_region,
    lower, machine, raise,
};

#[test]
fn initialisation_gives_the_fast_mutex_initial_state() {
    let m = machine(2);
    let mx = m.run(Mutex::guarded).expect("no bug check");
    let state = mx.snapshot();
    assert_eq!(state.Count, 1, "FM_LOCK_BIT set: free");
    assert!(state.Owner.is_null());
    assert_eq!(state.Contention, 0);
    let reference = Mutex::new().snapshot();
    // SAFETY: reading the `Lock` view of the header union: every bit pattern is a valid LONG.
    let header = unsafe { state.Event.Header.__bindgen_anon_1.Lock };
    // SAFETY: as above.
    let expected = unsafe { reference.Event.Header.__bindgen_anon_1.Lock };
    assert_eq!(header, expected, "a synchronization event, size 6");
    assert_eq!(state.Event.Header.SignalState, 0, "not signaled");
}

#[test]
fn holder_runs_at_apc_level_with_only_the_all_apcs_query_true() {
    let m = machine(2);
    let mx = Mutex::new();
    let seen = m
        .run(move || {
            let mx2 = Mutex::guarded();
            mx.acquire_guarded();
            let held = (irql(), apcs_disabled(), all_apcs_disabled());
            mx.release_guarded();
            let after = irql();
            assert!(mx2.try_acquire_guarded());
            let tried = irql();
            mx2.release_guarded();
            (held, after, tried, irql())
        })
        .expect("no bug check");
    // ddi.md 11.2 (Windows 8+): IRQL 1, KeAreApcsDisabled FALSE, KeAreAllApcsDisabled TRUE.
    assert_eq!(seen, ((1, false, true), 0, 1, 0));
}

#[test]
fn unsafe_pair_keeps_the_callers_guarded_region_or_apc_level() {
    let m = machine(2);
    let mx = Mutex::new();
    let seen = m
        .run(move || {
            enter_guarded_region();
            mx.acquire_guarded_unsafe();
            let in_region = (irql(), apcs_disabled(), all_apcs_disabled());
            mx.release_guarded_unsafe();
            leave_guarded_region();
            raise(1);
            mx.acquire_guarded_unsafe();
            let at_apc = irql();
            mx.release_guarded_unsafe();
            let after = irql();
            lower(0);
            (in_region, at_apc, after)
        })
        .expect("no bug check");
    assert_eq!(seen, ((0, true, true), 1, 1));
}

#[test]
fn a_contended_acquire_sleeps_until_release_and_try_fails_meanwhile() {
    let m = machine(8);
    let mx = Mutex::new();
    let held = Arc::new(AtomicBool::new(false));
    let released = Arc::new(AtomicBool::new(false));
    let (h1, r1, h2, r2, h3, r3) = (
        held.clone(),
        released.clone(),
        held.clone(),
        released.clone(),
        held,
        released,
    );
    let jobs: Vec<Job<(bool, bool)>> = vec![
        Box::new(move || {
            mx.acquire_guarded();
            h1.store(true, Ordering::Release);
            wait_until("the waiter sleeps", || mx.sleepers() == 1);
            r1.store(true, Ordering::Release);
            mx.release_guarded();
            (true, true)
        }),
        Box::new(move || {
            wait_until("the mutex is held", || h2.load(Ordering::Acquire));
            mx.acquire_guarded();
            let after_release = r2.load(Ordering::Acquire);
            mx.release_guarded();
            (after_release, true)
        }),
        Box::new(move || {
            wait_until("the mutex is held", || h3.load(Ordering::Acquire));
            // Busy while the first thread holds it: FALSE, nothing changed.
            let got = mx.try_acquire_guarded();
            // A failed try changes nothing. (One that succeeded, because the holders were
            // already gone, holds the mutex at its own IRQL: not what this checks.)
            let unchanged = got || irql() == 0;
            if got {
                mx.release_guarded();
            }
            (!got || r3.load(Ordering::Acquire), unchanged)
        }),
    ];
    for result in run_parallel(&m, jobs) {
        assert_eq!(result.expect("no bug check"), (true, true));
    }
}

#[test]
fn every_guarded_mutex_routine_above_apc_level_breaks_rule_irql_ke_apc_lte1() {
    type Routine = (&'static str, fn(Mutex));
    let routines: [Routine; 6] = [
        ("KeInitializeGuardedMutex", Mutex::reinitialize_guarded),
        ("KeAcquireGuardedMutex", Mutex::acquire_guarded),
        ("KeTryToAcquireGuardedMutex", |mx| {
            mx.try_acquire_guarded();
        }),
        ("KeReleaseGuardedMutex", Mutex::release_guarded),
        ("KeAcquireGuardedMutexUnsafe", Mutex::acquire_guarded_unsafe),
        ("KeReleaseGuardedMutexUnsafe", Mutex::release_guarded_unsafe),
    ];
    for (name, routine) in routines {
        let m = machine(2);
        let mx = Mutex::new();
        let b = expect_bugcheck(&m, move || {
            raise(2);
            routine(mx);
        });
        assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION, "{name}");
        assert_eq!(
            b.params,
            [verifier::RULE_IRQL_KE_APC_LTE1, 2, mx.addr(), 0],
            "{name}"
        );
        assert_eq!(b.detected_in, name);
    }
}

#[test]
fn unsafe_acquire_in_a_critical_region_only_is_0xc4_0x39() {
    // Unlike ExAcquireFastMutexUnsafe, a critical region is not enough (ddi.md 5 rule 2).
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        mx.acquire_guarded_unsafe();
    });
    assert_eq!(
        b.params,
        [
            verifier::UNSAFE_MUTEX_ACQUIRE_APCS_ENABLED,
            0,
            0xFFFF,
            mx.addr()
        ]
    );
}

#[test]
fn unsafe_release_outside_a_guarded_region_is_0xc4_0x3a() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        enter_guarded_region();
        mx.acquire_guarded_unsafe();
        enter_critical_region();
        leave_guarded_region();
        mx.release_guarded_unsafe();
    });
    assert_eq!(
        b.params,
        [
            verifier::UNSAFE_MUTEX_RELEASE_APCS_ENABLED,
            0,
            0xFFFF,
            mx.addr()
        ]
    );
}

#[test]
fn release_after_lowering_below_apc_level_is_0xc4_0x34() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        mx.acquire_guarded();
        lower(0);
        mx.release_guarded();
    });
    assert_eq!(
        b.params,
        [verifier::FAST_MUTEX_RELEASE_IRQL, 0, 0, mx.addr()]
    );
}

#[test]
fn recursive_acquire_is_0xbf() {
    let m = machine(2);
    let mx = Mutex::new();
    let me = Arc::new(AtomicU64::new(0));
    let seen = me.clone();
    let b = expect_bugcheck(&m, move || {
        seen.store(current_thread(), Ordering::Relaxed);
        mx.acquire_guarded();
        mx.acquire_guarded();
    });
    assert_eq!(b.code, code::MUTEX_ALREADY_OWNED);
    assert_eq!(b.params, [mx.addr(), me.load(Ordering::Relaxed), 0, 0]);
}

#[test]
fn release_not_held_is_0xc4_0x1007_and_by_another_thread_0xc4_0x1004() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        raise(1);
        mx.release_guarded();
    });
    assert_eq!(b.params, [verifier::RELEASED_NOT_ACQUIRED, mx.addr(), 0, 0]);

    let m = machine(4);
    let mx = Mutex::new();
    let owner = Arc::new(AtomicU64::new(0));
    let releaser = Arc::new(AtomicU64::new(0));
    let (o1, o2, r2) = (owner.clone(), owner.clone(), releaser.clone());
    let jobs: Vec<Job<()>> = vec![
        Box::new(move || {
            mx.acquire_guarded();
            o1.store(current_thread(), Ordering::Release);
            wait_until("the machine stops", || false);
        }),
        Box::new(move || {
            wait_until("the mutex is held", || o2.load(Ordering::Acquire) != 0);
            r2.store(current_thread(), Ordering::Relaxed);
            raise(1);
            mx.release_guarded();
        }),
    ];
    let results = run_parallel(&m, jobs);
    let Err(ntsim::HostError::BugCheck(b)) = results[1].clone() else {
        panic!("expected a bug check");
    };
    assert_eq!(
        b.params,
        [
            verifier::RELEASED_BY_OTHER_THREAD,
            mx.addr(),
            owner.load(Ordering::Relaxed),
            releaser.load(Ordering::Relaxed)
        ]
    );
}

#[test]
fn releasing_with_the_wrong_routine_is_0xc4_0x1009() {
    // Safe acquire, Unsafe release (IRQL is APC_LEVEL, so the APC check passes).
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        mx.acquire_guarded();
        mx.release_guarded_unsafe();
    });
    assert_eq!(b.params, [verifier::RELEASE_API_MISMATCH, mx.addr(), 0, 0]);
    // A guarded acquire released as a fast mutex.
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        mx.acquire_guarded();
        mx.release();
    });
    assert_eq!(b.params, [verifier::RELEASE_API_MISMATCH, mx.addr(), 0, 0]);
}

#[test]
fn reinitialising_a_held_mutex_is_0xc4_0x1005() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        mx.acquire_guarded();
        mx.reinitialize_guarded();
    });
    assert_eq!(
        b.params,
        [verifier::LOCK_INITIALIZED_TWICE, mx.addr(), 0, 0]
    );
}

#[test]
fn a_thread_ending_with_the_mutex_held_is_0xc4_0x100a() {
    let m = machine(2);
    let mx = Mutex::new();
    let me = Arc::new(AtomicU64::new(0));
    let seen = me.clone();
    let b = expect_bugcheck(&m, move || {
        seen.store(current_thread(), Ordering::Relaxed);
        mx.acquire_guarded();
    });
    assert_eq!(
        b.params,
        [
            verifier::THREAD_TERMINATED_OWNING_LOCK,
            mx.addr(),
            me.load(Ordering::Relaxed),
            0
        ]
    );
}

#[test]
fn guarded_and_fast_mutexes_in_opposite_orders_are_0xc4_0x1001() {
    let m = machine(2);
    let (guarded, fast) = (Mutex::new(), Mutex::new());
    m.run(move || {
        guarded.acquire_guarded();
        fast.acquire();
        fast.release();
        guarded.release_guarded();
    })
    .expect("one order is fine");
    let b = expect_bugcheck(&m, move || {
        fast.acquire();
        guarded.acquire_guarded();
    });
    assert_eq!(
        b.params,
        [
            verifier::LOCK_HIERARCHY_VIOLATION,
            guarded.addr(),
            fast.addr(),
            0
        ]
    );
}

#[test]
fn stress_eight_threads_one_million_acquisitions_exact_count() {
    const THREADS: u64 = 8;
    const EACH: u64 = 125_000;
    let m = machine(8);
    let mx = Mutex::new();
    let counter = Counter::default();
    let jobs: Vec<Job<()>> = (0..THREADS)
        .map(|_| {
            let counter = counter.clone();
            Box::new(move || {
                for i in 0..EACH {
                    match i % 4 {
                        0 => {
                            if !mx.try_acquire_guarded() {
                                mx.acquire_guarded();
                            }
                            counter.bump();
                            mx.release_guarded();
                        }
                        1 => {
                            enter_guarded_region();
                            mx.acquire_guarded_unsafe();
                            counter.bump();
                            mx.release_guarded_unsafe();
                            leave_guarded_region();
                        }
                        _ => {
                            mx.acquire_guarded();
                            counter.bump();
                            mx.release_guarded();
                        }
                    }
                }
            }) as Job<()>
        })
        .collect();
    for result in run_parallel(&m, jobs) {
        result.expect("no bug check, no hang");
    }
    assert_eq!(counter.get(), THREADS * EACH);
    let state = mx.snapshot();
    assert_eq!((state.Count, state.Owner), (1, std::ptr::null_mut()));
    // Windows counts contended acquires in Contention: the run really made threads sleep.
    assert!(state.Contention > 0, "no acquire ever waited");
}
