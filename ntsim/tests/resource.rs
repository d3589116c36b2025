//! Executive resources: the acquisition rules of ddi.md 7.2 (recursion, writer preference,
//! starvation, conversion, hand-off between threads) and the APC state while one is held
//! (ddi.md 0.3, 7.2 "State while held", 11.1).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use ntsim::Machine;
use support::{
    all_apcs_disabled, apcs_disabled, enter_critical_region, enter_guarded_region, irql,
    leave_critical_region, leave_guarded_region, lower, machine, raise,
    resource::{current_resource_thread, owner_pointer, Resource, Steps},
};

/// Runs each closure as its own system thread of `m`, concurrently, and returns their results.
fn run_all<T: Send + 'static>(m: &Machine, bodies: Vec<Box<dyn FnOnce() -> T + Send>>) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|body| s.spawn(move || m.run(body)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("host thread")
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    })
}

#[test]
fn exclusive_owner_recurses_exclusive_and_shared_and_stays_exclusive() {
    let m = machine(4);
    let r = Resource::new(&m);
    let steps = Steps::new();
    let results = run_all(
        &m,
        vec![
            Box::new(move || {
                enter_critical_region();
                let mut seen = vec![r.exclusive(true), r.exclusive(true)]; // X, X -> X
                seen.push(r.is_exclusive());
                let count_after_recursion = r.shared_count();
                seen.push(r.shared(true)); // X -> S
                seen.push(r.is_exclusive()); // still exclusive, not converted
                let count_with_shared = r.shared_count();
                steps.done(1);
                steps.wait(2);
                r.release();
                r.release();
                r.release();
                seen.push(r.is_exclusive());
                let released = r.shared_count();
                leave_critical_region();
                (
                    seen,
                    vec![count_after_recursion, count_with_shared, released],
                )
            }),
            Box::new(move || {
                steps.wait(1);
                enter_critical_region();
                // The owner asked for shared and stays exclusive: others still cannot share it.
                let seen = vec![r.shared(false), r.shared_starve_exclusive(false)];
                leave_critical_region();
                steps.done(2);
                (seen, vec![r.exclusive_waiters(), r.shared_waiters()])
            }),
        ],
    );
    assert_eq!(
        results[0],
        (vec![true, true, true, true, true, false], vec![2, 3, 0])
    );
    assert_eq!(results[1], (vec![false, false], vec![0, 0]));
}

#[test]
fn shared_owner_recurses_shared_and_cannot_upgrade() {
    let m = machine(2);
    let r = Resource::new(&m);
    let seen = m
        .run(move || {
            enter_critical_region();
            let mut seen = vec![r.shared(true), r.shared(true), r.is_exclusive()];
            let count = r.shared_count();
            // S -> X must release first: without Wait it fails (with Wait it is the self-deadlock
            // of resource_verifier.rs).
            seen.push(r.exclusive(false));
            seen.push(r.is_exclusive());
            r.release();
            r.release();
            leave_critical_region();
            (seen, count, r.shared_count())
        })
        .expect("no bug check");
    assert_eq!(seen, (vec![true, true, false, false, false], 2, 0));
}

#[test]
fn contended_requests_wait_and_are_counted_as_waiters() {
    let m = machine(4);
    let r = Resource::new(&m);
    let steps = Steps::new();
    let results = run_all(
        &m,
        vec![
            // A: holds shared; an exclusive request then waits for it.
            Box::new(move || {
                enter_critical_region();
                assert!(r.shared(true));
                steps.done(1);
                r.await_exclusive_waiters(1);
                let seen = (r.exclusive_waiters(), r.shared_waiters());
                r.release();
                leave_critical_region();
                seen
            }),
            // B: exclusive, blocks until A's release hands it over; then a shared request waits
            // for B.
            Box::new(move || {
                steps.wait(1);
                enter_critical_region();
                assert!(r.exclusive(true));
                let got = r.is_exclusive();
                steps.done(2);
                r.await_shared_waiters(1);
                let seen = (r.exclusive_waiters(), r.shared_waiters());
                r.release();
                leave_critical_region();
                (u32::from(got), seen.1 + 10 * seen.0)
            }),
            // C: a shared request while B owns it exclusively: FALSE without Wait, then waits.
            Box::new(move || {
                steps.wait(2);
                enter_critical_region();
                let immediate = r.shared(false);
                assert!(r.shared(true));
                let count = r.shared_count();
                r.release();
                leave_critical_region();
                (u32::from(immediate), count)
            }),
        ],
    );
    assert_eq!(results[0], (1, 0), "A saw one exclusive waiter, no shared");
    assert_eq!(
        results[1],
        (1, 1),
        "B got it exclusively and saw one shared waiter"
    );
    assert_eq!(
        results[2],
        (0, 1),
        "C failed without Wait, then got it shared"
    );
    // Nobody waits any more.
    let idle = m
        .run(move || (r.exclusive_waiters(), r.shared_waiters()))
        .unwrap();
    assert_eq!(idle, (0, 0));
}

