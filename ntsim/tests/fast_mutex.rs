//! Fast mutexes (ddi.md sections 4, 11, 12, 13): what a holder sees, exclusion and blocking,
//! each Driver Verifier rule with its code and parameters, and a stress run.

mod support;

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc,
};

use ntsim::{
    bugcheck::{code, verifier},
    HostError, Machine, MachineConfig,
};
use support::{
    all_apcs_disabled, apcs_disabled,
    blocking::{current_thread, run_parallel, wait_until, Counter, Job, Mutex},
    enter_critical_region, enter_guarded_region, expect_bugcheck, irql, leave_critical_region,
    leave_guarded_region, lower, machine, raise,
};

#[test]
fn holder_runs_at_apc_level_and_release_restores_the_saved_irql() {
    let m = machine(2);
    let mx = Mutex::new();
    let seen = m
        .run(move || {
            mx.acquire();
            let held = (irql(), apcs_disabled(), all_apcs_disabled());
            let owner = mx.snapshot().Owner as u64 == current_thread();
            mx.release();
            let after = irql();
            // From APC_LEVEL: saved and restored as APC_LEVEL.
            raise(1);
            mx.acquire();
            let nested = irql();
            mx.release();
            let after_apc = irql();
            lower(0);
            (held, owner, after, nested, after_apc)
        })
        .expect("no bug check");
    // ddi.md 11.2: IRQL 1; the counter-based query FALSE; "all APCs" TRUE.
    assert_eq!(seen, ((1, false, true), true, 0, 1, 1));
    let state = mx.snapshot();
    assert_eq!(
        (state.Count, state.Owner),
        (1, std::ptr::null_mut()),
        "free again"
    );
}

#[test]
fn unsafe_variants_leave_irql_and_apc_state_as_the_caller_set_them() {
    let m = machine(2);
    let mx = Mutex::new();
    let seen = m
        .run(move || {
            enter_critical_region();
            mx.acquire_unsafe();
            let in_critical = (irql(), apcs_disabled(), all_apcs_disabled());
            mx.release_unsafe();
            leave_critical_region();
            enter_guarded_region();
            mx.acquire_unsafe();
            let in_guarded = (irql(), apcs_disabled(), all_apcs_disabled());
            mx.release_unsafe();
            leave_guarded_region();
            raise(1);
            mx.acquire_unsafe();
            let at_apc = irql();
            mx.release_unsafe();
            let after = irql();
            lower(0);
            (in_critical, in_guarded, at_apc, after)
        })
        .expect("no bug check");
    assert_eq!(seen, ((0, true, false), (0, true, true), 1, 1));
}

#[test]
fn try_acquire_fails_at_once_while_held_and_changes_nothing() {
    let m = machine(4);
    let mx = Mutex::new();
    let held = Arc::new(AtomicBool::new(false));
    let tried = Arc::new(AtomicBool::new(false));
    let (h1, t1, h2, t2) = (held.clone(), tried.clone(), held, tried);
    let jobs: Vec<Job<(bool, u8, bool, u8)>> = vec![
        Box::new(move || {
            mx.acquire();
            // The owner's own try fails too (the mutex is busy), as on Windows.
            let own_try = mx.try_acquire();
            h1.store(true, Ordering::Release);
            wait_until("the other thread tried", || t1.load(Ordering::Acquire));
            mx.release();
            (own_try, irql(), false, 0)
        }),
        Box::new(move || {
            wait_until("the mutex is held", || h2.load(Ordering::Acquire));
            let busy = mx.try_acquire();
            let level = irql();
            t2.store(true, Ordering::Release);
            wait_until("the mutex is free", || mx.try_acquire());
            let won_level = irql();
            mx.release();
            (busy, level, true, won_level)
        }),
    ];
    let results: Vec<_> = run_parallel(&m, jobs)
        .into_iter()
        .map(|r| r.expect("no bug check"))
        .collect();
    assert_eq!(results[0], (false, 0, false, 0));
    assert_eq!(results[1], (false, 0, true, 1));
}

