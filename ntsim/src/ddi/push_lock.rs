//! `Ex` push locks (`EX_PUSH_LOCK`, the driver's `ULONG_PTR`), ddi.md section 6.1 with errata 7,
//! 12 and 16.
//!
//! The lock word is the driver's pointer-sized storage, used as an atomic in ntsim's own
//! encoding (the real one is opaque to drivers; 0 is free in both):
//!
//! | bits | meaning |
//! |---|---|
//! | 0 | held exclusive |
//! | 4..32 | number of shared holders |
//! | 32..48 | exclusive waiters (a queued exclusive request blocks new shared requests) |
//! | 48..64 | contexts sleeping for the lock (a release wakes them) |
//!
//! Shared holders really hold it together; waiters sleep on the dispatcher. The lock changes
//! neither IRQL nor the APC state: the caller's critical region is what disables normal kernel
//! APCs (0xC4/0xEA, 0xEB otherwise). Push locks are not recursive: a re-acquire by a holder is
//! 0xBF (emulator convention for the hang), except a second *shared* acquire by a shared holder,
//! which Windows grants unless an exclusive waiter is queued (errata 16). Releasing a push lock
//! the thread does not own is `AutoBoost`'s 0x162 (errata 7); deadlock detection does not track
//! push locks, so their acquires never enter the lock-order graph.

use std::sync::atomic::{AtomicU64, Ordering};

use wdk_sys::{PULONG_PTR, ULONG};

use super::fast_mutex::{apc_violation, normal_apcs_disabled, thread_value};
use crate::{
    bugcheck::{
        code::{
            DRIVER_VERIFIER_DETECTED_VIOLATION, INVALID_PUSH_LOCK_FLAGS,
            KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE, MUTEX_ALREADY_OWNED,
        },
        verifier,
    },
    context::{self, enter, irql, Entry, Hold, LockFamily},
    dispatcher::Locked,
};

const EXCLUSIVE: u64 = 1;
const SHARED_ONE: u64 = 1 << 4;
const SHARED_MASK: u64 = 0x0FFF_FFFF << 4;
const EXCLUSIVE_WAITER_ONE: u64 = 1 << 32;
const EXCLUSIVE_WAITER_MASK: u64 = 0xFFFF << 32;
const SLEEPER_ONE: u64 = 1 << 48;
/// Flags the `Ex…PushLock…Ex` routines accept (errata 7: 0x1 and 0x2 are `AutoBoost` options).
const VALID_FLAGS: ULONG = 0x3;

fn word<'a>(e: &Entry, lock: PULONG_PTR) -> &'a AtomicU64 {
    if lock.is_null() || !lock.cast::<AtomicU64>().is_aligned() {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [0xE1, lock as u64, 0, 0],
            format!("{} on an invalid or misaligned push lock {lock:p}", e.ddi),
        );
    }
    // SAFETY: `lock` is non-null and 8-byte aligned (checked above); the DDI contract makes it an
    // EX_PUSH_LOCK that stays valid while it is in use, and every access to it goes through
    // atomics.
    unsafe { AtomicU64::from_ptr(lock.cast()) }
}

/// Invalid flags are 0x152 (P1 flags, P2 lock).
fn check_flags(e: &Entry, lock: PULONG_PTR, flags: ULONG) {
    if flags & !VALID_FLAGS != 0 {
        e.bugcheck(
            INVALID_PUSH_LOCK_FLAGS,
            [u64::from(flags), lock as u64, 0, 0],
            format!(
                "{} with flags {flags:#x}: only 0x1 and 0x2 are defined",
                e.ddi
            ),
        );
    }
}

/// The acquire precondition: IRQL <= `APC_LEVEL` and normal kernel APCs disabled (the caller's
/// critical region), else 0xC4/0xEA (P2 IRQL, P3 `CombinedApcDisable`, P4 lock).
fn require_acquire_state(e: &Entry, lock: PULONG_PTR) {
    if e.irql.get() > irql::APC {
        apc_violation(
            e,
            verifier::PUSH_LOCK_ACQUIRE_APCS_ENABLED,
            lock as u64,
            "push locks are acquired at <= APC_LEVEL",
        );
    }
    if !normal_apcs_disabled(e) {
        apc_violation(
            e,
            verifier::PUSH_LOCK_ACQUIRE_APCS_ENABLED,
            lock as u64,
            "enter a critical region (KeEnterCriticalRegion) before acquiring a push lock",
        );
    }
}

/// The release precondition: IRQL <= `DISPATCH_LEVEL` (above: 0xC4/0xE5, P2 IRQL, P3 lock) and
/// normal kernel APCs disabled (0xC4/0xEB).
fn require_release_state(e: &Entry, lock: PULONG_PTR) {
    let level = e.irql.get();
    if level > irql::DISPATCH {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(level),
                lock as u64,
                0,
            ],
            format!("{} at IRQL {level}: requires <= DISPATCH_LEVEL", e.ddi),
        );
    }
    if !normal_apcs_disabled(e) {
        apc_violation(
            e,
            verifier::PUSH_LOCK_RELEASE_APCS_ENABLED,
            lock as u64,
            "leave the critical region only after releasing the push lock",
        );
    }
}