#[test]
fn starve_exclusive_passes_a_waiting_exclusive_request_a_plain_shared_one_does_not() {
    let m = machine(4);
    let r = Resource::new(&m);
    let steps = Steps::new();
    let results = run_all(
        &m,
        vec![
            // A holds it shared until C is done.
            Box::new(move || {
                enter_critical_region();
                assert!(r.shared(true));
                steps.done(1);
                steps.wait(3);
                // A holds it already: its own recursive shared request passes the waiter.
                let recursive = r.shared(false);
                r.release();
                r.release();
                leave_critical_region();
                vec![recursive]
            }),
            // B requests exclusive and blocks behind A.
            Box::new(move || {
                steps.wait(1);
                enter_critical_region();
                let got = r.exclusive(true);
                let exclusive = r.is_exclusive();
                r.release();
                leave_critical_region();
                vec![got, exclusive]
            }),
            // C, holding nothing, once B waits.
            Box::new(move || {
                steps.wait(1);
                r.await_exclusive_waiters(1);
                enter_critical_region();
                let plain = r.shared(false);
                let wait_for_exclusive = r.shared_wait_for_exclusive(false);
                let starve = r.shared_starve_exclusive(false);
                let waiters_meanwhile = r.exclusive_waiters();
                if starve {
                    r.release();
                }
                leave_critical_region();
                steps.done(3);
                vec![plain, wait_for_exclusive, starve, waiters_meanwhile == 1]
            }),
        ],
    );
    assert_eq!(
        results[2],
        vec![false, false, true, true],
        "C: plain shared and SharedWaitForExclusive wait behind the exclusive waiter (FALSE \
         without Wait); StarveExclusive passes it (TRUE); B still waits"
    );
    assert_eq!(results[0], vec![true]);
    assert_eq!(results[1], vec![true, true], "B got it once A released");
}

#[test]
fn converting_to_shared_grants_every_waiting_shared_request_at_once() {
    let m = machine(4);
    let r = Resource::new(&m);
    let steps = Steps::new();
    let inside: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let shared_reader = move || {
        steps.wait(1);
        enter_critical_region();
        assert!(r.shared(true));
        inside.fetch_add(1, Ordering::AcqRel);
        // Hold until both readers and the converted owner hold it together.
        steps.wait(2);
        let count = r.shared_count();
        r.release();
        leave_critical_region();
        count
    };
    let shared_reader_too = shared_reader;
    let results = run_all(
        &m,
        vec![
            Box::new(move || {
                enter_critical_region();
                assert!(r.exclusive(true));
                assert!(r.exclusive(true));
                steps.done(1);
                r.await_shared_waiters(2);
                r.convert_to_shared();
                // Both waiters were granted by the conversion itself.
                let waiters_after = r.shared_waiters();
                let still_exclusive = r.is_exclusive();
                // Its two acquisitions became shared ones.
                let count = r.shared_count();
                while inside.load(Ordering::Acquire) < 2 {
                    irql();
                    std::thread::yield_now();
                }
                steps.done(2);
                r.release();
                r.release();
                leave_critical_region();
                (waiters_after, u32::from(still_exclusive), count)
            }),
            Box::new(move || (shared_reader(), 0, 0)),
            Box::new(move || (shared_reader_too(), 0, 0)),
        ],
    );
    assert_eq!(results[0], (0, 0, 2));
    assert_eq!(results[1], (1, 0, 0));
    assert_eq!(results[2], (1, 0, 0));
}

#[test]
fn shared_owners_hold_it_at_the_same_time() {
    let m = machine(4);
    let r = Resource::new(&m);
    let steps = Steps::new();
    let results = run_all(
        &m,
        vec![
            Box::new(move || {
                enter_critical_region();
                assert!(r.shared(true));
                steps.done(1);
                // B holds it too before A lets go.
                steps.wait(2);
                let seen = (r.shared_count(), r.is_exclusive());
                r.release();
                leave_critical_region();
                seen
            }),
            Box::new(move || {
                steps.wait(1);
                enter_critical_region();
                // Granted at once, without waiting, although A holds it.
                assert!(r.shared(false));
                steps.done(2);
                let seen = (r.shared_count(), r.is_exclusive());
                r.release();
                leave_critical_region();
                seen
            }),
        ],
    );
    assert_eq!(results, vec![(1, false), (1, false)]);
}

#[test]
fn the_resource_changes_no_apc_state_the_critical_region_does() {
    let m = machine(2);
    let r = Resource::new(&m);
    let seen = m
        .run(move || {
            let state = || (apcs_disabled(), all_apcs_disabled(), irql());
            let mut seen = vec![state()];
            enter_critical_region();
            seen.push(state());
            assert!(r.exclusive(true));
            seen.push(state()); // held: unchanged
            r.release();
            seen.push(state());
            leave_critical_region();
            seen.push(state());
            r.enter_region_shared(); // the helper enters the region itself
            seen.push(state());
            r.release_and_leave_region();
            seen.push(state());
            seen
        })
        .expect("no bug check");
    assert_eq!(
        seen,
        vec![
            (false, false, 0),
            (true, false, 0),
            (true, false, 0),
            (true, false, 0),
            (false, false, 0),
            (true, false, 0),
            (false, false, 0),
        ]
    );
}

