//! Reader/writer spin locks, `EX_SPIN_LOCK` (ddi.md 3, 11.1, 13.3): IRQL on return of each
//! variant, shared holders together, writer preference, the try and convert results, the
//! verifier rules, and a stress of readers and writers from system threads and DPCs.

mod support;

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use ntsim::{
    bugcheck::{code, verifier},
    wdk_sys::{KDPC, PVOID},
    BugCheck,
};
use support::{
    expect_bugcheck, irql, lower, machine, raise,
    spin_families::{current_cpu, roomy_machine, stress, wait_until, Arena, ExLock, Plan, Worker},
    Dpc,
};

const PATIENCE: Duration = Duration::from_secs(15);

#[test]
fn raising_variants_return_the_old_irql_and_releases_restore_it() {
    let m = machine(2);
    let l = ExLock::new();
    let seen = m
        .run(move || {
            let mut out = Vec::new();
            for start in [0, 1, 2] {
                if start > 0 {
                    raise(start);
                }
                let old = l.acquire_exclusive();
                out.push((old, irql()));
                l.release_exclusive(old);
                out.push((start, irql()));
                let old = l.acquire_shared();
                out.push((old, irql()));
                l.release_shared(old);
                out.push((start, irql()));
                lower(0);
            }
            out
        })
        .expect("no bug check");
    assert_eq!(
        seen,
        [
            (0, 2),
            (0, 0),
            (0, 2),
            (0, 0),
            (1, 2),
            (1, 1),
            (1, 2),
            (1, 1),
            (2, 2),
            (2, 2),
            (2, 2),
            (2, 2)
        ]
    );
}

#[test]
fn dpc_level_variants_leave_irql_unchanged() {
    let m = machine(2);
    let l = ExLock::new();
    let seen = m
        .run(move || {
            raise(2);
            let mut levels = Vec::new();
            l.acquire_exclusive_at_dpc();
            levels.push(irql());
            l.release_exclusive_from_dpc();
            levels.push(irql());
            l.acquire_shared_at_dpc();
            levels.push(irql());
            l.release_shared_from_dpc();
            levels.push(irql());
            assert!(l.try_shared_at_dpc());
            levels.push(irql());
            assert!(l.try_convert());
            levels.push(irql());
            l.release_exclusive_from_dpc();
            assert!(l.try_exclusive_at_dpc());
            levels.push(irql());
            l.release_exclusive_from_dpc();
            levels.push(irql());
            lower(0);
            levels
        })
        .expect("no bug check");
    assert_eq!(seen, [2; 8]);
}

/// Probes `lock` from a DPC on another processor: (try shared, try exclusive), each released
/// at once when it succeeded. Callable at `DISPATCH_LEVEL`.
fn probe(lock: ExLock) -> (bool, bool) {
    unsafe extern "C" fn routine(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        // SAFETY: the context is the leaked [lock, result] pair of `probe`.
        let slots = unsafe { &*context.cast::<[AtomicUsize; 2]>() };
        let l = ExLock::from_addr(slots[0].load(Ordering::Relaxed));
        let shared = l.try_shared_at_dpc();
        if shared {
            l.release_shared_from_dpc();
        }
        let exclusive = l.try_exclusive_at_dpc();
        if exclusive {
            l.release_exclusive_from_dpc();
        }
        slots[1].store(
            4 | usize::from(shared) << 1 | usize::from(exclusive),
            Ordering::Release,
        );
    }
    let slots: &'static [AtomicUsize; 2] = Box::leak(Box::new([
        AtomicUsize::new(lock.context()),
        AtomicUsize::new(0),
    ]));
    let dpc = Dpc::new(routine, std::ptr::from_ref(slots) as usize);
    let here = current_cpu();
    assert_eq!(dpc.target(u8::from(here == 0)), 0);
    assert!(dpc.insert());
    wait_until("the probe", PATIENCE, || {
        slots[1].load(Ordering::Acquire) != 0
    });
    let result = slots[1].load(Ordering::Acquire);
    (result & 2 != 0, result & 1 != 0)
}

