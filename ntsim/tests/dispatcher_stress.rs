//! Stress: producers and consumers handing items to each other through semaphores, events and
//! `WaitAny` waits on an 8-processor machine, one million hand-offs per test, with exact
//! counts. A lost wake-up leaves a thread blocked forever and the test ends in the hang budget;
//! a wake-up too many shows as a count or checksum that does not add up.

mod support;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

use support::{
    dispatcher::{spawn_fn, wait_multiple, Counter, Event, Semaphore, Waitable, WAIT_0},
    join, machine, SpinLock,
};

/// Items handed over per test.
const TOTAL: usize = 1_000_000;
/// Producer and consumer threads.
const THREADS: usize = 4;
/// Bounded-buffer capacity.
const CAPACITY: i32 = 64;

/// A FIFO guarded by a `KSPIN_LOCK` (the host mutex inside only satisfies Rust; it is never
/// contended because the spin lock is held around every access).
#[derive(Clone)]
struct Ring {
    lock: SpinLock,
    items: Arc<Mutex<VecDeque<u64>>>,
}

impl Ring {
    fn new() -> Self {
        Self {
            lock: SpinLock::new(),
            items: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    fn push(&self, value: u64) {
        let old = self.lock.acquire();
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(value);
        self.lock.release(old);
    }

    fn pop(&self) -> u64 {
        let old = self.lock.acquire();
        let value = self
            .items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        self.lock.release(old);
        value.expect("a semaphore count promised an item")
    }
}

/// The value producer `p` sends as its `i`th item.
const fn item(p: usize, i: usize) -> u64 {
    ((p as u64) << 32) | i as u64
}

/// Sum of every item all producers send.
fn expected_sum(per_producer: usize) -> u64 {
    (0..THREADS)
        .flat_map(|p| (0..per_producer).map(move |i| item(p, i)))
        .sum()
}

#[test]
fn semaphores_and_events_hand_off_a_million_items_exactly() {
    // Half the items go through a bounded buffer counted by two semaphores; the other half
    // through single-slot mailboxes handed back and forth with two synchronization events.
    // Consumers end on a notification event set by whoever takes the last item.
    let m = machine(8);
    let buffered = TOTAL / 2 / THREADS;
    let mailed = TOTAL / 2 / THREADS;
    let (count, sum) = m
        .run(move || {
            let slots = Semaphore::new(CAPACITY, CAPACITY);
            let filled = Semaphore::new(0, CAPACITY);
            let ring = Ring::new();
            let consumed = Counter::new();
            let checksum = Arc::new(Mutex::new(0_u64));
            let all_done = Event::notification(false);
            let mut handles = Vec::new();
            for p in 0..THREADS {
                let ring = ring.clone();
                handles.push(spawn_fn(move || {
                    for i in 0..buffered {
                        assert_eq!(slots.wait(None), WAIT_0);
                        ring.push(item(p, i));
                        filled.release(1);
                    }
                }));
            }
            for _ in 0..THREADS {
                let ring = ring.clone();
                let checksum = Arc::clone(&checksum);
                handles.push(spawn_fn(move || {
                    let mut sum = 0_u64;
                    let mut count = 0;
                    loop {
                        let status =
                            wait_multiple(&[filled.addr(), all_done.addr()], false, None, false);
                        if status == WAIT_0 + 1 {
                            break;
                        }
                        assert_eq!(status, WAIT_0);
                        sum += ring.pop();
                        slots.release(1);
                        count += 1;
                        if consumed.bump() == buffered * THREADS {
                            all_done.set();
                        }
                    }
                    *checksum.lock().unwrap_or_else(PoisonError::into_inner) += sum;
                    assert!(count <= buffered * THREADS);
                }));
            }
            // Mailboxes: one per producer/consumer pair, strictly alternating.
            let mailed_count = Counter::new();
            for p in 0..THREADS {
                let slot = Counter::new();
                let full = Event::synchronization(false);
                let empty = Event::synchronization(true);
                handles.push(spawn_fn(move || {
                    for i in 0..mailed {
                        assert_eq!(empty.wait(None), WAIT_0);
                        slot.store(usize::try_from(item(p, i)).unwrap());
                        assert_eq!(full.set(), 0, "the consumer emptied it first");
                    }
                }));
                let checksum = Arc::clone(&checksum);
                handles.push(spawn_fn(move || {
                    let mut sum = 0_u64;
                    for _ in 0..mailed {
                        assert_eq!(full.wait(None), WAIT_0);
                        sum += slot.get() as u64;
                        mailed_count.bump();
                        assert_eq!(empty.set(), 0, "the producer waits for it");
                    }
                    *checksum.lock().unwrap_or_else(PoisonError::into_inner) += sum;
                }));
            }
            for handle in handles {
                join(handle);
            }
            assert_eq!(slots.state(), CAPACITY);
            assert_eq!(filled.state(), 0);
            let sum = *checksum.lock().unwrap_or_else(PoisonError::into_inner);
            (consumed.get() + mailed_count.get(), sum)
        })
        .unwrap();
    assert_eq!(count, TOTAL);
    assert_eq!(sum, expected_sum(buffered) + expected_sum(mailed));
}

#[test]
fn wait_any_over_several_lanes_hands_off_a_million_items_exactly() {
    // Producer p feeds lane p (its own ring, `space[p]` and `ready[p]` semaphores). Consumers
    // take from whichever lane WaitAny reports (five objects: a wait-block array), and stop on
    // a notification event.
    let m = machine(8);
    let per_lane = TOTAL / THREADS;
    let (per_lane_counts, sum) = m
        .run(move || {
            let space: Vec<Semaphore> = (0..THREADS)
                .map(|_| Semaphore::new(CAPACITY, CAPACITY))
                .collect();
            let ready: Vec<Semaphore> = (0..THREADS).map(|_| Semaphore::new(0, CAPACITY)).collect();
            let rings: Vec<Ring> = (0..THREADS).map(|_| Ring::new()).collect();
            let stop = Event::notification(false);
            let taken = Counter::new();
            let lane_counts: Vec<Counter> = (0..THREADS).map(|_| Counter::new()).collect();
            let checksum = Arc::new(Mutex::new(0_u64));
            let mut handles = Vec::new();
            for p in 0..THREADS {
                let (space, ready, ring) = (space[p], ready[p], rings[p].clone());
                handles.push(spawn_fn(move || {
                    for i in 0..per_lane {
                        assert_eq!(space.wait(None), WAIT_0);
                        ring.push(item(p, i));
                        ready.release(1);
                    }
                }));
            }
            let mut objects: Vec<usize> = ready.iter().map(|s| s.addr()).collect();
            objects.push(stop.addr());
            for _ in 0..THREADS {
                let (space, rings, objects) = (space.clone(), rings.clone(), objects.clone());
                let (lane_counts, checksum) = (lane_counts.clone(), Arc::clone(&checksum));
                handles.push(spawn_fn(move || {
                    let mut sum = 0_u64;
                    let mut mine = vec![0_usize; THREADS];
                    loop {
                        let status = wait_multiple(&objects, false, None, true);
                        let lane = usize::try_from(status - WAIT_0).unwrap();
                        if lane == THREADS {
                            break;
                        }
                        assert!(lane < THREADS, "status {status:#x}");
                        sum += rings[lane].pop();
                        space[lane].release(1);
                        mine[lane] += 1;
                        if taken.bump() == TOTAL {
                            stop.set();
                        }
                    }
                    for (lane, n) in mine.into_iter().enumerate() {
                        lane_counts[lane].add(n);
                    }
                    *checksum.lock().unwrap_or_else(PoisonError::into_inner) += sum;
                }));
            }
            for handle in handles {
                join(handle);
            }
            for p in 0..THREADS {
                assert_eq!(space[p].state(), CAPACITY);
                assert_eq!(ready[p].state(), 0);
            }
            let counts: Vec<usize> = lane_counts.iter().map(|c| c.get()).collect();
            let sum = *checksum.lock().unwrap_or_else(PoisonError::into_inner);
            (counts, sum)
        })
        .unwrap();
    assert_eq!(per_lane_counts, vec![per_lane; THREADS]);
    assert_eq!(sum, expected_sum(per_lane));
}
