//! Semantics of events, mutexes, semaphores and waits, as ddi.md section 8 states them:
//! who is released, what a satisfied wait changes, every timeout form and return code, and the
//! `Wait = TRUE` pattern of errata 2.

mod support;

use std::time::Instant;

use ntsim::wdk_sys::{KDPC, PVOID};
use support::{
    dispatcher::{
        absolute_in_ms, current_thread, relative_ms, sleep_ms, spawn_fn, thread_object,
        wait_multiple, Counter, Event, KMutex, Semaphore, Waitable, TIMEOUT, WAIT_0,
    },
    irql, join, lower, machine, raise, Dpc,
};

/// Lets threads that announced themselves reach their wait.
const SETTLE_MS: i64 = 30;

/// Spawns `n` threads that wait forever on `object` and then count themselves out.
fn waiters(n: usize, object: impl Waitable + Send + 'static, passed: Counter) -> Vec<usize> {
    let ready = Counter::new();
    let handles = (0..n)
        .map(|_| {
            spawn_fn(move || {
                ready.bump();
                assert_eq!(object.wait(None), WAIT_0);
                passed.bump();
            }) as usize
        })
        .collect();
    assert!(ready.wait_for(n));
    sleep_ms(SETTLE_MS);
    handles
}

fn join_all(handles: Vec<usize>) {
    for h in handles {
        join(h as _);
    }
}

#[test]
fn notification_event_releases_every_waiter_and_stays_signaled() {
    let m = machine(4);
    m.run(|| {
        let event = Event::notification(false);
        let passed = Counter::new();
        let handles = waiters(5, event, passed);
        assert_eq!(passed.get(), 0, "nobody passes a non-signaled event");
        assert_eq!(event.set(), 0, "previous state: not signaled");
        join_all(handles);
        assert_eq!(passed.get(), 5);
        assert_eq!(event.state(), 1, "a notification event stays signaled");
        assert_eq!(event.wait(Some(0)), WAIT_0);
        assert_eq!(event.wait(None), WAIT_0);
        assert_eq!(event.set(), 1, "previous state: signaled");
    })
    .unwrap();
}

#[test]
fn synchronization_event_releases_exactly_one_waiter_per_set() {
    let m = machine(4);
    m.run(|| {
        let event = Event::synchronization(false);
        let passed = Counter::new();
        let handles = waiters(4, event, passed);
        for released in 1..=4 {
            assert_eq!(event.set(), 0);
            assert!(passed.wait_for(released));
            sleep_ms(SETTLE_MS);
            assert_eq!(
                passed.get(),
                released,
                "one set releases exactly one waiter"
            );
            assert_eq!(event.state(), 0, "and the event resets");
        }
        join_all(handles);
        // With nobody waiting, the set leaves it signaled for the next waiter alone.
        assert_eq!(event.set(), 0);
        assert_eq!(event.state(), 1);
        assert_eq!(event.wait(Some(0)), WAIT_0);
        assert_eq!(event.state(), 0);
        assert_eq!(event.wait(Some(0)), TIMEOUT);
    })
    .unwrap();
}

#[test]
fn pulse_releases_the_current_waiters_and_leaves_the_event_reset() {
    let m = machine(4);
    m.run(|| {
        let event = Event::notification(false);
        let passed = Counter::new();
        let handles = waiters(3, event, passed);
        assert_eq!(event.pulse(), 0, "previous state");
        join_all(handles);
        assert_eq!(passed.get(), 3, "a pulse satisfies every wait it can");
        assert_eq!(event.state(), 0, "and resets the event");
        assert_eq!(event.wait(Some(0)), TIMEOUT, "later waiters see it reset");

        // A pulse with nobody waiting changes nothing.
        assert_eq!(event.pulse(), 0);
        assert_eq!(event.state(), 0);

        // A pulse of a synchronization event satisfies one wait.
        let sync = Event::synchronization(false);
        let passed = Counter::new();
        let handles = waiters(2, sync, passed);
        assert_eq!(sync.pulse(), 0);
        assert!(passed.wait_for(1));
        sleep_ms(SETTLE_MS);
        assert_eq!(passed.get(), 1);
        assert_eq!(sync.state(), 0);
        assert_eq!(sync.set(), 0);
        join_all(handles);
        assert_eq!(passed.get(), 2);

        // Pulsing a signaled event resets it and reports it was signaled.
        let signaled = Event::notification(true);
        assert_eq!(signaled.pulse(), 1);
        assert_eq!(signaled.state(), 0);
    })
    .unwrap();
}

