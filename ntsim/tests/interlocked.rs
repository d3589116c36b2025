//! Interlocked lists and `SList`s (ddi.md 10.3): semantics, and exact counts under concurrency
//! from system threads and DPCs.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use ntsim::{
    bugcheck::code,
    wdk_sys::{ntddk, KDPC, PVOID},
};
use support::{
    expect_bugcheck, machine, raise,
    runtime::{InterlockedList, SList},
    Dpc, SpinLock,
};

#[test]
fn interlocked_list_insert_and_remove() {
    let m = machine(2);
    m.run(|| {
        let list = InterlockedList::new();
        assert_eq!(list.pop_front(), None, "empty");
        assert_eq!(list.push_back(1), None, "was empty: NULL");
        assert_eq!(list.push_back(2), Some(1), "the previous last entry");
        assert_eq!(list.push_front(0), Some(1), "the previous first entry");
        assert_eq!(list.pop_front(), Some(0));
        assert_eq!(list.pop_front(), Some(1));
        assert_eq!(list.pop_front(), Some(2));
        assert_eq!(list.pop_front(), None);
        // Callable at raised IRQL; the IRQL is unchanged afterwards.
        let old = raise(2);
        assert_eq!(list.push_front(7), None);
        assert_eq!(support::irql(), 2);
        support::lower(old);
        assert_eq!(list.pop_front(), Some(7));
        assert_eq!(
            support::irql(),
            0,
            "raised to DISPATCH_LEVEL only inside the call"
        );
        // The lock is free again after every call.
        let lock = SpinLock::from_addr(list.lock);
        let old = lock.acquire();
        lock.release(old);
    })
    .expect("no bug check");
}

#[test]
fn interlocked_list_with_its_lock_already_held_by_the_caller_is_0xf() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        let list = InterlockedList::new();
        let old = SpinLock::from_addr(list.lock).acquire();
        list.push_back(1);
        old
    });
    assert_eq!(b.code, code::SPIN_LOCK_ALREADY_OWNED);
}

/// [list head address, list lock address, pushed, popped]
type Shared = [AtomicU64; 4];

const PER_THREAD: u64 = 300;
const PER_DPC: u64 = 100;

fn list_of(shared: &Shared) -> InterlockedList {
    InterlockedList::from_parts(
        shared[0].load(Ordering::Acquire),
        shared[1].load(Ordering::Acquire),
    )
}

unsafe extern "C" fn list_worker(context: PVOID) {
    // SAFETY: a leaked Shared.
    let shared = unsafe { &*(context as *const Shared) };
    let list = list_of(shared);
    for i in 0..PER_THREAD {
        if i % 2 == 0 {
            list.push_back(i);
        } else {
            list.push_front(i);
        }
        shared[2].fetch_add(1, Ordering::AcqRel);
        if i % 3 == 0 && list.pop_front().is_some() {
            shared[3].fetch_add(1, Ordering::AcqRel);
        }
    }
}

unsafe extern "C" fn list_dpc(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // SAFETY: a leaked Shared.
    let shared = unsafe { &*(context as *const Shared) };
    let list = list_of(shared);
    for i in 0..PER_DPC {
        list.push_back(i);
        shared[2].fetch_add(1, Ordering::AcqRel);
        if list.pop_front().is_some() {
            shared[3].fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[test]
fn interlocked_list_counts_are_exact_under_threads_and_dpcs() {
    let m = machine(4);
    m.run(|| {
        let list = InterlockedList::new();
        let (head, lock) = list.parts();
        let shared: &'static Shared = Box::leak(Box::new([
            AtomicU64::new(head),
            AtomicU64::new(lock),
            AtomicU64::new(0),
            AtomicU64::new(0),
        ]));
        let context = std::ptr::from_ref(shared) as usize;
        let threads: Vec<_> = (0..3)
            .map(|_| support::spawn(list_worker, context))
            .collect();
        let dpcs: Vec<Dpc> = (0..4_u8)
            .map(|cpu| {
                let d = Dpc::new(list_dpc, context);
                assert_eq!(d.target(cpu), 0);
                d
            })
            .collect();
        for d in &dpcs {
            assert!(d.insert());
        }
        for t in threads {
            support::join(t);
        }
        support::flush_dpcs();
        let pushed = shared[2].load(Ordering::Acquire);
        let popped = shared[3].load(Ordering::Acquire);
        assert_eq!(pushed, 3 * PER_THREAD + 4 * PER_DPC);
        let mut left = 0;
        while list.pop_front().is_some() {
            left += 1;
        }
        assert_eq!(popped + left, pushed, "no entry lost or duplicated");
    })
    .expect("no bug check");
}