#[test]
fn a_contended_acquire_sleeps_until_the_owner_releases() {
    let m = machine(8);
    let mx = Mutex::new();
    let held = Arc::new(AtomicBool::new(false));
    let released = Arc::new(AtomicBool::new(false));
    let (h1, r1, h2, r2) = (held.clone(), released.clone(), held, released);
    let jobs: Vec<Job<bool>> = vec![
        Box::new(move || {
            mx.acquire();
            h1.store(true, Ordering::Release);
            // The other thread is asleep in ExAcquireFastMutex, not spinning.
            wait_until("the other thread sleeps", || mx.sleepers() == 1);
            r1.store(true, Ordering::Release);
            mx.release();
            true
        }),
        Box::new(move || {
            wait_until("the mutex is held", || h2.load(Ordering::Acquire));
            mx.acquire();
            let after_release = r2.load(Ordering::Acquire);
            mx.release();
            after_release
        }),
    ];
    for result in run_parallel(&m, jobs) {
        assert!(
            result.expect("no bug check"),
            "acquired only after the release"
        );
    }
    assert_eq!(mx.sleepers(), 0);
}

#[test]
fn acquire_above_apc_level_is_0xc4_0x33() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        raise(2);
        mx.acquire();
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [verifier::FAST_MUTEX_ACQUIRE_IRQL, 2, mx.addr(), 0]
    );
    let m = machine(2);
    let b = expect_bugcheck(&m, move || {
        raise(2);
        mx.try_acquire()
    });
    assert_eq!(
        b.params,
        [verifier::FAST_MUTEX_ACQUIRE_IRQL, 2, mx.addr(), 0]
    );
}

#[test]
fn release_at_an_irql_other_than_apc_level_is_0xc4_0x34() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        mx.acquire();
        lower(0);
        mx.release();
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [verifier::FAST_MUTEX_RELEASE_IRQL, 0, 0, mx.addr()]
    );
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        mx.acquire();
        raise(2);
        mx.release();
    });
    // P3 is CombinedApcDisable: the critical region's KernelApcDisable = -1.
    assert_eq!(
        b.params,
        [verifier::FAST_MUTEX_RELEASE_IRQL, 2, 0xFFFF, mx.addr()]
    );
}

#[test]
fn unsafe_acquire_with_apcs_enabled_is_0xc4_0x39() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || mx.acquire_unsafe());
    assert_eq!(
        b.params,
        [verifier::UNSAFE_MUTEX_ACQUIRE_APCS_ENABLED, 0, 0, mx.addr()]
    );
    let m = machine(2);
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        raise(2);
        mx.acquire_unsafe();
    });
    assert_eq!(
        b.params,
        [
            verifier::UNSAFE_MUTEX_ACQUIRE_APCS_ENABLED,
            2,
            0xFFFF,
            mx.addr()
        ]
    );
}

#[test]
fn unsafe_release_with_apcs_enabled_is_0xc4_0x3a() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        mx.acquire_unsafe();
        leave_critical_region();
        mx.release_unsafe();
    });
    assert_eq!(
        b.params,
        [verifier::UNSAFE_MUTEX_RELEASE_APCS_ENABLED, 0, 0, mx.addr()]
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
        mx.acquire();
        mx.acquire();
    });
    assert_eq!(b.code, code::MUTEX_ALREADY_OWNED);
    assert_eq!(b.params, [mx.addr(), me.load(Ordering::Relaxed), 0, 0]);
    let m = machine(2);
    let mx = Mutex::new();
    let seen = me.clone();
    let b = expect_bugcheck(&m, move || {
        seen.store(current_thread(), Ordering::Relaxed);
        enter_critical_region();
        mx.acquire_unsafe();
        mx.acquire_unsafe();
    });
    assert_eq!(b.code, code::MUTEX_ALREADY_OWNED);
    assert_eq!(b.params, [mx.addr(), me.load(Ordering::Relaxed), 0, 0]);
}

#[test]
fn release_of_a_mutex_nobody_holds_is_0xc4_0x1007() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        raise(1);
        mx.release();
    });
    assert_eq!(b.params, [verifier::RELEASED_NOT_ACQUIRED, mx.addr(), 0, 0]);
}