#[test]
fn set_reset_clear_and_read_state_return_the_documented_values() {
    let m = machine(2);
    m.run(|| {
        let event = Event::notification(true);
        assert_eq!(event.state(), 1, "initialised signaled");
        assert_eq!(event.reset(), 1, "reset returns the previous state");
        assert_eq!(event.reset(), 0);
        assert_eq!(event.set(), 0);
        event.clear();
        assert_eq!(event.state(), 0);
        assert_eq!(Event::synchronization(false).state(), 0);
        // At DISPATCH_LEVEL: set, reset, clear, read and a poll are all legal.
        let old = raise(2);
        assert_eq!(event.set(), 0);
        assert_eq!(event.wait(Some(0)), WAIT_0);
        assert_eq!(event.reset(), 1);
        event.clear();
        assert_eq!(event.state(), 0);
        assert_eq!(event.wait(Some(0)), TIMEOUT);
        lower(old);
    })
    .unwrap();
}

#[test]
fn a_mutex_is_recursive_and_signaled_again_after_as_many_releases() {
    let m = machine(4);
    m.run(|| {
        let mutex = KMutex::new();
        assert_eq!(mutex.state(), 1, "initialised free (signaled)");
        assert_eq!(mutex.acquire(), WAIT_0);
        assert_eq!(mutex.state(), 0);
        assert_eq!(mutex.owner_in_memory(), current_thread());
        assert_eq!(mutex.wait(Some(0)), WAIT_0, "the owner may acquire again");
        assert_eq!(mutex.wait(Some(relative_ms(10))), WAIT_0);
        assert_eq!(mutex.state(), -2);

        // Another thread cannot take it meanwhile.
        let polled = Counter::new();
        let other = spawn_fn(move || {
            if mutex.wait(Some(0)) == TIMEOUT {
                polled.bump();
            }
        });
        join(other);
        assert_eq!(
            polled.get(),
            1,
            "owned by another thread: the poll times out"
        );

        assert_eq!(mutex.release(), -2, "release returns the previous state");
        assert_eq!(mutex.release(), -1);
        assert_eq!(mutex.state(), 0, "still owned after two of three releases");
        assert_eq!(mutex.release(), 0, "0: the mutex is now free");
        assert_eq!(mutex.state(), 1);
        assert_eq!(mutex.owner_in_memory(), 0);
    })
    .unwrap();
}

#[test]
fn a_released_mutex_goes_to_a_waiter_which_then_owns_it() {
    let m = machine(4);
    m.run(|| {
        let mutex = KMutex::new();
        let stage = Counter::new();
        assert_eq!(mutex.acquire(), WAIT_0);
        let handle = spawn_fn(move || {
            stage.bump();
            assert_eq!(mutex.acquire(), WAIT_0);
            stage.bump();
            let me = current_thread();
            assert_eq!(mutex.owner_in_memory(), me);
            // Hold it until the main thread has observed the hand-off.
            while stage.get() < 3 {
                sleep_ms(1);
            }
            assert_eq!(mutex.release(), 0);
        });
        assert!(stage.wait_for(1));
        sleep_ms(SETTLE_MS);
        assert_eq!(stage.get(), 1, "the waiter blocks while the mutex is owned");
        assert_eq!(mutex.release(), 0);
        assert!(stage.wait_for(2));
        assert_eq!(mutex.state(), 0, "the waiter owns it now");
        assert_eq!(mutex.wait(Some(0)), TIMEOUT, "so this thread does not");
        stage.bump();
        join(handle);
        assert_eq!(mutex.state(), 1);
    })
    .unwrap();
}

#[test]
fn recursive_acquires_and_releases_keep_the_apc_disable_count_balanced() {
    // Owning a KMUTEX disables normal kernel APCs; the count is restored by the final release,
    // so a thread that acquires three times and releases three times exits cleanly (no 0x20).
    let m = machine(2);
    m.run(|| {
        let mutex = KMutex::new();
        for _ in 0..3 {
            assert_eq!(mutex.acquire(), WAIT_0);
        }
        for _ in 0..3 {
            mutex.release();
        }
        // And it can be released at DISPATCH_LEVEL outside a DPC (errata 8: the check is the
        // owner thread and DPC context, not IRQL).
        assert_eq!(mutex.acquire(), WAIT_0);
        let old = raise(2);
        assert_eq!(mutex.release(), 0);
        lower(old);
    })
    .expect("balanced ownership ends cleanly");
}

