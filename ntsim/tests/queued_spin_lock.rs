//! In-stack queued spin locks (ddi.md 2, 11.1, 12.2, 13.3): IRQL on return of each variant,
//! first-come first-served hand-off, the handle rules, no mixing with the ordinary routines,
//! the other verifier rules, and exclusion under a stress from system threads and DPCs.

mod support;

use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::Duration,
};

use ntsim::{
    bugcheck::{code, verifier},
    wdk_sys::{KDPC, KLOCK_QUEUE_HANDLE, PVOID},
    BugCheck,
};
use support::{
    expect_bugcheck, irql, lower, machine, raise,
    spin_families::{
        current_cpu, queued, roomy_machine, stress, wait_until, Arena, Handle, Plan,
        SpinLockExtras, Worker,
    },
    Dpc, SpinLock,
};

const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn raising_acquire_saves_the_old_irql_in_the_handle_and_release_restores_it() {
    let m = machine(2);
    let l = SpinLock::new();
    let seen = m
        .run(move || {
            let mut out = Vec::new();
            for start in [0, 1, 2] {
                if start > 0 {
                    raise(start);
                }
                let h = Handle::new();
                queued::acquire(l, h.ptr());
                out.push((start, irql(), h.old_irql()));
                queued::release(h.ptr());
                out.push((start, irql(), 0xFF));
                lower(0);
            }
            out
        })
        .expect("no bug check");
    assert_eq!(
        seen,
        [
            (0, 2, 0),
            (0, 0, 0xFF),
            (1, 2, 1),
            (1, 1, 0xFF),
            (2, 2, 2),
            (2, 2, 0xFF)
        ]
    );
}

#[test]
fn at_dpc_level_variants_leave_irql_at_dispatch() {
    let m = machine(2);
    let l = SpinLock::new();
    let seen = m
        .run(move || {
            raise(2);
            let mut h = KLOCK_QUEUE_HANDLE::default();
            queued::acquire_at_dpc(l, &raw mut h);
            let inside = irql();
            queued::release_from_dpc(&raw mut h);
            let after = irql();
            lower(0);
            (inside, after)
        })
        .expect("no bug check");
    assert_eq!(seen, (2, 2));
}

#[test]
fn for_dpc_variants_raise_from_passive_and_keep_dispatch() {
    let m = machine(2);
    let l = SpinLock::new();
    let seen = m
        .run(move || {
            let h = Handle::new();
            queued::acquire_for_dpc(l, h.ptr());
            let from_passive = (irql(), h.old_irql());
            queued::release_for_dpc(h.ptr());
            let back = irql();
            raise(2);
            queued::acquire_for_dpc(l, h.ptr());
            let from_dispatch = (irql(), h.old_irql());
            queued::release_for_dpc(h.ptr());
            let stays = irql();
            lower(0);
            (from_passive, back, from_dispatch, stays)
        })
        .expect("no bug check");
    assert_eq!(seen, ((2, 0), 0, (2, 2), 2));
}

#[test]
fn queued_hold_is_visible_to_ke_test_spin_lock() {
    let m = machine(2);
    let l = SpinLock::new();
    let seen = m
        .run(move || {
            let mut h = KLOCK_QUEUE_HANDLE::default();
            queued::acquire(l, &raw mut h);
            let held = l.test();
            queued::release(&raw mut h);
            (held, l.test())
        })
        .expect("no bug check");
    assert_eq!(seen, (false, true));
}

/// What the FIFO test shares with its waiters.
struct Fifo {
    lock: SpinLock,
    /// Waiter i's handle.
    handles: Vec<Handle>,
    /// Waiter i's processor (+1 once known).
    cpus: Vec<AtomicU64>,
    /// Set when waiter i may start.
    go: Vec<AtomicU64>,
    /// Grant order: `order[k]` = 1 + the waiter that got the lock k-th.
    order: Vec<AtomicU64>,
    next: AtomicUsize,
    finished: AtomicUsize,
}

impl Fifo {
    fn record(&self, waiter: usize) {
        let slot = self.next.load(Ordering::Relaxed);
        self.order[slot].store(waiter as u64 + 1, Ordering::Relaxed);
        self.next.store(slot + 1, Ordering::Relaxed);
    }
}

