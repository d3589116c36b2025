//! Executive spin locks (`KSPIN_LOCK`), ddi.md section 1.
//!
//! The lock word is the driver's own 8-byte `KSPIN_LOCK`, used as an atomic: 0 when free,
//! otherwise `owner_uid << 2 | queued << 1 | 1`. Waiters really spin on it (yielding the host
//! core), so exclusion is real; the acquiring context first takes its processor (it is at
//! `DISPATCH_LEVEL` while it spins, as on Windows). Every acquire and release is checked against
//! the rules of ddi.md 1.2 and 13.3.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use wdk_sys::{BOOLEAN, KIRQL, PKSPIN_LOCK};

use crate::{
    bugcheck::{
        code::{DRIVER_VERIFIER_DETECTED_VIOLATION, SPIN_LOCK_ALREADY_OWNED},
        verifier,
    },
    context::{enter, irql, Entry, Hold, LockFamily},
    machine::MachineInner,
    processor::spin_pause,
};

const HELD: u64 = 1;
const QUEUED: u64 = 2;

fn word<'a>(e: &Entry, lock: PKSPIN_LOCK) -> &'a AtomicU64 {
    if lock.is_null() || !lock.cast::<AtomicU64>().is_aligned() {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [0xE1, lock as u64, 0, 0],
            format!("{} on an invalid or misaligned KSPIN_LOCK {lock:p}", e.ddi),
        );
    }
    // SAFETY: `lock` is non-null and 8-byte aligned (checked above); the DDI contract makes it a
    // KSPIN_LOCK in resident memory that lives while the lock is in use, and every access to it
    // goes through atomics.
    unsafe { AtomicU64::from_ptr(lock) }
}

/// Who holds the spin lock at `lock`, for hang messages.
pub(crate) fn describe_holder(machine: &MachineInner, lock: usize) -> String {
    // SAFETY: `lock` is a KSPIN_LOCK address a context is spinning on right now, so it is valid
    // and aligned (checked when the spin began).
    let value = unsafe { AtomicU64::from_ptr(lock as *mut u64) }.load(Ordering::Relaxed);
    if value == 0 {
        return String::new();
    }
    format!(
        ", held by {}",
        machine
            .context_name(value >> 2)
            .unwrap_or_else(|| format!("context {}", value >> 2))
    )
}

/// Spins until the lock is ours. The caller is at `DISPATCH_LEVEL` (or above) already.
pub(crate) fn spin_acquire(e: &Entry, lock: PKSPIN_LOCK, queued: bool) {
    let word = word(e, lock);
    let mine = (e.uid << 2) | if queued { QUEUED } else { 0 } | HELD;
    let current = word.load(Ordering::Relaxed);
    if current != 0 && current >> 2 == e.uid {
        e.bugcheck(
            SPIN_LOCK_ALREADY_OWNED,
            [lock as u64, 0, 0, 0],
            format!(
                "{} of spin lock {lock:p}, which this context already holds \
                 (a hang on Windows; 0xF on checked kernels)",
                e.ddi
            ),
        );
    }
    if current != 0 && (current & QUEUED != 0) != queued {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::ACQUIRE_API_MISMATCH, lock as u64, 0, 0],
            format!(
                "{} on spin lock {lock:p}, which is held through the other family \
                 (queued and ordinary spin-lock routines mixed on one KSPIN_LOCK)",
                e.ddi
            ),
        );
    }
    e.machine.lock_order.acquire(e, lock as usize);
    let began = Instant::now();
    let mut spins = 0;
    while word
        .compare_exchange_weak(0, mine, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spin_pause(
            e,
            &mut spins,
            began,
            &format!("spin lock {lock:p}"),
            lock as usize,
        );
    }
}