#[test]
fn try_results_follow_the_holders() {
    let m = roomy_machine(4);
    let l = ExLock::new();
    let seen = m
        .run(move || {
            let free = probe(l);
            let old = l.acquire_exclusive();
            let exclusive = probe(l);
            l.release_exclusive(old);
            let old = l.acquire_shared();
            let shared = probe(l);
            l.release_shared(old);
            (free, exclusive, shared, probe(l))
        })
        .expect("no bug check");
    assert_eq!(
        seen,
        ((true, true), (false, false), (true, false), (true, true))
    );
}

#[test]
fn shared_holders_hold_the_lock_together() {
    // Four contexts (two DPCs, two threads) take the lock shared and each waits, inside, until
    // all four are inside: possible only if they hold it at the same time.
    unsafe extern "C" fn dpc_reader(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        // SAFETY: the context is the leaked [lock, inside, done] triple below.
        let s = unsafe { &*context.cast::<[AtomicUsize; 3]>() };
        let l = ExLock::from_addr(s[0].load(Ordering::Relaxed));
        l.acquire_shared_at_dpc();
        s[1].fetch_add(1, Ordering::AcqRel);
        wait_until("all readers inside", PATIENCE, || {
            s[1].load(Ordering::Acquire) == 4
        });
        l.release_shared_from_dpc();
        s[2].fetch_add(1, Ordering::AcqRel);
    }
    unsafe extern "C" fn thread_reader(context: PVOID) {
        // SAFETY: as above.
        let s = unsafe { &*context.cast::<[AtomicUsize; 3]>() };
        let l = ExLock::from_addr(s[0].load(Ordering::Relaxed));
        let old = l.acquire_shared();
        s[1].fetch_add(1, Ordering::AcqRel);
        wait_until("all readers inside", PATIENCE, || {
            s[1].load(Ordering::Acquire) == 4
        });
        l.release_shared(old);
        s[2].fetch_add(1, Ordering::AcqRel);
    }
    let m = roomy_machine(8);
    let l = ExLock::new();
    let inside = m
        .run(move || {
            let s: &'static [AtomicUsize; 3] = Box::leak(Box::new([
                AtomicUsize::new(l.context()),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ]));
            let context = std::ptr::from_ref(s) as usize;
            for cpu in [7, 6] {
                let dpc = Dpc::new(dpc_reader, context);
                assert_eq!(dpc.target(cpu), 0);
                assert!(dpc.insert());
            }
            // The DPCs are in before the threads raise, so no thread sits on their processors.
            wait_until("the DPC readers", PATIENCE, || {
                s[1].load(Ordering::Acquire) == 2
            });
            let threads = [
                support::spawn(thread_reader, context),
                support::spawn(thread_reader, context),
            ];
            for thread in threads {
                support::join(thread);
            }
            wait_until("every reader", PATIENCE, || {
                s[2].load(Ordering::Acquire) == 4
            });
            s[1].load(Ordering::Acquire)
        })
        .expect("no bug check");
    assert_eq!(inside, 4);
}

/// Shared between the writer-preference test and its writer and late reader.
struct Preference {
    lock: ExLock,
    writer_go: AtomicUsize,
    /// Writer's processor + 1.
    writer_cpu: AtomicUsize,
    /// Set by the late reader once a try-shared failed (a writer waits).
    reader_blocked: AtomicUsize,
    /// Grant log: 1 = writer, 2 = late reader.
    log: [AtomicUsize; 2],
    next: AtomicUsize,
    done: AtomicUsize,
}

impl Preference {
    fn record(&self, who: usize) {
        let slot = self.next.fetch_add(1, Ordering::AcqRel);
        self.log[slot].store(who, Ordering::Release);
    }
}

unsafe extern "C" fn preference_writer(context: PVOID) {
    // SAFETY: the context is the leaked Preference.
    let p = unsafe { &*context.cast::<Preference>() };
    wait_until("the writer's start", PATIENCE, || {
        p.writer_go.load(Ordering::Acquire) != 0
    });
    let old = raise(2);
    p.writer_cpu
        .store(current_cpu() as usize + 1, Ordering::Release);
    let at = p.lock.acquire_exclusive();
    p.record(1);
    p.lock.release_exclusive(at);
    lower(old);
    p.done.fetch_add(1, Ordering::AcqRel);
}