struct WaiterArg {
    fifo: &'static Fifo,
    index: usize,
}

/// A thread waiter: raises to `DISPATCH_LEVEL` (so its processor is known), then queues with
/// the raising acquire.
unsafe extern "C" fn thread_waiter(context: PVOID) {
    // SAFETY: the context is a leaked WaiterArg.
    let arg = unsafe { &*context.cast::<WaiterArg>() };
    wait_until("the start signal", PATIENCE, || {
        arg.fifo.go[arg.index].load(Ordering::Acquire) != 0
    });
    let old = raise(2);
    arg.fifo.cpus[arg.index].store(u64::from(current_cpu()) + 1, Ordering::Release);
    let h = arg.fifo.handles[arg.index];
    queued::acquire(arg.fifo.lock, h.ptr());
    arg.fifo.record(arg.index);
    queued::release(h.ptr());
    lower(old);
    arg.fifo.finished.fetch_add(1, Ordering::Release);
}

/// A DPC waiter: queues with the `AtDpcLevel` acquire.
unsafe extern "C" fn dpc_waiter(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // SAFETY: the context is a leaked WaiterArg.
    let arg = unsafe { &*context.cast::<WaiterArg>() };
    arg.fifo.cpus[arg.index].store(u64::from(current_cpu()) + 1, Ordering::Release);
    let h = arg.fifo.handles[arg.index];
    queued::acquire_at_dpc(arg.fifo.lock, h.ptr());
    arg.fifo.record(arg.index);
    queued::release_from_dpc(h.ptr());
    arg.fifo.finished.fetch_add(1, Ordering::Release);
}

#[test]
fn waiters_get_the_lock_in_the_order_they_queued() {
    // The holder keeps the lock while waiters (threads and DPCs, alternately) arrive one at a
    // time; each is started only once its predecessor is linked in the queue (the
    // predecessor's LockQueue.Next names its handle, ddi.md 2 rule 1). The grant order must be
    // the arrival order (2 rule 4), whoever the waiters are.
    const WAITERS: usize = 6;
    let m = roomy_machine(8);
    let order = m
        .run(|| {
            let fifo: &'static Fifo = Box::leak(Box::new(Fifo {
                lock: SpinLock::new(),
                handles: (0..WAITERS).map(|_| Handle::new()).collect(),
                cpus: (0..WAITERS).map(|_| AtomicU64::new(0)).collect(),
                go: (0..WAITERS).map(|_| AtomicU64::new(0)).collect(),
                order: (0..WAITERS).map(|_| AtomicU64::new(0)).collect(),
                next: AtomicUsize::new(0),
                finished: AtomicUsize::new(0),
            }));
            // Threads are created first (PsCreateSystemThread needs PASSIVE_LEVEL) and wait
            // for their start signal.
            let args: Vec<usize> = (0..WAITERS)
                .map(|index| {
                    std::ptr::from_mut(Box::leak(Box::new(WaiterArg { fifo, index }))) as usize
                })
                .collect();
            let threads: Vec<_> = (0..WAITERS)
                .step_by(2)
                .map(|index| support::spawn(thread_waiter, args[index]))
                .collect();
            let holder = Handle::new();
            queued::acquire(fifo.lock, holder.ptr());
            let mut busy = vec![current_cpu()];
            let mut previous = holder;
            for (index, &context) in args.iter().enumerate() {
                if index % 2 == 0 {
                    fifo.go[index].store(1, Ordering::Release);
                } else {
                    let cpu = (0..8).rev().find(|c| !busy.contains(c)).unwrap_or(0);
                    let dpc = Dpc::new(dpc_waiter, context);
                    assert_eq!(dpc.target(u8::try_from(cpu).unwrap_or(0)), 0);
                    assert!(dpc.insert());
                }
                wait_until("the waiter's processor", PATIENCE, || {
                    fifo.cpus[index].load(Ordering::Acquire) != 0
                });
                busy.push(u32::try_from(fifo.cpus[index].load(Ordering::Acquire) - 1).unwrap_or(0));
                let mine = fifo.handles[index].context();
                wait_until("the waiter to queue", PATIENCE, || previous.next() == mine);
                previous = fifo.handles[index];
            }
            queued::release(holder.ptr());
            for thread in threads {
                support::join(thread);
            }
            wait_until("every waiter", PATIENCE, || {
                fifo.finished.load(Ordering::Acquire) == WAITERS
            });
            support::flush_dpcs();
            fifo.order
                .iter()
                .map(|o| o.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        })
        .expect("no bug check");
    assert_eq!(order, (1..=WAITERS as u64).collect::<Vec<_>>());
}

