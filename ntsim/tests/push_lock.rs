//! `Ex` push locks (ddi.md section 6.1 with errata 7, 12 and 16): shared holders together,
//! exclusive requests excluding everyone and blocking new shared requests, the caller's critical
//! region, each verifier rule with its code and parameters, and a stress run.

mod support;

use std::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    Arc, Mutex as HostMutex,
};

use ntsim::{
    bugcheck::{code, verifier},
    HostError,
};
use support::{
    all_apcs_disabled, apcs_disabled,
    blocking::{current_thread, run_parallel, wait_until, Counter, Job, Mutex, PushLock},
    enter_critical_region, expect_bugcheck, irql, leave_critical_region, lower, machine, raise,
};

#[test]
fn the_lock_changes_nothing_but_the_callers_critical_region_disables_apcs() {
    let m = machine(2);
    let lock = PushLock::garbage();
    let seen = m
        .run(move || {
            lock.initialize();
            enter_critical_region();
            lock.acquire_exclusive();
            let exclusive = (irql(), apcs_disabled(), all_apcs_disabled());
            lock.release_exclusive();
            lock.acquire_shared();
            let shared = (irql(), apcs_disabled(), all_apcs_disabled());
            lock.release_shared();
            leave_critical_region();
            (exclusive, shared)
        })
        .expect("no bug check");
    // IRQL unchanged; KeAreApcsDisabled TRUE through the critical region; special APCs on.
    assert_eq!(seen, ((0, true, false), (0, true, false)));
}

#[test]
fn flags_one_and_two_are_accepted_and_release_works_at_dispatch_level() {
    let m = machine(2);
    let lock = PushLock::new();
    m.run(move || {
        enter_critical_region();
        lock.acquire_exclusive_with(1);
        lock.release_exclusive_with(1);
        lock.acquire_shared_with(2);
        lock.release_shared_with(2);
        lock.acquire_exclusive_with(3);
        raise(2);
        lock.release_exclusive_with(3);
        lower(0);
        leave_critical_region();
    })
    .expect("flags 0..=3 and a DISPATCH_LEVEL release are legal");
}

#[test]
fn shared_holders_hold_it_at_the_same_time() {
    const READERS: u32 = 4;
    let m = machine(8);
    let lock = PushLock::new();
    let inside = Arc::new(AtomicU32::new(0));
    let jobs: Vec<Job<u32>> = (0..READERS)
        .map(|_| {
            let inside = inside.clone();
            Box::new(move || {
                enter_critical_region();
                lock.acquire_shared();
                inside.fetch_add(1, Ordering::AcqRel);
                // Every reader is inside at once: impossible unless shared holders coexist.
                wait_until("all readers hold it", || {
                    inside.load(Ordering::Acquire) == READERS
                });
                let seen = inside.load(Ordering::Acquire);
                lock.release_shared();
                leave_critical_region();
                seen
            }) as Job<u32>
        })
        .collect();
    for result in run_parallel(&m, jobs) {
        assert_eq!(result.expect("no bug check"), READERS);
    }
}

#[test]
fn a_queued_exclusive_request_goes_before_later_shared_requests() {
    let m = machine(8);
    let lock = PushLock::new();
    let order = Arc::new(HostMutex::new(Vec::new()));
    let reader_holds = Arc::new(AtomicBool::new(false));
    let writer_queued = Arc::new(AtomicBool::new(false));
    let (o1, o2, o3) = (order.clone(), order.clone(), order.clone());
    let (rh1, rh2, rh3) = (reader_holds.clone(), reader_holds.clone(), reader_holds);
    let (wq1, wq2) = (writer_queued.clone(), writer_queued);
    let jobs: Vec<Job<()>> = vec![
        // The first reader holds it shared until both others are asleep.
        Box::new(move || {
            enter_critical_region();
            lock.acquire_shared();
            rh1.store(true, Ordering::Release);
            wait_until("the writer is queued", || lock.waiters().0 == 1);
            wq1.store(true, Ordering::Release);
            wait_until("writer and second reader sleep", || {
                lock.waiters() == (1, 2)
            });
            o1.lock().expect("order").push("first reader releases");
            lock.release_shared();
            leave_critical_region();
        }),
        Box::new(move || {
            wait_until("a reader holds it", || rh2.load(Ordering::Acquire));
            enter_critical_region();
            lock.acquire_exclusive();
            o2.lock().expect("order").push("writer");
            lock.release_exclusive();
            leave_critical_region();
        }),
        // A shared request made while the writer is queued waits behind it, although the lock
        // is only held shared.
        Box::new(move || {
            wait_until("a reader holds it", || rh3.load(Ordering::Acquire));
            wait_until("the writer is queued", || wq2.load(Ordering::Acquire));
            enter_critical_region();
            lock.acquire_shared();
            o3.lock().expect("order").push("second reader");
            lock.release_shared();
            leave_critical_region();
        }),
    ];
    for result in run_parallel(&m, jobs) {
        result.expect("no bug check");
    }
    assert_eq!(
        *order.lock().expect("order"),
        ["first reader releases", "writer", "second reader"]
    );
}