/// One attempt; true when the lock is now ours.
fn spin_try(e: &Entry, lock: PKSPIN_LOCK) -> bool {
    let word = word(e, lock);
    if word.load(Ordering::Relaxed) >> 2 == e.uid && word.load(Ordering::Relaxed) != 0 {
        e.bugcheck(
            SPIN_LOCK_ALREADY_OWNED,
            [lock as u64, 0, 0, 0],
            format!(
                "{} of spin lock {lock:p}, which this context already holds",
                e.ddi
            ),
        );
    }
    word.compare_exchange(0, (e.uid << 2) | HELD, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Checks that the caller owns `lock` through `family` and that releasing it now keeps
/// IRQL-restoring releases in LIFO order; removes the hold, frees the word, returns the hold.
pub(crate) fn spin_release(e: &Entry, lock: PKSPIN_LOCK, family: LockFamily) -> Hold {
    let word = word(e, lock);
    let current = word.load(Ordering::Relaxed);
    if current == 0 {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASED_NOT_ACQUIRED, lock as u64, 0, 0],
            format!("{} of spin lock {lock:p}, which is not held", e.ddi),
        );
    }
    if current >> 2 != e.uid {
        let owner = e
            .machine
            .context_name(current >> 2)
            .unwrap_or_else(|| format!("context {}", current >> 2));
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RELEASED_BY_OTHER_THREAD,
                lock as u64,
                current >> 2,
                e.uid,
            ],
            format!("{} of spin lock {lock:p}, which is held by {owner}", e.ddi),
        );
    }
    let mut holds = e.held.borrow_mut();
    let Some(index) = holds.iter().rposition(|h| h.addr == lock as usize) else {
        drop(holds);
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASED_NOT_ACQUIRED, lock as u64, 0, 0],
            format!("{} of spin lock {lock:p}: no acquisition recorded", e.ddi),
        );
    };
    let hold = holds[index].clone();
    if hold.family != family {
        drop(holds);
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASE_API_MISMATCH, lock as u64, 0, 0],
            format!(
                "{} releases spin lock {lock:p}, acquired with {}: the release must match the acquire",
                e.ddi, hold.acquired_by
            ),
        );
    }
    if family.restores_irql() {
        if let Some(later) = holds[index + 1..].iter().find(|h| h.family.restores_irql()) {
            let later_addr = later.addr;
            drop(holds);
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [
                    verifier::RELEASED_OUT_OF_ORDER,
                    lock as u64,
                    later_addr as u64,
                    0,
                ],
                format!(
                    "{} of {lock:p} before {later_addr:#x}, acquired after it: IRQL-restoring \
                     locks must be released in reverse order",
                    e.ddi
                ),
            );
        }
    }
    holds.remove(index);
    word.store(0, Ordering::Release);
    hold
}

fn hold(e: &Entry, lock: PKSPIN_LOCK, family: LockFamily, saved_irql: Option<u8>) {
    e.held.borrow_mut().push(Hold {
        addr: lock as usize,
        family,
        saved_irql,
        acquired_by: e.ddi,
    });
}

/// Bug checks unless the caller is exactly at `DISPATCH_LEVEL` (`below` is the 0xC4 subcode for
/// a lower IRQL; above is DDI rule `IrqlDispatch`, errata 5).
fn require_dispatch(e: &Entry, lock: PKSPIN_LOCK, below: u64) {
    let level = e.irql.get();
    if level < irql::DISPATCH {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [below, u64::from(level), lock as u64, 0],
            format!("{} at IRQL {level}: requires DISPATCH_LEVEL", e.ddi),
        );
    }
    if level > irql::DISPATCH {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RULE_IRQL_DISPATCH,
                u64::from(level),
                lock as u64,
                0,
            ],
            format!("{} at IRQL {level}: requires exactly DISPATCH_LEVEL", e.ddi),
        );
    }
}

export! {
    /// Initialises a spin lock to the free state. Any IRQL.
    fn KeInitializeSpinLock(SpinLock: PKSPIN_LOCK) {
        let e = enter("KeInitializeSpinLock");
        word(&e, SpinLock).store(0, Ordering::Release);
    }
}