/// 0xBF for a re-acquire that would wait for the caller itself.
fn self_deadlock(e: &Entry, lock: PULONG_PTR, held_as: &'static str, why: &str) -> ! {
    e.bugcheck(
        MUTEX_ALREADY_OWNED,
        [lock as u64, thread_value(e) as u64, 0, 0],
        format!(
            "{} of push lock {lock:p}, which this thread already holds ({held_as}): {why}; \
             Windows would deadlock",
            e.ddi
        ),
    )
}

/// The family of the caller's most recent hold of `lock`, if any.
fn held_as(e: &Entry, lock: PULONG_PTR) -> Option<LockFamily> {
    e.find_hold(lock as usize)
        .map(|i| e.held.borrow()[i].family)
}

fn hold(e: &Entry, lock: PULONG_PTR, family: LockFamily) {
    e.held.borrow_mut().push(Hold {
        addr: lock as usize,
        family,
        saved_irql: None,
        acquired_by: e.ddi,
    });
}

/// Applies `grant` to the word once `can` allows it; true when it did.
fn try_update(word: &AtomicU64, can: impl Fn(u64) -> bool, grant: impl Fn(u64) -> u64) -> bool {
    let mut current = word.load(Ordering::Relaxed);
    while can(current) {
        match word.compare_exchange_weak(
            current,
            grant(current),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
    false
}

/// Sleeps on the dispatcher until `grant` could be applied. `registered` is what the sleeper
/// added to the word (under the dispatcher lock, so a release that follows sees it and signals
/// under the same lock: no lost wake-up); `grant` must also remove it.
fn sleep_until(
    e: &Entry,
    word: &AtomicU64,
    registered: u64,
    can: impl Fn(u64) -> bool,
    grant: impl Fn(u64) -> u64,
) {
    let dispatcher = &e.machine.dispatcher;
    let mut locked: Locked<'_> = dispatcher.lock();
    word.fetch_add(registered, Ordering::Relaxed);
    while !try_update(word, &can, &grant) {
        let (again, _) = dispatcher.sleep(locked, None);
        if e.machine.is_dead() || e.machine.is_shutting_down() {
            drop(again);
            context::halt();
        }
        locked = again;
    }
}

const fn free_for_exclusive(w: u64) -> bool {
    w & (EXCLUSIVE | SHARED_MASK) == 0
}

const fn free_for_shared(w: u64) -> bool {
    w & (EXCLUSIVE | EXCLUSIVE_WAITER_MASK) == 0
}

/// Wakes the sleepers when `after` (the word after a release) has any.
fn wake_if_sleepers(e: &Entry, after: u64) {
    if after >= SLEEPER_ONE {
        let locked = e.machine.dispatcher.lock();
        e.machine.dispatcher.signal(&locked);
    }
}

/// The release checks: the caller holds `lock` (else 0x162, P1 thread, P2 lock) in the mode this
/// routine releases (else 0xC4/0x1009, emulator convention). Removes the hold.
fn take_hold(e: &Entry, lock: PULONG_PTR, family: LockFamily) {
    let mut holds = e.held.borrow_mut();
    let Some(index) = holds.iter().rposition(|h| h.addr == lock as usize) else {
        drop(holds);
        e.bugcheck(
            KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE,
            [thread_value(e) as u64, lock as u64, 0, 0],
            format!(
                "{} of push lock {lock:p}, which this thread does not own (`AutoBoost` lock \
                 tracking)",
                e.ddi
            ),
        );
    };
    if holds[index].family != family {
        let by = holds[index].acquired_by;
        drop(holds);
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASE_API_MISMATCH, lock as u64, 0, 0],
            format!(
                "{} of push lock {lock:p}, which this thread acquired with {by}: shared and \
                 exclusive releases are not interchangeable",
                e.ddi
            ),
        );
    }
    holds.remove(index);
}

export! {
    /// Initialises a push lock to the free state (0). Any IRQL; the storage may be paged.
    fn ExInitializePushLock(PushLock: PULONG_PTR) {
        let e = enter("ExInitializePushLock");
        word(&e, PushLock).store(0, Ordering::Release);
    }
}

export! {
    /// Acquires a push lock exclusive, sleeping while anyone holds it. IRQL <= `APC_LEVEL` and a
    /// critical region (else 0xC4/0xEA); `Flags` only 0x1/0x2 (else 0x152). Re-acquire by a
    /// holder is 0xBF.
    fn ExAcquirePushLockExclusiveEx(PushLock: PULONG_PTR, Flags: ULONG) {
        let e = enter("ExAcquirePushLockExclusiveEx");
        require_acquire_state(&e, PushLock);
        check_flags(&e, PushLock, Flags);
        let w = word(&e, PushLock);
        if let Some(family) = held_as(&e, PushLock) {
            let mode = if family == LockFamily::PushLockShared { "shared" } else { "exclusive" };
            self_deadlock(&e, PushLock, mode, "an exclusive request waits for every holder");
        }
        if !try_update(w, free_for_exclusive, |c| c | EXCLUSIVE) {
            sleep_until(
                &e,
                w,
                EXCLUSIVE_WAITER_ONE + SLEEPER_ONE,
                free_for_exclusive,
                |c| (c | EXCLUSIVE) - EXCLUSIVE_WAITER_ONE - SLEEPER_ONE,
            );
        }
        hold(&e, PushLock, LockFamily::PushLockExclusive);
    }
}