unsafe extern "C" fn dpc_balanced_mutex(_: *mut KDPC, context: PVOID, _: PVOID, _: PVOID) {
    let mutex = KMutex::from_context(context as usize);
    assert_eq!(mutex.wait(Some(0)), WAIT_0);
    assert_eq!(mutex.wait(Some(0)), WAIT_0);
    assert_eq!(mutex.release(), -1);
    assert_eq!(mutex.release(), 0);
}

#[test]
fn a_dpc_may_poll_for_a_mutex_and_release_it() {
    let m = machine(2);
    m.run(|| {
        let mutex = KMutex::new();
        let dpc = Dpc::new(dpc_balanced_mutex, mutex.addr());
        assert!(dpc.insert());
        support::flush_dpcs();
        assert_eq!(mutex.state(), 1);
    })
    .expect("a DPC that leaves the APC-disable count as it found it");
}

#[test]
fn semaphore_counts_and_limit() {
    let m = machine(4);
    m.run(|| {
        let semaphore = Semaphore::new(2, 3);
        assert_eq!(semaphore.state(), 2);
        assert_eq!(semaphore.wait(Some(0)), WAIT_0);
        assert_eq!(semaphore.wait(None), WAIT_0);
        assert_eq!(semaphore.state(), 0);
        assert_eq!(semaphore.wait(Some(0)), TIMEOUT);
        assert_eq!(semaphore.release(1), 0, "previous count");
        assert_eq!(semaphore.release(2), 1);
        assert_eq!(semaphore.state(), 3, "at the limit");
        // Any thread may release; the count satisfies that many blocked waits.
        for _ in 0..3 {
            assert_eq!(semaphore.wait(Some(0)), WAIT_0);
        }
        let passed = Counter::new();
        let handles = waiters(5, semaphore, passed);
        assert_eq!(semaphore.release(3), 0);
        assert!(passed.wait_for(3));
        sleep_ms(SETTLE_MS);
        assert_eq!(passed.get(), 3, "a release of 3 satisfies exactly 3 waits");
        assert_eq!(semaphore.state(), 0);
        assert_eq!(semaphore.release(2), 0);
        join_all(handles);
        assert_eq!(passed.get(), 5);
        assert_eq!(semaphore.state(), 0);
    })
    .unwrap();
}

#[test]
fn wait_any_reports_the_lowest_signaled_index() {
    let m = machine(2);
    m.run(|| {
        let events: Vec<Event> = (0..3).map(|_| Event::notification(false)).collect();
        let addrs: Vec<usize> = events.iter().map(|e| e.addr()).collect();
        assert_eq!(wait_multiple(&addrs, false, Some(0), false), TIMEOUT);
        events[2].set();
        assert_eq!(wait_multiple(&addrs, false, Some(0), false), WAIT_0 + 2);
        events[1].set();
        assert_eq!(wait_multiple(&addrs, false, None, false), WAIT_0 + 1);
        events[0].set();
        assert_eq!(wait_multiple(&addrs, false, Some(0), false), WAIT_0);

        // Up to 64 objects with a wait-block array; only the satisfying object is taken.
        let many: Vec<Semaphore> = (0..64).map(|_| Semaphore::new(0, 1)).collect();
        let addrs: Vec<usize> = many.iter().map(|s| s.addr()).collect();
        many[63].release(1);
        many[40].release(1);
        assert_eq!(wait_multiple(&addrs, false, Some(0), true), WAIT_0 + 40);
        assert_eq!(many[40].state(), 0, "index 40 was taken");
        assert_eq!(many[63].state(), 1, "index 63 was not");
        assert_eq!(
            wait_multiple(&addrs, false, Some(relative_ms(5)), true),
            WAIT_0 + 63
        );
        assert_eq!(
            wait_multiple(&addrs, false, Some(relative_ms(5)), true),
            TIMEOUT
        );
    })
    .unwrap();
}

#[test]
fn wait_any_is_satisfied_by_a_later_signal_of_any_object() {
    let m = machine(4);
    m.run(|| {
        let event = Event::synchronization(false);
        let semaphore = Semaphore::new(0, 10);
        let mutex = KMutex::new();
        assert_eq!(mutex.acquire(), WAIT_0);
        let status = Counter::new();
        let addrs = [event.addr(), semaphore.addr(), mutex.addr()];
        let handle = spawn_fn(move || {
            let got = wait_multiple(&addrs, false, None, false);
            status.store(usize::try_from(got).unwrap() + 1);
            if got == WAIT_0 + 2 {
                mutex.release();
            }
        });
        sleep_ms(SETTLE_MS);
        assert_eq!(status.get(), 0, "nothing signaled for it yet");
        assert_eq!(semaphore.release(1), 0);
        join(handle);
        assert_eq!(status.get(), 2, "WAIT_0 + 1");
        assert_eq!(semaphore.state(), 0, "the semaphore count was taken");
        mutex.release();
    })
    .unwrap();
}