#[test]
fn a_handle_in_use_passed_to_another_acquire_is_0xc4_0x1008() {
    let m = machine(2);
    let (first, second) = (SpinLock::new(), SpinLock::new());
    let h = Handle::new();
    let b = expect_bugcheck(&m, move || {
        queued::acquire(first, h.ptr());
        queued::acquire_at_dpc(second, h.ptr());
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(
        b.params,
        [
            verifier::ACQUIRE_API_MISMATCH,
            second.addr(),
            h.addr(),
            first.addr()
        ]
    );
}

#[test]
fn a_handle_in_use_by_another_context_is_0xc4_0x1008() {
    // One handle shared between contexts (e.g. kept in a device extension): a DPC holds a lock
    // with it, this thread passes it to an acquire of another lock.
    unsafe extern "C" fn hold_with(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        // SAFETY: the context is the leaked [lock, handle, flag] triple below.
        let shared = unsafe { &*context.cast::<[AtomicUsize; 3]>() };
        let l = SpinLock::from_addr(shared[0].load(Ordering::Relaxed));
        let h = Handle::from_addr(shared[1].load(Ordering::Relaxed));
        queued::acquire_at_dpc(l, h.ptr());
        shared[2].store(1, Ordering::Release);
        support::stall(2_000_000);
    }
    let m = roomy_machine(4);
    let (first, second, h) = (SpinLock::new(), SpinLock::new(), Handle::new());
    let b = expect_bugcheck(&m, move || {
        let shared: &'static [AtomicUsize; 3] = Box::leak(Box::new([
            AtomicUsize::new(first.context()),
            AtomicUsize::new(h.context()),
            AtomicUsize::new(0),
        ]));
        let dpc = Dpc::new(hold_with, std::ptr::from_ref(shared) as usize);
        assert!(dpc.insert());
        wait_until("the DPC to hold the lock", PATIENCE, || {
            shared[2].load(Ordering::Acquire) == 1
        });
        queued::acquire(second, h.ptr());
    });
    assert_eq!(
        b.params,
        [
            verifier::ACQUIRE_API_MISMATCH,
            second.addr(),
            h.addr(),
            first.addr()
        ]
    );
}

#[test]
fn release_with_a_handle_never_filled_is_0xc4_0x1009() {
    let m = machine(2);
    let h = Handle::new();
    let b = expect_bugcheck(&m, move || {
        raise(2);
        queued::release(h.ptr());
    });
    assert_eq!(b.params, [verifier::RELEASE_API_MISMATCH, 0, h.addr(), 0]);
}

#[test]
fn release_with_a_handle_already_released_is_0xc4_0x1009() {
    let m = machine(2);
    let l = SpinLock::new();
    let h = Handle::new();
    let b = expect_bugcheck(&m, move || {
        queued::acquire(l, h.ptr());
        queued::release(h.ptr());
        raise(2);
        queued::release(h.ptr());
    });
    assert_eq!(
        b.params,
        [verifier::RELEASE_API_MISMATCH, l.addr(), h.addr(), 0]
    );
}

#[test]
fn release_with_a_handle_filled_for_another_lock_is_0xc4_0x1009() {
    let m = machine(2);
    let (filled_for, other) = (SpinLock::new(), SpinLock::new());
    let h = Handle::new();
    let b = expect_bugcheck(&m, move || {
        queued::acquire(filled_for, h.ptr());
        h.set_lock_field(other);
        queued::release(h.ptr());
    });
    assert_eq!(
        b.params,
        [
            verifier::RELEASE_API_MISMATCH,
            other.addr(),
            h.addr(),
            filled_for.addr()
        ]
    );
}