#[test]
fn exclusive_holder_excludes_readers_until_it_releases() {
    let m = machine(8);
    let lock = PushLock::new();
    let held = Arc::new(AtomicBool::new(false));
    let released = Arc::new(AtomicBool::new(false));
    let (h1, r1) = (held.clone(), released.clone());
    let mut jobs: Vec<Job<bool>> = vec![Box::new(move || {
        enter_critical_region();
        lock.acquire_exclusive();
        h1.store(true, Ordering::Release);
        wait_until("both readers sleep", || lock.waiters() == (0, 2));
        r1.store(true, Ordering::Release);
        lock.release_exclusive();
        leave_critical_region();
        true
    })];
    for _ in 0..2 {
        let (h, r) = (held.clone(), released.clone());
        jobs.push(Box::new(move || {
            wait_until("the writer holds it", || h.load(Ordering::Acquire));
            enter_critical_region();
            lock.acquire_shared();
            let after = r.load(Ordering::Acquire);
            lock.release_shared();
            leave_critical_region();
            after
        }));
    }
    for result in run_parallel(&m, jobs) {
        assert!(
            result.expect("no bug check"),
            "readers got in only after the release"
        );
    }
}

#[test]
fn a_second_shared_acquire_is_granted_while_no_writer_waits() {
    // Errata 16: legal (it succeeds) while no exclusive request is queued.
    let m = machine(2);
    let lock = PushLock::new();
    m.run(move || {
        enter_critical_region();
        lock.acquire_shared();
        lock.acquire_shared();
        lock.release_shared();
        lock.release_shared();
        lock.acquire_exclusive();
        lock.release_exclusive();
        leave_critical_region();
    })
    .expect("no bug check");
}

#[test]
fn a_second_shared_acquire_with_a_writer_queued_is_0xbf() {
    // Errata 16: the deadlocking case — the second shared request waits behind the writer,
    // which waits for the first shared hold.
    let m = machine(4);
    let lock = PushLock::new();
    let reader = Arc::new(AtomicU64::new(0));
    let held = Arc::new(AtomicBool::new(false));
    let (r1, h1, h2) = (reader.clone(), held.clone(), held);
    let jobs: Vec<Job<()>> = vec![
        Box::new(move || {
            r1.store(current_thread(), Ordering::Relaxed);
            enter_critical_region();
            lock.acquire_shared();
            h1.store(true, Ordering::Release);
            wait_until("the writer is queued", || lock.waiters().0 == 1);
            lock.acquire_shared();
        }),
        Box::new(move || {
            wait_until("the reader holds it", || h2.load(Ordering::Acquire));
            enter_critical_region();
            lock.acquire_exclusive();
        }),
    ];
    let results = run_parallel(&m, jobs);
    let Err(HostError::BugCheck(b)) = results[0].clone() else {
        panic!("expected a bug check, got {:?}", results[0]);
    };
    assert_eq!(b.code, code::MUTEX_ALREADY_OWNED);
    assert_eq!(
        b.params,
        [lock.addr(), reader.load(Ordering::Relaxed), 0, 0]
    );
}