unsafe extern "C" fn preference_reader(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // SAFETY: the context is the leaked Preference.
    let p = unsafe { &*context.cast::<Preference>() };
    // Until the writer waits, a try-shared succeeds (the lock is only held shared).
    let deadline = std::time::Instant::now() + PATIENCE;
    while p.lock.try_shared_at_dpc() {
        p.lock.release_shared_from_dpc();
        assert!(
            std::time::Instant::now() < deadline,
            "a waiting writer never blocked new readers"
        );
        std::thread::yield_now();
    }
    p.reader_blocked.store(1, Ordering::Release);
    p.lock.acquire_shared_at_dpc();
    p.record(2);
    p.lock.release_shared_from_dpc();
    p.done.fetch_add(1, Ordering::AcqRel);
}

#[test]
fn a_waiting_writer_goes_before_later_readers_and_blocks_conversion() {
    let m = roomy_machine(8);
    let seen = m
        .run(|| {
            let p: &'static Preference = Box::leak(Box::new(Preference {
                lock: ExLock::new(),
                writer_go: AtomicUsize::new(0),
                writer_cpu: AtomicUsize::new(0),
                reader_blocked: AtomicUsize::new(0),
                log: [AtomicUsize::new(0), AtomicUsize::new(0)],
                next: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
            }));
            let context = std::ptr::from_ref(p) as usize;
            let writer = support::spawn(preference_writer, context);
            let old = p.lock.acquire_shared();
            let mine = current_cpu();
            p.writer_go.store(1, Ordering::Release);
            wait_until("the writer's processor", PATIENCE, || {
                p.writer_cpu.load(Ordering::Acquire) != 0
            });
            let writer_cpu = u32::try_from(p.writer_cpu.load(Ordering::Acquire) - 1).unwrap_or(0);
            let free = (0..8_u8)
                .rev()
                .find(|&c| u32::from(c) != mine && u32::from(c) != writer_cpu)
                .unwrap_or(0);
            let reader = Dpc::new(preference_reader, context);
            assert_eq!(reader.target(free), 0);
            assert!(reader.insert());
            wait_until("the late reader to be blocked", PATIENCE, || {
                p.reader_blocked.load(Ordering::Acquire) != 0
            });
            // Sole shared holder, but a writer waits: the conversion fails and the caller
            // keeps its shared hold (the shared release below is legal).
            let converted = p.lock.try_convert();
            p.lock.release_shared(old);
            support::join(writer);
            wait_until("the late reader", PATIENCE, || {
                p.done.load(Ordering::Acquire) == 2
            });
            (
                converted,
                p.log[0].load(Ordering::Acquire),
                p.log[1].load(Ordering::Acquire),
            )
        })
        .expect("no bug check");
    assert_eq!(seen, (false, 1, 2));
}

#[test]
fn the_sole_shared_holder_converts_to_exclusive() {
    let m = roomy_machine(4);
    let l = ExLock::new();
    let seen = m
        .run(move || {
            let old = l.acquire_shared();
            let converted = l.try_convert();
            let while_exclusive = probe(l);
            l.release_exclusive(old);
            let after = (irql(), probe(l));
            raise(2);
            l.acquire_shared_at_dpc();
            let converted_at_dpc = l.try_convert();
            let while_exclusive_at_dpc = probe(l);
            l.release_exclusive_from_dpc();
            lower(0);
            (
                converted,
                while_exclusive,
                after,
                converted_at_dpc,
                while_exclusive_at_dpc,
            )
        })
        .expect("no bug check");
    assert_eq!(
        seen,
        (
            true,
            (false, false),
            (0, (true, true)),
            true,
            (false, false)
        )
    );
}