#[test]
fn a_guarded_region_or_apc_level_also_satisfies_the_apc_requirement() {
    let m = machine(2);
    let r = Resource::new(&m);
    let seen = m
        .run(move || {
            enter_guarded_region();
            assert!(r.exclusive(true));
            let guarded = (apcs_disabled(), all_apcs_disabled());
            r.release();
            leave_guarded_region();
            let old = raise(1);
            assert!(r.shared(true));
            let at_apc = (apcs_disabled(), all_apcs_disabled());
            r.release();
            lower(old);
            (guarded, at_apc)
        })
        .expect("no bug check");
    assert_eq!(seen, ((true, true), (false, true)));
}

#[test]
fn helpers_enter_the_region_acquire_and_leave() {
    let m = machine(2);
    let r = Resource::new(&m);
    let seen = m
        .run(move || {
            r.enter_region_exclusive();
            let x = (r.is_exclusive(), r.shared_count(), apcs_disabled());
            r.release_and_leave_region();
            r.enter_region_shared_wait_for_exclusive();
            let s = (r.is_exclusive(), r.shared_count(), apcs_disabled());
            r.release_and_leave_region();
            (x, s, r.shared_count(), apcs_disabled())
        })
        .expect("no bug check");
    assert_eq!(seen, ((true, 1, true), (false, 1, true), 0, false));
}

#[test]
fn owner_pointer_hands_the_acquisition_to_another_thread() {
    let m = machine(4);
    let r = Resource::new(&m);
    let owner = owner_pointer();
    let owner_ex = owner_pointer();
    // The manager thread acquires and hands over; it ends without owning anything itself
    // (no 0xC4/0x100A).
    let manager = m
        .run(move || {
            enter_critical_region();
            assert!(r.exclusive(true));
            r.set_owner_pointer(owner);
            let after = (r.is_exclusive(), r.shared_count());
            leave_critical_region();
            after
        })
        .expect("the manager ends cleanly");
    assert_eq!(manager, (false, 0));
    // Another thread still cannot get it: the owner pointer owns it.
    let user = m
        .run(move || {
            enter_critical_region();
            let busy = r.shared(false);
            r.release_for_thread(owner);
            let free = r.exclusive(false);
            // Shared hand-off with the Ex variant, FLAG_OWNER_POINTER_IS_THREAD.
            r.convert_to_shared();
            r.set_owner_pointer_ex(owner_ex, 1);
            let mine = r.shared_count();
            r.release_for_thread(owner_ex);
            let again = r.exclusive(false);
            r.release();
            leave_critical_region();
            (busy, free, mine, again)
        })
        .expect("no bug check");
    assert_eq!(user, (false, true, 0, true));
}

#[test]
fn shared_wait_for_exclusive_behind_its_own_hold_is_released_for_it_by_another_thread() {
    // Errata 13: waiting for another thread to release on the caller's behalf is legal.
    let m = machine(4);
    let r = Resource::new(&m);
    let steps = Steps::new();
    let a_thread: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let results = run_all(
        &m,
        vec![
            // A: holds it shared, then asks again with SharedWaitForExclusive while B waits.
            Box::new(move || {
                enter_critical_region();
                a_thread.store(current_resource_thread(), Ordering::Release);
                assert!(r.shared(true));
                steps.done(1);
                r.await_exclusive_waiters(1);
                let got = r.shared_wait_for_exclusive(true);
                let count = r.shared_count();
                r.release();
                leave_critical_region();
                (u32::from(got), count)
            }),
            // B: exclusive, waits for A's hold.
            Box::new(move || {
                steps.wait(1);
                enter_critical_region();
                assert!(r.exclusive(true));
                let got = r.is_exclusive();
                r.release();
                leave_critical_region();
                (u32::from(got), 0)
            }),
            // C: once A waits behind B, releases A's first hold for it.
            Box::new(move || {
                steps.wait(1);
                r.await_shared_waiters(1);
                let waiters = r.exclusive_waiters();
                r.release_for_thread(a_thread.load(Ordering::Acquire));
                (waiters, 0)
            }),
        ],
    );
    assert_eq!(
        results[0],
        (1, 1),
        "A got its second hold, and holds only that"
    );
    assert_eq!(results[1], (1, 0));
    assert_eq!(results[2], (1, 0));
}

#[test]
fn reinitialise_delete_and_initialise_again() {
    let m = machine(2);
    let r = Resource::new(&m);
    let seen = m
        .run(move || {
            enter_critical_region();
            assert!(r.exclusive(true));
            r.release();
            let reinit = r.reinit();
            assert!(r.shared(true));
            r.release();
            let deleted = r.delete();
            let init = r.init();
            let count = r.shared_count();
            leave_critical_region();
            (reinit, deleted, init, count)
        })
        .expect("no bug check");
    assert_eq!(seen, (0, 0, 0, 0));
}