#[test]
fn reacquire_by_the_holder_is_0xbf() {
    type Case = (&'static str, fn(PushLock), fn(PushLock));
    let cases: [Case; 3] = [
        (
            "exclusive, exclusive",
            PushLock::acquire_exclusive,
            PushLock::acquire_exclusive,
        ),
        (
            "exclusive, shared",
            PushLock::acquire_exclusive,
            PushLock::acquire_shared,
        ),
        (
            "shared, exclusive",
            PushLock::acquire_shared,
            PushLock::acquire_exclusive,
        ),
    ];
    for (name, first, second) in cases {
        let m = machine(2);
        let lock = PushLock::new();
        let me = Arc::new(AtomicU64::new(0));
        let seen = me.clone();
        let b = expect_bugcheck(&m, move || {
            seen.store(current_thread(), Ordering::Relaxed);
            enter_critical_region();
            first(lock);
            second(lock);
        });
        assert_eq!(b.code, code::MUTEX_ALREADY_OWNED, "{name}");
        assert_eq!(
            b.params,
            [lock.addr(), me.load(Ordering::Relaxed), 0, 0],
            "{name}"
        );
    }
}

#[test]
fn acquire_without_a_critical_region_is_0xc4_0xea() {
    let m = machine(2);
    let lock = PushLock::new();
    let b = expect_bugcheck(&m, move || lock.acquire_exclusive());
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [verifier::PUSH_LOCK_ACQUIRE_APCS_ENABLED, 0, 0, lock.addr()]
    );
    let m = machine(2);
    let b = expect_bugcheck(&m, move || lock.acquire_shared());
    assert_eq!(
        b.params,
        [verifier::PUSH_LOCK_ACQUIRE_APCS_ENABLED, 0, 0, lock.addr()]
    );
}

#[test]
fn acquire_at_dispatch_level_is_0xc4_0xea() {
    let m = machine(2);
    let lock = PushLock::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        raise(2);
        lock.acquire_shared();
    });
    assert_eq!(
        b.params,
        [
            verifier::PUSH_LOCK_ACQUIRE_APCS_ENABLED,
            2,
            0xFFFF,
            lock.addr()
        ]
    );
}

#[test]
fn release_after_leaving_the_critical_region_is_0xc4_0xeb() {
    let m = machine(2);
    let lock = PushLock::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        lock.acquire_exclusive();
        leave_critical_region();
        lock.release_exclusive();
    });
    assert_eq!(
        b.params,
        [verifier::PUSH_LOCK_RELEASE_APCS_ENABLED, 0, 0, lock.addr()]
    );
}

#[test]
fn release_above_dispatch_level_is_0xc4_0xe5() {
    let m = machine(2);
    let lock = PushLock::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        lock.acquire_exclusive();
        raise(3);
        lock.release_exclusive();
    });
    assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 3, lock.addr(), 0]);
}

#[test]
fn flags_outside_0x3_are_0x152() {
    let m = machine(2);
    let lock = PushLock::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        lock.acquire_exclusive_with(4);
    });
    assert_eq!(b.code, code::INVALID_PUSH_LOCK_FLAGS);
    assert_eq!(b.params, [4, lock.addr(), 0, 0]);
    let m = machine(2);
    let lock = PushLock::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        lock.acquire_shared();
        lock.release_shared_with(0x8000_0001);
    });
    assert_eq!(b.code, code::INVALID_PUSH_LOCK_FLAGS);
    assert_eq!(b.params, [0x8000_0001, lock.addr(), 0, 0]);
}

#[test]
fn release_by_a_thread_that_does_not_own_it_is_0x162() {
    // Errata 7: AutoBoost reports it (P1 thread, P2 lock), not deadlock detection.
    let m = machine(2);
    let lock = PushLock::new();
    let me = Arc::new(AtomicU64::new(0));
    let seen = me.clone();
    let b = expect_bugcheck(&m, move || {
        seen.store(current_thread(), Ordering::Relaxed);
        enter_critical_region();
        lock.release_exclusive();
    });
    assert_eq!(b.code, code::KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE);
    assert_eq!(b.params, [me.load(Ordering::Relaxed), lock.addr(), 0, 0]);

    // Held shared by another thread: still not the caller's.
    let m = machine(4);
    let lock = PushLock::new();
    let held = Arc::new(AtomicBool::new(false));
    let releaser = Arc::new(AtomicU64::new(0));
    let (h1, h2, r2) = (held.clone(), held, releaser.clone());
    let jobs: Vec<Job<()>> = vec![
        Box::new(move || {
            enter_critical_region();
            lock.acquire_shared();
            h1.store(true, Ordering::Release);
            wait_until("the machine stops", || false);
        }),
        Box::new(move || {
            wait_until("the lock is held", || h2.load(Ordering::Acquire));
            r2.store(current_thread(), Ordering::Relaxed);
            enter_critical_region();
            lock.release_shared();
        }),
    ];
    let results = run_parallel(&m, jobs);
    let Err(HostError::BugCheck(b)) = results[1].clone() else {
        panic!("expected a bug check");
    };
    assert_eq!(b.code, code::KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE);
    assert_eq!(
        b.params,
        [releaser.load(Ordering::Relaxed), lock.addr(), 0, 0]
    );
}