#[test]
fn conversion_fails_with_another_shared_holder() {
    unsafe extern "C" fn other_reader(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        // SAFETY: the context is the leaked [lock, state] pair below.
        let s = unsafe { &*context.cast::<[AtomicUsize; 2]>() };
        let l = ExLock::from_addr(s[0].load(Ordering::Relaxed));
        l.acquire_shared_at_dpc();
        s[1].store(1, Ordering::Release);
        wait_until("the end of the test", PATIENCE, || {
            s[1].load(Ordering::Acquire) == 2
        });
        l.release_shared_from_dpc();
        s[1].store(3, Ordering::Release);
    }
    let m = roomy_machine(4);
    let l = ExLock::new();
    let converted = m
        .run(move || {
            let s: &'static [AtomicUsize; 2] = Box::leak(Box::new([
                AtomicUsize::new(l.context()),
                AtomicUsize::new(0),
            ]));
            let dpc = Dpc::new(other_reader, std::ptr::from_ref(s) as usize);
            assert_eq!(dpc.target(3), 0);
            assert!(dpc.insert());
            wait_until("the other reader", PATIENCE, || {
                s[1].load(Ordering::Acquire) == 1
            });
            let old = l.acquire_shared();
            let converted = l.try_convert();
            l.release_shared(old);
            s[1].store(2, Ordering::Release);
            wait_until("the other reader's release", PATIENCE, || {
                s[1].load(Ordering::Acquire) == 3
            });
            converted
        })
        .expect("no bug check");
    assert!(!converted);
}

#[test]
fn re_acquire_by_an_owner_in_either_mode_is_0xf() {
    let cases: [fn(ExLock); 5] = [
        |l| {
            l.acquire_shared();
            l.acquire_shared();
        },
        |l| {
            l.acquire_exclusive();
            l.acquire_exclusive();
        },
        |l| {
            l.acquire_shared();
            l.acquire_exclusive_at_dpc();
        },
        |l| {
            l.acquire_exclusive();
            l.acquire_shared_at_dpc();
        },
        |l| {
            l.acquire_exclusive();
            l.try_shared_at_dpc();
        },
    ];
    for (index, case) in cases.into_iter().enumerate() {
        let m = machine(2);
        let l = ExLock::new();
        let b = expect_bugcheck(&m, move || case(l));
        assert_eq!(b.code, code::SPIN_LOCK_ALREADY_OWNED, "case {index}");
        assert_eq!(b.params, [l.addr(), 0, 0, 0], "case {index}");
    }
}

#[test]
fn release_with_another_mode_or_variant_is_0xc4_0x1009() {
    let cases: [fn(ExLock); 5] = [
        |l| {
            let old = l.acquire_exclusive();
            l.release_shared(old);
        },
        |l| {
            let old = l.acquire_shared();
            l.release_exclusive(old);
        },
        |l| {
            l.acquire_shared();
            l.release_shared_from_dpc();
        },
        |l| {
            raise(2);
            l.acquire_exclusive_at_dpc();
            l.release_exclusive(2);
        },
        |l| {
            let old = l.acquire_shared();
            assert!(l.try_convert());
            l.release_shared(old);
        },
    ];
    for (index, case) in cases.into_iter().enumerate() {
        let m = machine(2);
        let l = ExLock::new();
        let b = expect_bugcheck(&m, move || case(l));
        assert_eq!(
            b.params,
            [verifier::RELEASE_API_MISMATCH, l.addr(), 0, 0],
            "case {index}"
        );
    }
}

#[test]
fn release_of_a_free_lock_is_0xc4_0x1007() {
    let m = machine(2);
    let l = ExLock::new();
    let b = expect_bugcheck(&m, move || {
        raise(2);
        l.release_exclusive_from_dpc();
    });
    assert_eq!(b.params, [verifier::RELEASED_NOT_ACQUIRED, l.addr(), 0, 0]);
}

#[test]
fn release_of_a_lock_others_hold_is_0xc4_0x1004() {
    unsafe extern "C" fn holder(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        // SAFETY: the context is the leaked [lock, flag] pair below.
        let s = unsafe { &*context.cast::<[AtomicUsize; 2]>() };
        ExLock::from_addr(s[0].load(Ordering::Relaxed)).acquire_shared_at_dpc();
        s[1].store(1, Ordering::Release);
        support::stall(2_000_000);
    }
    let m = roomy_machine(4);
    let l = ExLock::new();
    let b = expect_bugcheck(&m, move || {
        let s: &'static [AtomicUsize; 2] = Box::leak(Box::new([
            AtomicUsize::new(l.context()),
            AtomicUsize::new(0),
        ]));
        assert!(Dpc::new(holder, std::ptr::from_ref(s) as usize).insert());
        wait_until("the holder", PATIENCE, || s[1].load(Ordering::Acquire) == 1);
        raise(2);
        l.release_shared_from_dpc();
    });
    assert_eq!(
        b.params[..3],
        [verifier::RELEASED_BY_OTHER_THREAD, l.addr(), 0]
    );
    assert_ne!(b.params[3], 0, "P4 is the releasing context");
}