export! {
    /// Acquires a push lock shared: granted with other shared holders unless it is held
    /// exclusive or an exclusive request is queued, else sleeps. IRQL <= `APC_LEVEL` and a
    /// critical region (else 0xC4/0xEA); `Flags` only 0x1/0x2 (else 0x152). Shared re-acquire
    /// by a shared holder: granted while no exclusive waiter is queued, 0xBF when one is (the
    /// deadlock, errata 16); by the exclusive holder: 0xBF.
    fn ExAcquirePushLockSharedEx(PushLock: PULONG_PTR, Flags: ULONG) {
        let e = enter("ExAcquirePushLockSharedEx");
        require_acquire_state(&e, PushLock);
        check_flags(&e, PushLock, Flags);
        let w = word(&e, PushLock);
        let held = held_as(&e, PushLock);
        if held == Some(LockFamily::PushLockExclusive) {
            self_deadlock(&e, PushLock, "exclusive", "a shared request waits for the exclusive holder");
        }
        if !try_update(w, free_for_shared, |c| c + SHARED_ONE) {
            if held.is_some() {
                self_deadlock(
                    &e,
                    PushLock,
                    "shared",
                    "an exclusive request is queued, so the second shared request waits behind \
                     it, and it waits for this thread's first shared hold",
                );
            }
            sleep_until(&e, w, SLEEPER_ONE, free_for_shared, |c| c + SHARED_ONE - SLEEPER_ONE);
        }
        hold(&e, PushLock, LockFamily::PushLockShared);
    }
}

export! {
    /// Releases a push lock the caller holds exclusive. IRQL <= `DISPATCH_LEVEL` (else
    /// 0xC4/0xE5) with normal kernel APCs disabled (else 0xC4/0xEB); `Flags` only 0x1/0x2 (else
    /// 0x152); a lock the caller does not own is 0x162; one it holds shared is 0xC4/0x1009.
    fn ExReleasePushLockExclusiveEx(PushLock: PULONG_PTR, Flags: ULONG) {
        let e = enter("ExReleasePushLockExclusiveEx");
        require_release_state(&e, PushLock);
        check_flags(&e, PushLock, Flags);
        let w = word(&e, PushLock);
        take_hold(&e, PushLock, LockFamily::PushLockExclusive);
        let before = w.fetch_and(!EXCLUSIVE, Ordering::Release);
        debug_assert_ne!(before & EXCLUSIVE, 0, "an exclusive hold has the bit set");
        wake_if_sleepers(&e, before);
    }
}

export! {
    /// Releases one shared hold of a push lock. IRQL <= `DISPATCH_LEVEL` (else 0xC4/0xE5) with
    /// normal kernel APCs disabled (else 0xC4/0xEB); `Flags` only 0x1/0x2 (else 0x152); a lock
    /// the caller does not own is 0x162; one it holds exclusive is 0xC4/0x1009.
    fn ExReleasePushLockSharedEx(PushLock: PULONG_PTR, Flags: ULONG) {
        let e = enter("ExReleasePushLockSharedEx");
        require_release_state(&e, PushLock);
        check_flags(&e, PushLock, Flags);
        let w = word(&e, PushLock);
        take_hold(&e, PushLock, LockFamily::PushLockShared);
        let after = w.fetch_sub(SHARED_ONE, Ordering::Release) - SHARED_ONE;
        // Only the last shared release can let a waiter in.
        if after & SHARED_MASK == 0 {
            wake_if_sleepers(&e, after);
        }
    }
}

/// Host-side inspection: (exclusive requests queued, contexts asleep) on the push lock at `lock`.
///
/// For tests and tools, not a DDI: lets a test wait until a thread is really blocked in an
/// acquire. The sleepers count exclusive and shared requests.
///
/// # Safety
/// `lock` must point to a live, 8-byte aligned `EX_PUSH_LOCK`.
#[must_use]
pub unsafe fn waiters(lock: *const wdk_sys::ULONG_PTR) -> (u32, u32) {
    // SAFETY: the caller guarantees a live, aligned EX_PUSH_LOCK, which ntsim accesses
    // atomically only.
    let w = unsafe { AtomicU64::from_ptr(lock.cast_mut().cast()) }.load(Ordering::Relaxed);
    #[allow(clippy::cast_possible_truncation, reason = "16-bit fields")]
    let fields = (
        ((w & EXCLUSIVE_WAITER_MASK) >> 32) as u32,
        (w / SLEEPER_ONE) as u32,
    );
    fields
}