#[test]
fn slist_push_pop_flush_and_depth() {
    let m = machine(2);
    m.run(|| {
        let s = SList::new();
        assert_eq!(s.depth(), 0);
        assert_eq!(s.pop(), None);
        assert_eq!(s.push(1), None, "was empty: NULL");
        assert_eq!(s.push(2), Some(1));
        assert_eq!(s.push(3), Some(2));
        assert_eq!(s.depth(), 3);
        assert_eq!(s.pop(), Some(3), "LIFO");
        assert_eq!(s.depth(), 2);
        assert_eq!(s.flush(), vec![2, 1], "the detached chain, first to last");
        assert_eq!(s.depth(), 0);
        assert_eq!(s.pop(), None);
        assert!(s.flush().is_empty());
    })
    .expect("no bug check");
}

#[test]
fn a_misaligned_slist_entry_is_0xc4_0xe1() {
    let m = machine(2);
    let b = expect_bugcheck(&m, || {
        let s = SList::new();
        let storage = Box::leak(Box::new([0_u64; 4]));
        let misaligned = (storage.as_mut_ptr() as usize | 8) as *mut ntsim::wdk_sys::SLIST_ENTRY;
        // SAFETY: deliberately misaligned (8 mod 16) but inside leaked storage.
        let _ = unsafe { ntddk::ExpInterlockedPushEntrySList(s.raw(), misaligned) };
    });
    assert_eq!(b.code, code::DRIVER_VERIFIER_DETECTED_VIOLATION);
    assert_eq!(b.params[0], 0xE1);
    assert_eq!(b.params[1] % 16, 8);
    assert_eq!(b.params[2..], [16, 0]);
}

unsafe extern "C" fn slist_worker(context: PVOID) {
    // SAFETY: a leaked [AtomicU64; 3]: [header, pushed, popped].
    let shared = unsafe { &*(context as *const [AtomicU64; 3]) };
    let s = SList::from_addr(shared[0].load(Ordering::Acquire));
    for i in 0..PER_THREAD {
        s.push(i);
        shared[1].fetch_add(1, Ordering::AcqRel);
        if i % 2 == 0 && s.pop().is_some() {
            shared[2].fetch_add(1, Ordering::AcqRel);
        }
    }
}

unsafe extern "C" fn slist_dpc(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    // SAFETY: as in slist_worker.
    let shared = unsafe { &*(context as *const [AtomicU64; 3]) };
    let s = SList::from_addr(shared[0].load(Ordering::Acquire));
    for i in 0..PER_DPC {
        s.push(i);
        shared[1].fetch_add(1, Ordering::AcqRel);
        if s.pop().is_some() {
            shared[2].fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[test]
fn slist_counts_are_exact_under_threads_and_dpcs() {
    let m = machine(4);
    m.run(|| {
        let s = SList::new();
        let shared: &'static [AtomicU64; 3] = Box::leak(Box::new([
            AtomicU64::new(s.addr()),
            AtomicU64::new(0),
            AtomicU64::new(0),
        ]));
        let context = std::ptr::from_ref(shared) as usize;
        let threads: Vec<_> = (0..3)
            .map(|_| support::spawn(slist_worker, context))
            .collect();
        for cpu in 0..4_u8 {
            let d = Dpc::new(slist_dpc, context);
            assert_eq!(d.target(cpu), 0);
            assert!(d.insert());
        }
        for t in threads {
            support::join(t);
        }
        support::flush_dpcs();
        let pushed = shared[1].load(Ordering::Acquire);
        let popped = shared[2].load(Ordering::Acquire);
        assert_eq!(pushed, 3 * PER_THREAD + 4 * PER_DPC);
        let depth = u64::from(s.depth());
        assert_eq!(popped + depth, pushed, "depth matches the entries left");
        let rest = s.flush();
        assert_eq!(
            rest.len() as u64,
            depth,
            "every entry left is on the chain once"
        );
        assert_eq!(s.depth(), 0);
    })
    .expect("no bug check");
}
