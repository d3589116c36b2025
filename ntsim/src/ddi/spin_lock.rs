//! Executive spin locks (`KSPIN_LOCK`), ddi.md section 1.
//!
//! The lock word is the driver's own 8-byte `KSPIN_LOCK`, used as an atomic: 0 when free,
//! `owner_uid << 2 | 1` while held through the ordinary routines, and `tail | 2 | 1` while held
//! through the in-stack queued routines (`tail` is the address of the last queue handle, see
//! [`super::queued_spin_lock`]). Bit 1 thus tells which family holds the lock, so either side
//! detects the other (ddi.md 1.2 rule 8, 2 rule 5, 13.3: 0xC4/0x1008 on acquire, 0x1009 on
//! release). Waiters really spin on the word (yielding the host core), so exclusion is real; the
//! acquiring context first takes its processor (it is at `DISPATCH_LEVEL` while it spins, as on
//! Windows). Every acquire and release is checked against the rules of ddi.md 1.2 and 13.3.

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

/// Lock word bit: held.
pub(crate) const HELD: u64 = 1;
/// Lock word bit: held (or queued for) through the in-stack queued routines.
pub(crate) const QUEUED: u64 = 2;

/// The lock word of `lock`, after checking the pointer (0xC4/0xE1 when null or misaligned).
pub(crate) fn word<'a>(e: &Entry, lock: PKSPIN_LOCK) -> &'a AtomicU64 {
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
    if value & QUEUED != 0 {
        return super::queued_spin_lock::describe_queue(machine, lock);
    }
    format!(
        ", held by {}",
        machine
            .context_name(value >> 2)
            .unwrap_or_else(|| format!("context {}", value >> 2))
    )
}

/// Bug checks 0xF when the caller already holds the lock at `addr` (any family): a recursive
/// acquire hangs on Windows; checked kernels report 0xF (ddi.md 1.2 rule 4, 13.3).
pub(crate) fn check_not_owned(e: &Entry, addr: usize) {
    if let Some(index) = e.find_hold(addr) {
        let by = e.held.borrow()[index].acquired_by;
        e.bugcheck(
            SPIN_LOCK_ALREADY_OWNED,
            [addr as u64, 0, 0, 0],
            format!(
                "{} of spin lock {addr:#x}, which this context already holds (acquired with \
                 {by}): a hang on Windows; 0xF on checked kernels",
                e.ddi
            ),
        );
    }
}

/// 0xC4/0x1008: `lock` is in use through the other family (queued vs. ordinary).
pub(crate) fn mixed_families(e: &Entry, lock: usize, queued_now: bool) -> ! {
    let (held_through, used) = if queued_now {
        ("in-stack queued", "ordinary")
    } else {
        ("ordinary", "in-stack queued")
    };
    e.bugcheck(
        DRIVER_VERIFIER_DETECTED_VIOLATION,
        [verifier::ACQUIRE_API_MISMATCH, lock as u64, 0, 0],
        format!(
            "{} ({used} routine) on spin lock {lock:#x}, which is in use through the \
             {held_through} routines: queued and ordinary spin-lock routines must not be mixed on \
             one KSPIN_LOCK",
            e.ddi
        ),
    )
}

