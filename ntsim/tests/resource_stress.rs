//! Stress: one executive resource hammered by writer and reader system threads on 8 emulated
//! processors, over a million acquisitions. Writers increment a counter with a non-atomic
//! read-modify-write under exclusive ownership (a lost update shows a broken exclusion); readers
//! check that no writer is inside while they hold it shared. A lost wake-up would leave a waiter
//! blocked forever: the run would end with `HostError::Hung` instead of the exact counts.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use ntsim::Machine;
use support::{
    enter_critical_region, leave_critical_region, machine,
    resource::{Resource, Steps},
};

const WRITERS: u64 = 3;
const READERS: u64 = 5;
const PER_THREAD: u64 = 125_000;

/// What the threads share, leaked so every system thread can reach it.
struct Shared {
    resource: Resource,
    start: Steps,
    /// Incremented non-atomically (load, then store) by writers.
    counter: AtomicU64,
    writers_inside: AtomicU64,
    readers_inside: AtomicU64,
    /// Times a thread found the other kind inside (must stay 0).
    violations: AtomicU64,
    acquisitions: AtomicU64,
    /// Most readers seen inside together (shows sharing happened; not asserted).
    max_readers: AtomicU64,
}

fn writer(s: &'static Shared, t: u64) -> u64 {
    s.start.wait(1);
    let r = s.resource;
    for i in 0..PER_THREAD {
        let helper = (i + t).is_multiple_of(3);
        if helper {
            r.enter_region_exclusive();
        } else {
            enter_critical_region();
            assert!(r.exclusive(true));
        }
        if s.writers_inside.fetch_add(1, Ordering::AcqRel) != 0
            || s.readers_inside.load(Ordering::Acquire) != 0
        {
            s.violations.fetch_add(1, Ordering::Relaxed);
        }
        // Non-atomic increment: only exclusion keeps it exact.
        let value = s.counter.load(Ordering::Relaxed);
        if i.is_multiple_of(64) {
            std::thread::yield_now();
        }
        s.counter.store(value + 1, Ordering::Relaxed);
        s.writers_inside.fetch_sub(1, Ordering::AcqRel);
        if i.is_multiple_of(16) {
            // Hand the hold over to the waiting readers.
            r.convert_to_shared();
        }
        if helper {
            r.release_and_leave_region();
        } else {
            r.release();
            leave_critical_region();
        }
    }
    s.acquisitions.fetch_add(PER_THREAD, Ordering::AcqRel);
    PER_THREAD
}

fn reader(s: &'static Shared, t: u64) -> u64 {
    s.start.wait(1);
    let r = s.resource;
    for i in 0..PER_THREAD {
        let helper = (i + t).is_multiple_of(4);
        if helper {
            r.enter_region_shared();
        } else {
            enter_critical_region();
            let granted = match (i + t) % 4 {
                1 => r.shared(true),
                2 => r.shared_starve_exclusive(true),
                _ => r.shared_wait_for_exclusive(true),
            };
            assert!(granted);
        }
        let inside = s.readers_inside.fetch_add(1, Ordering::AcqRel) + 1;
        s.max_readers.fetch_max(inside, Ordering::Relaxed);
        if s.writers_inside.load(Ordering::Acquire) != 0 {
            s.violations.fetch_add(1, Ordering::Relaxed);
        }
        if i.is_multiple_of(64) {
            std::thread::yield_now();
        }
        s.readers_inside.fetch_sub(1, Ordering::AcqRel);
        if helper {
            r.release_and_leave_region();
        } else {
            r.release();
            leave_critical_region();
        }
    }
    s.acquisitions.fetch_add(PER_THREAD, Ordering::AcqRel);
    PER_THREAD
}

#[test]
fn a_million_acquisitions_on_eight_processors_keep_exclusion_and_lose_no_wake_up() {
    let m: Machine = machine(8);
    assert_eq!(m.processors(), 8);
    let s: &'static Shared = Box::leak(Box::new(Shared {
        resource: Resource::new(&m),
        start: Steps::zero(),
        counter: AtomicU64::new(0),
        writers_inside: AtomicU64::new(0),
        readers_inside: AtomicU64::new(0),
        violations: AtomicU64::new(0),
        acquisitions: AtomicU64::new(0),
        max_readers: AtomicU64::new(0),
    }));
    let done: Vec<u64> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for t in 0..WRITERS + READERS {
            let m = &m;
            handles.push(scope.spawn(move || {
                if t < WRITERS {
                    m.run(move || writer(s, t))
                } else {
                    m.run(move || reader(s, t))
                }
            }));
        }
        // Every thread is started before any begins.
        s.start.done(1);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("host thread")
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    });
    let total: u64 = done.iter().sum();
    assert!(total >= 1_000_000, "{total} acquisitions");
    assert_eq!(s.acquisitions.load(Ordering::Acquire), total);
    assert_eq!(s.violations.load(Ordering::Acquire), 0);
    assert_eq!(s.counter.load(Ordering::Acquire), WRITERS * PER_THREAD);
    // Idle at the end, and deletable.
    let r = s.resource;
    let end = m
        .run(move || (r.exclusive_waiters(), r.shared_waiters(), r.delete()))
        .expect("no bug check");
    assert_eq!(end, (0, 0, 0));
    eprintln!(
        "resource stress: {total} acquisitions, at most {} readers inside together",
        s.max_readers.load(Ordering::Relaxed)
    );
}