export! {
    /// What `KeAcquireSpinLock` expands to on x64: raises to `DISPATCH_LEVEL`, acquires, returns
    /// the previous IRQL. IRQL <= `DISPATCH_LEVEL` (above: 0xC4/0x42).
    fn KeAcquireSpinLockRaiseToDpc(SpinLock: PKSPIN_LOCK) -> KIRQL {
        let e = enter("KeAcquireSpinLockRaiseToDpc");
        let old = e.irql.get();
        if old > irql::DISPATCH {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::ACQUIRE_SPIN_LOCK_ABOVE_DISPATCH, u64::from(old), SpinLock as u64, 0],
                format!("KeAcquireSpinLock at IRQL {old}"),
            );
        }
        e.set_irql(irql::DISPATCH);
        spin_acquire(&e, SpinLock, false);
        hold(&e, SpinLock, LockFamily::SpinRaise, Some(old));
        old
    }
}

export! {
    /// Releases a lock taken with `KeAcquireSpinLock` and lowers IRQL to `NewIrql`, which must
    /// be the saved value (DDI rule 0x20015). At exactly `DISPATCH_LEVEL` (else 0xC4/0x32).
    fn KeReleaseSpinLock(SpinLock: PKSPIN_LOCK, NewIrql: KIRQL) {
        let e = enter("KeReleaseSpinLock");
        let level = e.irql.get();
        if level != irql::DISPATCH {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RELEASE_SPIN_LOCK_BAD_IRQL, u64::from(level), SpinLock as u64, 0],
                format!("KeReleaseSpinLock at IRQL {level}"),
            );
        }
        // ddi.md 1.2 rule 7: a lock taken at DPC level (no IRQL saved) may be released with
        // KeReleaseSpinLock only when NewIrql is the current IRQL.
        let at_dpc = e
            .find_hold(SpinLock as usize)
            .is_some_and(|i| e.held.borrow()[i].family == LockFamily::SpinAtDpc);
        if at_dpc && NewIrql == level {
            spin_release(&e, SpinLock, LockFamily::SpinAtDpc);
            return;
        }
        let hold = spin_release(&e, SpinLock, LockFamily::SpinRaise);
        let saved = hold.saved_irql.unwrap_or(level);
        if NewIrql != saved {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [
                    verifier::RULE_IRQL_KE_RELEASE_SPIN_LOCK,
                    SpinLock as u64,
                    u64::from(NewIrql),
                    u64::from(saved),
                ],
                format!(
                    "KeReleaseSpinLock({SpinLock:p}, {NewIrql}): the acquire saved IRQL {saved}"
                ),
            );
        }
        e.set_irql(NewIrql);
    }
}

export! {
    /// Acquires a spin lock at exactly `DISPATCH_LEVEL` (below: 0xC4/0x40; above: 0xC4/0x20003).
    fn KeAcquireSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK) {
        let e = enter("KeAcquireSpinLockAtDpcLevel");
        require_dispatch(&e, SpinLock, verifier::ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH);
        spin_acquire(&e, SpinLock, false);
        hold(&e, SpinLock, LockFamily::SpinAtDpc, None);
    }
}

export! {
    /// Releases a lock taken at DPC level, at exactly `DISPATCH_LEVEL` (below: 0xC4/0x41).
    fn KeReleaseSpinLockFromDpcLevel(SpinLock: PKSPIN_LOCK) {
        let e = enter("KeReleaseSpinLockFromDpcLevel");
        require_dispatch(&e, SpinLock, verifier::RELEASE_FROM_DPC_LEVEL_BELOW_DISPATCH);
        spin_release(&e, SpinLock, LockFamily::SpinAtDpc);
    }
}

export! {
    /// One attempt to acquire at `DISPATCH_LEVEL`: TRUE when now owned, FALSE when busy.
    fn KeTryToAcquireSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK) -> BOOLEAN {
        let e = enter("KeTryToAcquireSpinLockAtDpcLevel");
        require_dispatch(&e, SpinLock, verifier::ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH);
        if spin_try(&e, SpinLock) {
            hold(&e, SpinLock, LockFamily::SpinAtDpc, None);
            1
        } else {
            0
        }
    }
}