/// Spins until the lock is ours (ordinary family). The caller is at `DISPATCH_LEVEL` (or above)
/// already.
pub(crate) fn spin_acquire(e: &Entry, lock: PKSPIN_LOCK) {
    let word = word(e, lock);
    check_not_owned(e, lock as usize);
    e.machine.lock_order.acquire(e, lock as usize);
    let mine = (e.uid << 2) | HELD;
    let began = Instant::now();
    let mut spins = 0;
    loop {
        let current = word.load(Ordering::Relaxed);
        if current & QUEUED != 0 {
            mixed_families(e, lock as usize, true);
        }
        if current == 0
            && word
                .compare_exchange_weak(0, mine, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        spin_pause(e, &mut spins, began, "the spin lock", lock as usize);
    }
}

/// One attempt; true when the lock is now ours.
fn spin_try(e: &Entry, lock: PKSPIN_LOCK) -> bool {
    let word = word(e, lock);
    check_not_owned(e, lock as usize);
    match word.compare_exchange(0, (e.uid << 2) | HELD, Ordering::Acquire, Ordering::Relaxed) {
        Ok(_) => true,
        Err(current) if current & QUEUED != 0 => mixed_families(e, lock as usize, true),
        Err(_) => false,
    }
}

/// Removes the caller's hold of the lock at `addr`, applying the checks every release shares:
/// a hold acquired through another family is 0xC4/0x1009 (P2 `addr`, P3 `p3`); releasing an
/// IRQL-restoring hold while a later IRQL-restoring hold exists is 0xC4/0x1003 (P2 `addr`, P3
/// the later lock). `None` when the caller holds nothing at `addr`.
pub(crate) fn release_hold(e: &Entry, addr: usize, family: LockFamily, p3: u64) -> Option<Hold> {
    let mut holds = e.held.borrow_mut();
    let index = holds.iter().rposition(|h| h.addr == addr)?;
    let hold = holds[index].clone();
    if hold.family != family {
        drop(holds);
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASE_API_MISMATCH, addr as u64, p3, 0],
            format!(
                "{} releases the lock at {addr:#x}, acquired with {}: the release must match the \
                 acquire",
                e.ddi, hold.acquired_by
            ),
        );
    }
    if family.restores_irql() {
        if let Some(later) = holds[index + 1..].iter().find(|h| h.family.restores_irql()) {
            let (later_addr, later_by) = (later.addr, later.acquired_by);
            drop(holds);
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [
                    verifier::RELEASED_OUT_OF_ORDER,
                    addr as u64,
                    later_addr as u64,
                    0,
                ],
                format!(
                    "{} of {addr:#x} before {later_addr:#x} (acquired after it with {later_by}): \
                     IRQL-restoring locks must be released in reverse order",
                    e.ddi
                ),
            );
        }
    }
    holds.remove(index);
    Some(hold)
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
    if let Some(hold) = release_hold(e, lock as usize, family, 0) {
        word.store(0, Ordering::Release);
        return hold;
    }
    if current & QUEUED != 0 {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASE_API_MISMATCH, lock as u64, 0, 0],
            format!(
                "{} of spin lock {lock:p}, which is held through the in-stack queued routines",
                e.ddi
            ),
        );
    }
    let owner = current >> 2;
    if owner == e.uid {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASED_NOT_ACQUIRED, lock as u64, 0, 0],
            format!("{} of spin lock {lock:p}: no acquisition recorded", e.ddi),
        );
    }
    let name = e
        .machine
        .context_name(owner)
        .unwrap_or_else(|| format!("context {owner}"));
    e.bugcheck(
        DRIVER_VERIFIER_DETECTED_VIOLATION,
        [
            verifier::RELEASED_BY_OTHER_THREAD,
            lock as u64,
            owner,
            e.uid,
        ],
        format!("{} of spin lock {lock:p}, which is held by {name}", e.ddi),
    );
}

/// Records a hold of `addr` by the calling context.
pub(crate) fn hold(e: &Entry, addr: usize, family: LockFamily, saved_irql: Option<u8>) {
    e.held.borrow_mut().push(Hold {
        addr,
        family,
        saved_irql,
        acquired_by: e.ddi,
    });
}

/// Bug checks unless the caller is exactly at `DISPATCH_LEVEL` (`below` is the 0xC4 subcode for
/// a lower IRQL; above is DDI rule `IrqlDispatch`, errata 5). `object` is P3.
pub(crate) fn require_dispatch(e: &Entry, object: u64, below: u64) {
    let level = e.irql.get();
    if level < irql::DISPATCH {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [below, u64::from(level), object, 0],
            format!("{} at IRQL {level}: requires DISPATCH_LEVEL", e.ddi),
        );
    }
    if level > irql::DISPATCH {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RULE_IRQL_DISPATCH, u64::from(level), object, 0],
            format!("{} at IRQL {level}: requires exactly DISPATCH_LEVEL", e.ddi),
        );
    }
}

/// Bug checks 0xC4/0x42 when a raising spin-lock acquire is called above `DISPATCH_LEVEL`;
/// returns the caller's IRQL.
pub(crate) fn require_at_most_dispatch(e: &Entry, lock: u64) -> u8 {
    let old = e.irql.get();
    if old > irql::DISPATCH {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::ACQUIRE_SPIN_LOCK_ABOVE_DISPATCH,
                u64::from(old),
                lock,
                0,
            ],
            format!("{} at IRQL {old}: requires <= DISPATCH_LEVEL", e.ddi),
        );
    }
    old
}

/// Bug checks 0xC4/0x32 unless a releasing call is at exactly `DISPATCH_LEVEL`.
pub(crate) fn require_dispatch_for_release(e: &Entry, object: u64) {
    let level = e.irql.get();
    if level != irql::DISPATCH {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RELEASE_SPIN_LOCK_BAD_IRQL,
                u64::from(level),
                object,
                0,
            ],
            format!("{} at IRQL {level}: requires DISPATCH_LEVEL", e.ddi),
        );
    }
}