#[test]
fn release_with_a_handle_filled_by_another_context_is_0xc4_0x1004() {
    unsafe extern "C" fn hold_with(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        // SAFETY: the context is the leaked [lock, handle, flag] triple below.
        let shared = unsafe { &*context.cast::<[AtomicUsize; 3]>() };
        let l = SpinLock::from_addr(shared[0].load(Ordering::Relaxed));
        let h = Handle::from_addr(shared[1].load(Ordering::Relaxed));
        queued::acquire_at_dpc(l, h.ptr());
        shared[2].store(1, Ordering::Release);
        support::stall(2_000_000);
    }
    let m = roomy_machine(4);
    let (l, h) = (SpinLock::new(), Handle::new());
    let b = expect_bugcheck(&m, move || {
        let shared: &'static [AtomicUsize; 3] = Box::leak(Box::new([
            AtomicUsize::new(l.context()),
            AtomicUsize::new(h.context()),
            AtomicUsize::new(0),
        ]));
        let dpc = Dpc::new(hold_with, std::ptr::from_ref(shared) as usize);
        assert!(dpc.insert());
        wait_until("the DPC to hold the lock", PATIENCE, || {
            shared[2].load(Ordering::Acquire) == 1
        });
        raise(2);
        queued::release_from_dpc(h.ptr());
    });
    assert_eq!(
        b.params[..2],
        [verifier::RELEASED_BY_OTHER_THREAD, l.addr()]
    );
    assert!(b.params[2] != 0 && b.params[3] != 0 && b.params[2] != b.params[3]);
    assert!(b.message.contains("DPC runner"), "{}", b.message);
}

#[test]
fn nested_queued_locks_released_out_of_order_are_0xc4_0x1003() {
    let m = machine(2);
    let (outer, inner) = (SpinLock::new(), SpinLock::new());
    let b = expect_bugcheck(&m, move || {
        let (ho, hi) = (Handle::new(), Handle::new());
        queued::acquire(outer, ho.ptr());
        queued::acquire(inner, hi.ptr());
        queued::release(ho.ptr());
    });
    assert_eq!(
        b.params,
        [
            verifier::RELEASED_OUT_OF_ORDER,
            outer.addr(),
            inner.addr(),
            0
        ]
    );
}

#[test]
fn nested_queued_locks_released_in_order_restore_each_irql() {
    let m = machine(2);
    let (outer, inner) = (SpinLock::new(), SpinLock::new());
    let seen = m
        .run(move || {
            let (ho, hi) = (Handle::new(), Handle::new());
            queued::acquire(outer, ho.ptr());
            queued::acquire(inner, hi.ptr());
            queued::release(hi.ptr());
            let between = irql();
            queued::release(ho.ptr());
            (hi.old_irql(), between, irql())
        })
        .expect("no bug check");
    assert_eq!(seen, (2, 2, 0));
}

#[test]
fn recursive_acquisition_is_0xf() {
    let m = machine(2);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        queued::acquire(l, Handle::new().ptr());
        queued::acquire_at_dpc(l, Handle::new().ptr());
    });
    assert_eq!(b.code, code::SPIN_LOCK_ALREADY_OWNED);
    assert_eq!(b.params, [l.addr(), 0, 0, 0]);
}

/// Takes the lock in a DPC that keeps it for a while (through the queued routines when
/// `queued`, else the ordinary ones), then runs `then` on this thread once the DPC holds it.
fn held_elsewhere(queued_holder: bool, then: fn(SpinLock)) -> (SpinLock, BugCheck) {
    unsafe extern "C" fn holder(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        // SAFETY: the context is the leaked [lock, queued, flag] triple below.
        let shared = unsafe { &*context.cast::<[AtomicUsize; 3]>() };
        let l = SpinLock::from_addr(shared[0].load(Ordering::Relaxed));
        if shared[1].load(Ordering::Relaxed) == 1 {
            queued::acquire_at_dpc(l, Handle::new().ptr());
        } else {
            l.acquire_at_dpc();
        }
        shared[2].store(1, Ordering::Release);
        support::stall(2_000_000);
    }
    let m = roomy_machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        let shared: &'static [AtomicUsize; 3] = Box::leak(Box::new([
            AtomicUsize::new(l.context()),
            AtomicUsize::new(usize::from(queued_holder)),
            AtomicUsize::new(0),
        ]));
        let dpc = Dpc::new(holder, std::ptr::from_ref(shared) as usize);
        assert!(dpc.insert());
        wait_until("the DPC to hold the lock", PATIENCE, || {
            shared[2].load(Ordering::Acquire) == 1
        });
        then(l);
    });
    (l, b)
}