#[test]
fn release_by_a_thread_that_does_not_own_it_is_0xc4_0x1004() {
    let m = machine(4);
    let mx = Mutex::new();
    let owner = Arc::new(AtomicU64::new(0));
    let releaser = Arc::new(AtomicU64::new(0));
    let (o1, o2, r2) = (owner.clone(), owner.clone(), releaser.clone());
    let jobs: Vec<Job<()>> = vec![
        Box::new(move || {
            mx.acquire();
            o1.store(current_thread(), Ordering::Release);
            // Hold it until the machine stops.
            wait_until("the machine stops", || false);
        }),
        Box::new(move || {
            wait_until("the mutex is held", || o2.load(Ordering::Acquire) != 0);
            r2.store(current_thread(), Ordering::Relaxed);
            raise(1);
            mx.release();
        }),
    ];
    let results = run_parallel(&m, jobs);
    let HostError::BugCheck(b) = results[1].clone().expect_err("bug check") else {
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
    assert_ne!(
        owner.load(Ordering::Relaxed),
        releaser.load(Ordering::Relaxed)
    );
}

#[test]
fn without_deadlock_detection_a_wrong_release_is_autoboost_0x162() {
    // Errata 7: fast mutexes are AutoBoost-tracked; without Deadlock Detection (which would
    // report first) the kernel's own check fires: P1 thread, P2 lock.
    let m = Machine::new(MachineConfig {
        processors: 2,
        deadlock_detection: false,
        ..MachineConfig::default()
    });
    let mx = Mutex::new();
    let me = Arc::new(AtomicU64::new(0));
    let seen = me.clone();
    let b = expect_bugcheck(&m, move || {
        seen.store(current_thread(), Ordering::Relaxed);
        raise(1);
        mx.release();
    });
    assert_eq!(b.code, code::KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE);
    assert_eq!(b.params, [me.load(Ordering::Relaxed), mx.addr(), 0, 0]);
}

#[test]
fn mixing_safe_and_unsafe_routines_is_0xc4_0x1009() {
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        mx.acquire();
        mx.release_unsafe();
    });
    assert_eq!(b.params, [verifier::RELEASE_API_MISMATCH, mx.addr(), 0, 0]);
    let m = machine(2);
    let mx = Mutex::new();
    let b = expect_bugcheck(&m, move || {
        raise(1);
        mx.acquire_unsafe();
        mx.release();
    });
    assert_eq!(b.params, [verifier::RELEASE_API_MISMATCH, mx.addr(), 0, 0]);
}

#[test]
fn out_of_order_release_is_0xc4_0x1003() {
    let m = machine(2);
    let (a, b_mutex) = (Mutex::new(), Mutex::new());
    let b = expect_bugcheck(&m, move || {
        a.acquire();
        b_mutex.acquire();
        a.release();
    });
    assert_eq!(
        b.params,
        [verifier::RELEASED_OUT_OF_ORDER, a.addr(), b_mutex.addr(), 0]
    );
}

#[test]
fn a_mutex_that_was_never_initialised_is_0xc4_0x1002() {
    let m = machine(2);
    let mx = Mutex::zeroed();
    let b = expect_bugcheck(&m, move || mx.acquire());
    assert_eq!(b.params, [verifier::UNINITIALIZED_LOCK, mx.addr(), 0, 0]);
}

#[test]
fn a_thread_ending_with_the_mutex_held_is_0xc4_0x100a() {
    let m = machine(2);
    let mx = Mutex::new();
    let me = Arc::new(AtomicU64::new(0));
    let seen = me.clone();
    let b = expect_bugcheck(&m, move || {
        seen.store(current_thread(), Ordering::Relaxed);
        mx.acquire();
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
fn opposite_acquisition_orders_are_0xc4_0x1001() {
    let m = machine(2);
    let (a, b_mutex) = (Mutex::new(), Mutex::new());
    m.run(move || {
        a.acquire();
        b_mutex.acquire();
        b_mutex.release();
        a.release();
    })
    .expect("one order is fine");
    let b = expect_bugcheck(&m, move || {
        b_mutex.acquire();
        a.acquire();
    });
    assert_eq!(
        b.params,
        [
            verifier::LOCK_HIERARCHY_VIOLATION,
            a.addr(),
            b_mutex.addr(),
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
                            if !mx.try_acquire() {
                                mx.acquire();
                            }
                            counter.bump();
                            mx.release();
                        }
                        1 => {
                            enter_critical_region();
                            mx.acquire_unsafe();
                            counter.bump();
                            mx.release_unsafe();
                            leave_critical_region();
                        }
                        _ => {
                            mx.acquire();
                            counter.bump();
                            mx.release();
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
    // Windows counts contended acquires in Contention: the run really made threads sleep.
    assert!(state.Contention > 0, "no acquire ever waited");
    assert_eq!((state.Count, state.Owner), (1, std::ptr::null_mut()));
}