/// Bug checks DDI rule 0x20015 when `new_irql` is not the IRQL the acquire saved.
fn check_saved_irql(e: &Entry, lock: PKSPIN_LOCK, new_irql: u8, saved: u8) {
    if new_irql != saved {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RULE_IRQL_KE_RELEASE_SPIN_LOCK,
                lock as u64,
                u64::from(new_irql),
                u64::from(saved),
            ],
            format!(
                "{}({lock:p}, {new_irql}): the acquire saved IRQL {saved}",
                e.ddi
            ),
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
        let old = require_at_most_dispatch(&e, SpinLock as u64);
        e.set_irql(irql::DISPATCH);
        spin_acquire(&e, SpinLock);
        hold(&e, SpinLock as usize, LockFamily::SpinRaise, Some(old));
        old
    }
}

export! {
    /// Releases a lock taken with `KeAcquireSpinLock` and lowers IRQL to `NewIrql`, which must
    /// be the saved value (DDI rule 0x20015). At exactly `DISPATCH_LEVEL` (else 0xC4/0x32).
    fn KeReleaseSpinLock(SpinLock: PKSPIN_LOCK, NewIrql: KIRQL) {
        let e = enter("KeReleaseSpinLock");
        require_dispatch_for_release(&e, SpinLock as u64);
        let level = e.irql.get();
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
        check_saved_irql(&e, SpinLock, NewIrql, hold.saved_irql.unwrap_or(level));
        e.set_irql(NewIrql);
    }
}

export! {
    /// Acquires a spin lock at exactly `DISPATCH_LEVEL` (below: 0xC4/0x40; above: 0xC4/0x20003).
    fn KeAcquireSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK) {
        let e = enter("KeAcquireSpinLockAtDpcLevel");
        require_dispatch(&e, SpinLock as u64, verifier::ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH);
        spin_acquire(&e, SpinLock);
        hold(&e, SpinLock as usize, LockFamily::SpinAtDpc, None);
    }
}

export! {
    /// Releases a lock taken at DPC level, at exactly `DISPATCH_LEVEL` (below: 0xC4/0x41).
    fn KeReleaseSpinLockFromDpcLevel(SpinLock: PKSPIN_LOCK) {
        let e = enter("KeReleaseSpinLockFromDpcLevel");
        require_dispatch(&e, SpinLock as u64, verifier::RELEASE_FROM_DPC_LEVEL_BELOW_DISPATCH);
        spin_release(&e, SpinLock, LockFamily::SpinAtDpc);
    }
}

export! {
    /// One attempt to acquire at `DISPATCH_LEVEL`: TRUE when now owned, FALSE when busy.
    fn KeTryToAcquireSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK) -> BOOLEAN {
        let e = enter("KeTryToAcquireSpinLockAtDpcLevel");
        require_dispatch(&e, SpinLock as u64, verifier::ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH);
        if spin_try(&e, SpinLock) {
            hold(&e, SpinLock as usize, LockFamily::SpinAtDpc, None);
            1
        } else {
            0
        }
    }
}

export! {
    /// For a threaded DPC: acquires the lock, raising a caller below `DISPATCH_LEVEL` to
    /// `DISPATCH_LEVEL` (a caller at `DISPATCH_LEVEL` stays there), and returns the previous
    /// IRQL for `KeReleaseSpinLockForDpc`. IRQL <= `DISPATCH_LEVEL` (above: 0xC4/0x42).
    fn KeAcquireSpinLockForDpc(SpinLock: PKSPIN_LOCK) -> KIRQL {
        let e = enter("KeAcquireSpinLockForDpc");
        let old = require_at_most_dispatch(&e, SpinLock as u64);
        e.set_irql(irql::DISPATCH);
        spin_acquire(&e, SpinLock);
        hold(&e, SpinLock as usize, LockFamily::SpinForDpc, Some(old));
        old
    }
}

export! {
    /// Releases a lock taken with `KeAcquireSpinLockForDpc` and returns to `OldIrql`, which must
    /// be the value that acquire returned (DDI rule 0x20015, as for `KeReleaseSpinLock`). At
    /// exactly `DISPATCH_LEVEL` (else 0xC4/0x32).
    fn KeReleaseSpinLockForDpc(SpinLock: PKSPIN_LOCK, OldIrql: KIRQL) {
        let e = enter("KeReleaseSpinLockForDpc");
        require_dispatch_for_release(&e, SpinLock as u64);
        let level = e.irql.get();
        let hold = spin_release(&e, SpinLock, LockFamily::SpinForDpc);
        check_saved_irql(&e, SpinLock, OldIrql, hold.saved_irql.unwrap_or(level));
        e.set_irql(OldIrql);
    }
}

export! {
    /// TRUE when the spin lock is currently free, FALSE when held (by either family); a hint
    /// only. Never acquires, never changes IRQL. Any IRQL (intended for low-IRQL callers).
    fn KeTestSpinLock(SpinLock: PKSPIN_LOCK) -> BOOLEAN {
        let e = enter("KeTestSpinLock");
        u8::from(word(&e, SpinLock).load(Ordering::Relaxed) == 0)
    }
}