#[test]
fn queued_acquire_of_a_lock_held_through_the_ordinary_routines_is_0xc4_0x1008() {
    let (l, b) = held_elsewhere(false, |l| {
        queued::acquire(l, Handle::new().ptr());
    });
    assert_eq!(b.params, [verifier::ACQUIRE_API_MISMATCH, l.addr(), 0, 0]);
}

#[test]
fn ordinary_acquire_of_a_lock_held_through_the_queued_routines_is_0xc4_0x1008() {
    let (l, b) = held_elsewhere(true, |l| {
        l.acquire();
    });
    assert_eq!(b.params, [verifier::ACQUIRE_API_MISMATCH, l.addr(), 0, 0]);
}

#[test]
fn ordinary_try_acquire_of_a_queued_lock_is_0xc4_0x1008() {
    let (l, b) = held_elsewhere(true, |l| {
        raise(2);
        l.try_at_dpc();
    });
    assert_eq!(b.params, [verifier::ACQUIRE_API_MISMATCH, l.addr(), 0, 0]);
}

#[test]
fn ordinary_release_of_a_queued_hold_is_0xc4_0x1009() {
    let m = machine(2);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        queued::acquire(l, Handle::new().ptr());
        l.release(0);
    });
    assert_eq!(b.params, [verifier::RELEASE_API_MISMATCH, l.addr(), 0, 0]);
}

#[test]
fn queued_release_of_an_ordinary_hold_is_0xc4_0x1009() {
    let m = machine(2);
    let l = SpinLock::new();
    let h = Handle::new();
    let b = expect_bugcheck(&m, move || {
        l.acquire();
        queued::release(h.ptr());
    });
    assert_eq!(b.params, [verifier::RELEASE_API_MISMATCH, 0, h.addr(), 0]);
}

#[test]
fn release_with_the_wrong_variant_is_0xc4_0x1009() {
    for for_dpc in [false, true] {
        let m = machine(2);
        let l = SpinLock::new();
        let h = Handle::new();
        let b = expect_bugcheck(&m, move || {
            queued::acquire(l, h.ptr());
            if for_dpc {
                queued::release_for_dpc(h.ptr());
            } else {
                queued::release_from_dpc(h.ptr());
            }
        });
        assert_eq!(
            b.params,
            [verifier::RELEASE_API_MISMATCH, l.addr(), h.addr(), 0]
        );
    }
}

#[test]
fn raising_acquires_above_dispatch_are_0xc4_0x42() {
    for for_dpc in [false, true] {
        let m = machine(2);
        let l = SpinLock::new();
        let b = expect_bugcheck(&m, move || {
            raise(3);
            if for_dpc {
                queued::acquire_for_dpc(l, Handle::new().ptr());
            } else {
                queued::acquire(l, Handle::new().ptr());
            }
        });
        assert_eq!(
            b.params,
            [verifier::ACQUIRE_SPIN_LOCK_ABOVE_DISPATCH, 3, l.addr(), 0]
        );
    }
}

#[test]
fn at_dpc_level_acquire_below_dispatch_is_0xc4_0x40() {
    let m = machine(2);
    let l = SpinLock::new();
    let h = Handle::new();
    let b = expect_bugcheck(&m, move || queued::acquire_at_dpc(l, h.ptr()));
    assert_eq!(
        b.params,
        [
            verifier::ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH,
            0,
            h.addr(),
            0
        ]
    );
}

#[test]
fn at_dpc_level_acquire_above_dispatch_is_the_irql_dispatch_rule() {
    let m = machine(2);
    let l = SpinLock::new();
    let h = Handle::new();
    let b = expect_bugcheck(&m, move || {
        raise(3);
        queued::acquire_at_dpc(l, h.ptr());
    });
    assert_eq!(b.params, [verifier::RULE_IRQL_DISPATCH, 3, h.addr(), 0]);
}