#[test]
fn wait_all_takes_every_object_or_none() {
    let m = machine(4);
    m.run(|| {
        let sync = Event::synchronization(true);
        let semaphore = Semaphore::new(1, 5);
        let notification = Event::notification(false);
        let addrs = [sync.addr(), semaphore.addr(), notification.addr()];
        // Not all signaled: a poll takes nothing.
        assert_eq!(wait_multiple(&addrs, true, Some(0), false), TIMEOUT);
        assert_eq!(
            wait_multiple(&addrs, true, Some(relative_ms(20)), false),
            TIMEOUT
        );
        assert_eq!(
            sync.state(),
            1,
            "the synchronization event was not consumed"
        );
        assert_eq!(semaphore.state(), 1, "the semaphore count was not taken");
        // All signaled: every side effect at once.
        notification.set();
        assert_eq!(wait_multiple(&addrs, true, Some(0), false), WAIT_0);
        assert_eq!(sync.state(), 0);
        assert_eq!(semaphore.state(), 0);
        assert_eq!(notification.state(), 1);
    })
    .unwrap();
}

#[test]
fn a_blocked_wait_all_holds_nothing_another_waiter_could_see() {
    let m = machine(4);
    m.run(|| {
        let x = Semaphore::new(0, 1);
        let y = Semaphore::new(0, 1);
        let done = Counter::new();
        let addrs = [x.addr(), y.addr()];
        let handle = spawn_fn(move || {
            assert_eq!(wait_multiple(&addrs, true, None, false), WAIT_0);
            done.bump();
        });
        sleep_ms(SETTLE_MS);
        assert_eq!(x.release(1), 0);
        sleep_ms(SETTLE_MS);
        assert_eq!(done.get(), 0, "one of two is not enough");
        assert_eq!(x.state(), 1, "the blocked WaitAll did not take x");
        // Another waiter can take x and give it back.
        assert_eq!(x.wait(Some(0)), WAIT_0);
        assert_eq!(y.release(1), 0);
        sleep_ms(SETTLE_MS);
        assert_eq!(done.get(), 0, "x is gone again");
        assert_eq!(y.state(), 1, "so y was not taken either");
        assert_eq!(x.release(1), 0);
        join(handle);
        assert_eq!(done.get(), 1);
        assert_eq!((x.state(), y.state()), (0, 0), "both taken together");
    })
    .unwrap();
}

#[test]
fn wait_all_on_shared_mutex_pairs_never_deadlocks() {
    // Five threads, five mutexes in a ring; each takes its two neighbours with one WaitAll.
    // A wait that held one mutex while blocking for the other would deadlock the ring.
    const SEATS: usize = 5;
    const MEALS: usize = 400;
    let m = machine(8);
    m.run(|| {
        let forks: Vec<KMutex> = (0..SEATS).map(|_| KMutex::new()).collect();
        let eating: Vec<Counter> = (0..SEATS).map(|_| Counter::new()).collect();
        let handles: Vec<usize> = (0..SEATS)
            .map(|seat| {
                let left = forks[seat];
                let right = forks[(seat + 1) % SEATS];
                let eating = eating.clone();
                spawn_fn(move || {
                    let pair = [left.addr(), right.addr()];
                    for _ in 0..MEALS {
                        assert_eq!(wait_multiple(&pair, true, None, false), WAIT_0);
                        let (l, r) = ((seat + SEATS - 1) % SEATS, (seat + 1) % SEATS);
                        assert_eq!(eating[seat].bump(), 1);
                        assert_eq!(eating[l].get(), 0, "a neighbour holds my left fork");
                        assert_eq!(eating[r].get(), 0, "a neighbour holds my right fork");
                        eating[seat].store(0);
                        assert_eq!(right.release(), 0);
                        assert_eq!(left.release(), 0);
                    }
                }) as usize
            })
            .collect();
        join_all(handles);
        assert!(forks.iter().all(|f| f.state() == 1));
    })
    .unwrap();
}