#[test]
fn conversion_without_a_shared_hold_is_0xc4_0x1007() {
    for holding_exclusive in [false, true] {
        let m = machine(2);
        let l = ExLock::new();
        let b = expect_bugcheck(&m, move || {
            if holding_exclusive {
                l.acquire_exclusive();
            } else {
                raise(2);
            }
            l.try_convert()
        });
        assert_eq!(b.params, [verifier::RELEASED_NOT_ACQUIRED, l.addr(), 0, 0]);
    }
}

fn wrong_irql(f: fn(ExLock)) -> (ExLock, BugCheck) {
    let m = machine(2);
    let l = ExLock::new();
    let b = expect_bugcheck(&m, move || f(l));
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    (l, b)
}

#[test]
fn raising_acquires_above_dispatch_are_0xc4_0xe5() {
    for shared in [false, true] {
        let (l, b) = wrong_irql(if shared {
            |l| {
                raise(3);
                l.acquire_shared();
            }
        } else {
            |l| {
                raise(3);
                l.acquire_exclusive();
            }
        });
        assert_eq!(b.params, [verifier::API_AT_WRONG_IRQL, 3, l.addr(), 0]);
    }
}

#[test]
fn dpc_level_variants_below_dispatch_are_0xc4_0xe5() {
    let cases: [fn(ExLock); 5] = [
        ExLock::acquire_exclusive_at_dpc,
        ExLock::acquire_shared_at_dpc,
        |l| {
            l.try_shared_at_dpc();
        },
        |l| {
            l.try_exclusive_at_dpc();
        },
        |l| {
            raise(2);
            l.acquire_shared_at_dpc();
            lower(0);
            l.release_shared_from_dpc();
        },
    ];
    for (index, case) in cases.into_iter().enumerate() {
        let (l, b) = wrong_irql(case);
        assert_eq!(
            b.params,
            [verifier::API_AT_WRONG_IRQL, 0, l.addr(), 0],
            "case {index}"
        );
    }
}

#[test]
fn raising_release_and_conversion_away_from_dispatch_are_0xc4_0xe5() {
    let cases: [fn(ExLock); 3] = [
        |l| {
            let old = l.acquire_exclusive();
            lower(old);
            l.release_exclusive(old);
        },
        |l| {
            let old = l.acquire_shared();
            lower(old);
            l.release_shared(old);
        },
        |l| {
            let old = l.acquire_shared();
            lower(old);
            l.try_convert();
        },
    ];
    for (index, case) in cases.into_iter().enumerate() {
        let (l, b) = wrong_irql(case);
        assert_eq!(
            b.params,
            [verifier::API_AT_WRONG_IRQL, 0, l.addr(), 0],
            "case {index}"
        );
    }
}

#[test]
fn release_to_an_irql_above_the_current_one_is_0xc4_0x31() {
    let (_, b) = wrong_irql(|l| {
        l.acquire_exclusive();
        l.release_exclusive(5);
    });
    assert_eq!(b.params, [verifier::LOWER_IRQL_INVALID, 2, 5, 0]);
}