#[test]
fn releasing_in_the_other_mode_is_0xc4_0x1009() {
    let m = machine(2);
    let lock = PushLock::new();
    let b = expect_bugcheck(&m, move || {
        enter_critical_region();
        lock.acquire_shared();
        lock.release_exclusive();
    });
    assert_eq!(
        b.params,
        [verifier::RELEASE_API_MISMATCH, lock.addr(), 0, 0]
    );
}

#[test]
fn a_thread_ending_with_the_lock_held_is_0xc4_0x100a() {
    let m = machine(2);
    let lock = PushLock::new();
    let me = Arc::new(AtomicU64::new(0));
    let seen = me.clone();
    let b = expect_bugcheck(&m, move || {
        seen.store(current_thread(), Ordering::Relaxed);
        enter_critical_region();
        lock.acquire_shared();
    });
    assert_eq!(
        b.params,
        [
            verifier::THREAD_TERMINATED_OWNING_LOCK,
            lock.addr(),
            me.load(Ordering::Relaxed),
            0
        ]
    );
}

#[test]
fn push_locks_stay_out_of_the_lock_order_graph() {
    // Deadlock detection does not track push locks (errata 7): opposite orders of a push lock
    // and a fast mutex are not reported.
    let m = machine(2);
    let (lock, mx) = (PushLock::new(), Mutex::new());
    m.run(move || {
        enter_critical_region();
        lock.acquire_exclusive();
        mx.acquire();
        mx.release();
        lock.release_exclusive();
        mx.acquire();
        lock.acquire_exclusive();
        lock.release_exclusive();
        mx.release();
        leave_critical_region();
    })
    .expect("no lock-order report for push locks");
}

#[test]
fn stress_writers_and_readers_one_million_acquisitions() {
    const THREADS: u64 = 8;
    const EACH: u64 = 125_000;
    let m = machine(8);
    let lock = PushLock::new();
    // Writers keep two words equal; readers check that they are.
    let (left, right) = (Counter::default(), Counter::default());
    let writes = Counter::default();
    let reads = Arc::new(AtomicU64::new(0));
    let torn = Arc::new(AtomicU64::new(0));
    let jobs: Vec<Job<()>> = (0..THREADS)
        .map(|_| {
            let (left, right, writes) = (left.clone(), right.clone(), writes.clone());
            let (reads, torn) = (reads.clone(), torn.clone());
            Box::new(move || {
                enter_critical_region();
                for i in 0..EACH {
                    if i % 4 == 0 {
                        lock.acquire_exclusive();
                        left.bump();
                        writes.bump();
                        right.bump();
                        lock.release_exclusive();
                    } else {
                        lock.acquire_shared();
                        if left.get() != right.get() {
                            torn.fetch_add(1, Ordering::Relaxed);
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                        lock.release_shared();
                    }
                }
                leave_critical_region();
            }) as Job<()>
        })
        .collect();
    for result in run_parallel(&m, jobs) {
        result.expect("no bug check, no hang");
    }
    let expected_writes = THREADS * EACH.div_ceil(4);
    assert_eq!(writes.get(), expected_writes);
    assert_eq!(
        (left.get(), right.get()),
        (expected_writes, expected_writes)
    );
    assert_eq!(reads.load(Ordering::Relaxed) + writes.get(), THREADS * EACH);
    assert_eq!(
        torn.load(Ordering::Relaxed),
        0,
        "a reader saw a write in progress"
    );
    assert_eq!(lock.waiters(), (0, 0));
}