#[test]
fn every_timeout_form() {
    let m = machine(2);
    m.run(|| {
        let event = Event::notification(false);
        // Zero: a poll.
        assert_eq!(event.wait(Some(0)), TIMEOUT);
        // Negative: relative, in 100 ns units.
        let began = Instant::now();
        assert_eq!(event.wait(Some(relative_ms(30))), TIMEOUT);
        assert!(
            began.elapsed().as_millis() >= 30,
            "a relative timeout never ends early"
        );
        // Positive: absolute system time.
        let began = Instant::now();
        assert_eq!(event.wait(Some(absolute_in_ms(30))), TIMEOUT);
        assert!(
            began.elapsed().as_millis() >= 29,
            "an absolute timeout never ends early"
        );
        // An absolute time already past behaves as a poll.
        assert_eq!(event.wait(Some(absolute_in_ms(-1000))), TIMEOUT);
        // NULL: forever, until signaled (here by another thread).
        let handle = spawn_fn(move || {
            sleep_ms(20);
            event.set();
        });
        assert_eq!(event.wait(None), WAIT_0);
        join(handle);
        // A signaled object satisfies every form at once.
        assert_eq!(event.wait(Some(0)), WAIT_0);
        assert_eq!(event.wait(Some(relative_ms(1_000_000))), WAIT_0);
        assert_eq!(event.wait(Some(absolute_in_ms(1_000_000))), WAIT_0);
        // The extremes of the encoding are just very long waits.
        assert_eq!(event.wait(Some(-i64::MAX)), WAIT_0);
        assert_eq!(event.wait(Some(i64::MAX)), WAIT_0);
        // A relative timeout that outlives the signal returns success.
        let sync = Event::synchronization(false);
        let handle = spawn_fn(move || {
            sleep_ms(20);
            sync.set();
        });
        assert_eq!(sync.wait(Some(relative_ms(60_000))), WAIT_0);
        join(handle);
    })
    .unwrap();
}

#[test]
fn thread_objects_are_signaled_when_their_threads_end() {
    let m = machine(4);
    m.run(|| {
        let gate = Event::notification(false);
        let threads: Vec<usize> = (0..5)
            .map(|_| {
                thread_object(spawn_fn(move || {
                    assert_eq!(gate.wait(None), WAIT_0);
                }))
                .addr()
            })
            .collect();
        assert_eq!(
            wait_multiple(&threads, false, Some(relative_ms(20)), true),
            TIMEOUT
        );
        gate.set();
        assert_eq!(wait_multiple(&threads, true, None, true), WAIT_0);
        assert_eq!(wait_multiple(&threads, false, Some(0), true), WAIT_0);
        for t in threads {
            // SAFETY: drops the reference `thread_object` took.
            let _ = unsafe { ntsim::wdk_sys::ntddk::ObfDereferenceObject(t as PVOID) };
        }
    })
    .unwrap();
}

#[test]
fn wait_true_returns_at_dispatch_and_the_following_wait_restores_the_irql() {
    let m = machine(2);
    m.run(|| {
        let event = Event::synchronization(false);
        let other = Event::notification(true);
        // KeSetEvent(Wait = TRUE) then the wait, at PASSIVE_LEVEL.
        assert_eq!(event.set_and_wait(), 0);
        assert_eq!(
            event.wait(None),
            WAIT_0,
            "the wait may take the event just set"
        );
        assert_eq!(irql(), 0, "the wait restored PASSIVE_LEVEL");
        // At APC_LEVEL; the wait is judged at the saved IRQL, so a blocking wait is legal.
        let old = raise(1);
        assert_eq!(event.set_and_wait(), 0);
        assert_eq!(other.wait(Some(relative_ms(10))), WAIT_0);
        assert_eq!(irql(), 1, "the wait restored APC_LEVEL");
        lower(old);
        assert_eq!(event.wait(Some(0)), WAIT_0);

        let mutex = KMutex::new();
        assert_eq!(mutex.acquire(), WAIT_0);
        assert_eq!(mutex.release_and_wait(), 0);
        assert_eq!(
            mutex.wait(None),
            WAIT_0,
            "re-acquired in the following wait"
        );
        assert_eq!(irql(), 0);
        assert_eq!(mutex.release(), 0);

        let semaphore = Semaphore::new(0, 1);
        assert_eq!(semaphore.release_and_wait(1), 0);
        assert_eq!(
            wait_multiple(&[event.addr(), semaphore.addr()], false, None, false),
            WAIT_0 + 1
        );
        assert_eq!(irql(), 0);

        assert_eq!(event.pulse_and_wait(), 0);
        assert_eq!(event.wait(Some(0)), TIMEOUT, "the pulse left it reset");
        assert_eq!(irql(), 0);
    })
    .unwrap();
}