#[test]
fn raising_holds_released_out_of_order_are_0xc4_0x1003() {
    let m = machine(2);
    let (first, second) = (ExLock::new(), ExLock::new());
    let b = expect_bugcheck(&m, move || {
        let old = first.acquire_exclusive();
        second.acquire_shared();
        first.release_exclusive(old);
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
fn system_thread_ending_with_a_shared_hold_is_0xc4_0x100a() {
    let m = machine(2);
    let l = ExLock::new();
    let b = expect_bugcheck(&m, move || {
        l.acquire_shared();
    });
    assert_eq!(
        b.params[..2],
        [verifier::THREAD_TERMINATED_OWNING_LOCK, l.addr()]
    );
}

#[test]
fn dpc_returning_with_an_exclusive_hold_is_0x133() {
    unsafe extern "C" fn keep(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        ExLock::from_addr(context as usize).acquire_exclusive_at_dpc();
    }
    let m = machine(2);
    let l = ExLock::new();
    let b = expect_bugcheck(&m, move || {
        assert!(Dpc::new(keep, l.context()).insert());
        support::flush_dpcs();
    });
    assert_eq!(b.code, code::DPC_WATCHDOG_VIOLATION);
    assert_eq!(b.params, [0, l.addr(), 0, 0]);
}

#[test]
fn a_lock_held_exclusive_forever_ends_in_0x133() {
    unsafe extern "C" fn hog(context: PVOID) {
        // SAFETY: the context is the leaked [lock, flag] pair below.
        let s = unsafe { &*context.cast::<[AtomicUsize; 2]>() };
        ExLock::from_addr(s[0].load(Ordering::Relaxed)).acquire_exclusive();
        s[1].store(1, Ordering::Release);
        loop {
            support::stall(100);
        }
    }
    let m = machine(4);
    let l = ExLock::new();
    let b = expect_bugcheck(&m, move || {
        let s: &'static [AtomicUsize; 2] = Box::leak(Box::new([
            AtomicUsize::new(l.context()),
            AtomicUsize::new(0),
        ]));
        let _thread = support::spawn(hog, std::ptr::from_ref(s) as usize);
        wait_until("the hog", PATIENCE, || s[1].load(Ordering::Acquire) == 1);
        l.acquire_shared();
    });
    assert_eq!(b.code, code::DPC_WATCHDOG_VIOLATION);
    assert_eq!((b.params[0], b.params[3]), (1, l.addr()));
    assert!(b.message.contains("held exclusive"), "{}", b.message);
}

/// Threads: one section in eight is a writer's, one in eight a shared hold that tries to
/// convert; the others are shared (raising routines). DPCs: one section in four is a writer's;
/// they use the `AtDpcLevel` routines and the try routines (falling back to the blocking ones).
fn rw_section(arena: &Arena, worker: Worker, n: u64) {
    let l = ExLock::from_addr(arena.lock);
    let write = n.is_multiple_of(4);
    match worker {
        Worker::Thread(_) if n % 8 == 4 => {
            let old = l.acquire_shared();
            if l.try_convert() {
                arena.exclusive();
                l.release_exclusive(old);
            } else {
                arena.shared();
                l.release_shared(old);
            }
        }
        Worker::Thread(_) if write => {
            let old = l.acquire_exclusive();
            arena.exclusive();
            l.release_exclusive(old);
        }
        Worker::Thread(_) => {
            let old = l.acquire_shared();
            arena.shared();
            l.release_shared(old);
        }
        Worker::Dpc(_) if write && n.is_multiple_of(8) => {
            if !l.try_exclusive_at_dpc() {
                l.acquire_exclusive_at_dpc();
            }
            arena.exclusive();
            l.release_exclusive_from_dpc();
        }
        Worker::Dpc(_) if write => {
            l.acquire_exclusive_at_dpc();
            arena.exclusive();
            l.release_exclusive_from_dpc();
        }
        Worker::Dpc(_) if n % 4 == 1 => {
            if !l.try_shared_at_dpc() {
                l.acquire_shared_at_dpc();
            }
            arena.shared();
            l.release_shared_from_dpc();
        }
        Worker::Dpc(_) => {
            l.acquire_shared_at_dpc();
            arena.shared();
            l.release_shared_from_dpc();
        }
    }
}

#[test]
fn stress_readers_and_writers_from_threads_and_dpcs() {
    let plan = Plan {
        cpus: 8,
        threads: 4,
        per_thread: 150_000,
        dpcs: 4,
        per_dpc: 100_000,
        make_lock: || ExLock::new().context(),
        section: rw_section,
    };
    let outcome = stress(plan);
    assert_eq!(outcome.violations, 0);
    assert_eq!(outcome.exclusive + outcome.shared, 1_000_000);
    assert_eq!(outcome.counter, outcome.exclusive);
    // Every fourth DPC section and every eighth thread section is a writer's, plus the
    // conversions that succeeded.
    assert!(outcome.exclusive >= 175_000, "{outcome:?}");
}