#[test]
fn releases_below_dispatch_are_0xc4_0x32() {
    for variant in 0..3 {
        let m = machine(2);
        let l = SpinLock::new();
        let h = Handle::new();
        let b = expect_bugcheck(&m, move || {
            match variant {
                0 => queued::acquire(l, h.ptr()),
                1 => {
                    raise(2);
                    queued::acquire_at_dpc(l, h.ptr());
                }
                _ => queued::acquire_for_dpc(l, h.ptr()),
            }
            lower(0);
            match variant {
                0 => queued::release(h.ptr()),
                1 => queued::release_from_dpc(h.ptr()),
                _ => queued::release_for_dpc(h.ptr()),
            }
        });
        assert_eq!(
            b.params,
            [verifier::RELEASE_SPIN_LOCK_BAD_IRQL, 0, h.addr(), 0],
            "variant {variant}"
        );
    }
}

#[test]
fn from_dpc_level_release_above_dispatch_is_the_irql_dispatch_rule() {
    let m = machine(2);
    let l = SpinLock::new();
    let h = Handle::new();
    let b = expect_bugcheck(&m, move || {
        raise(2);
        queued::acquire_at_dpc(l, h.ptr());
        raise(3);
        queued::release_from_dpc(h.ptr());
    });
    assert_eq!(b.params, [verifier::RULE_IRQL_DISPATCH, 3, h.addr(), 0]);
}

#[test]
fn system_thread_ending_with_a_queued_lock_is_0xc4_0x100a() {
    let m = machine(2);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        queued::acquire(l, Handle::new().ptr());
    });
    assert_eq!(
        b.params[..2],
        [verifier::THREAD_TERMINATED_OWNING_LOCK, l.addr()]
    );
}

#[test]
fn dpc_returning_with_a_queued_lock_is_0x133() {
    unsafe extern "C" fn keep(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
        queued::acquire_at_dpc(SpinLock::from_addr(context as usize), Handle::new().ptr());
    }
    let m = machine(2);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        assert!(Dpc::new(keep, l.context()).insert());
        support::flush_dpcs();
    });
    assert_eq!(b.code, code::DPC_WATCHDOG_VIOLATION);
    assert_eq!(b.params, [0, l.addr(), 0, 0]);
}

#[test]
fn a_queued_lock_held_forever_ends_in_0x133_naming_the_holder() {
    unsafe extern "C" fn hog(context: PVOID) {
        queued::acquire(SpinLock::from_addr(context as usize), Handle::new().ptr());
        loop {
            support::stall(100);
        }
    }
    let m = machine(4);
    let l = SpinLock::new();
    let b = expect_bugcheck(&m, move || {
        let _thread = support::spawn(hog, l.context());
        wait_until("the hog", PATIENCE, || !l.test());
        queued::acquire(l, Handle::new().ptr());
    });
    assert_eq!(b.code, code::DPC_WATCHDOG_VIOLATION);
    assert_eq!((b.params[0], b.params[3]), (1, l.addr()));
    assert!(
        b.message
            .contains("held through the in-stack queued routines by system thread"),
        "{}",
        b.message
    );
}

/// Threads rotate the raising and the `ForDpc` acquire; DPCs the `AtDpcLevel` and `ForDpc` ones;
/// every section uses a fresh handle on its stack.
fn queued_section(arena: &Arena, worker: Worker, n: u64) {
    let l = SpinLock::from_addr(arena.lock);
    let mut h = KLOCK_QUEUE_HANDLE::default();
    match (worker, n % 2 == 1) {
        (_, true) => {
            queued::acquire_for_dpc(l, &raw mut h);
            arena.exclusive();
            queued::release_for_dpc(&raw mut h);
        }
        (Worker::Thread(_), false) => {
            queued::acquire(l, &raw mut h);
            arena.exclusive();
            queued::release(&raw mut h);
        }
        (Worker::Dpc(_), false) => {
            queued::acquire_at_dpc(l, &raw mut h);
            arena.exclusive();
            queued::release_from_dpc(&raw mut h);
        }
    }
}

#[test]
fn stress_queued_lock_from_threads_and_dpcs() {
    let plan = Plan {
        cpus: 8,
        threads: 4,
        per_thread: 150_000,
        dpcs: 4,
        per_dpc: 100_000,
        make_lock: || SpinLock::new().context(),
        section: queued_section,
    };
    let outcome = stress(plan);
    assert_eq!(outcome.violations, 0);
    assert_eq!(outcome.exclusive, 1_000_000);
    assert_eq!(outcome.counter, 1_000_000);
}
