//! Reader/writer spin locks (`EX_SPIN_LOCK`, a 32-bit `LONG`), ddi.md section 3.
//!
//! The lock word is the driver's own zero-initialised `LONG`, used as an atomic:
//!
//! | bits | meaning |
//! |---|---|
//! | 31 | held exclusive |
//! | 16..=30 | writers waiting |
//! | 0..=15 | shared holders |
//!
//! A shared acquire succeeds only while the lock is neither held exclusive nor awaited by a
//! writer, so once a writer waits new readers wait until it has acquired and released (writer
//! preference, ddi.md 3 rule 2); readers already in keep the lock and really hold it together. A
//! writer registers as waiting, then takes the lock once it is free of readers and of another
//! writer. `ExTryConvertSharedSpinLockExclusive` succeeds only from exactly "one reader, no
//! writer waiting" (rule 3). At most one context per processor runs at `DISPATCH_LEVEL`, so the
//! counts cannot overflow their fields.
//!
//! Which contexts hold the lock, and how, is the holders' own bookkeeping (their `held` lists):
//! re-acquiring in either mode is 0xF (emulator convention, 13.3); releasing with the other
//! mode or variant is 0xC4/0x1009; releasing a lock not held is 0xC4/0x1007 (free) or 0x1004
//! (held by others, who are not identified: P3 = 0); converting without holding it shared is
//! 0xC4/0x1007. ddi.md names no IRQL code for these routines, so IRQL violations are the generic
//! 0xC4/0xE5 (P2 the IRQL, P3 the lock): the raising acquires need <= `DISPATCH_LEVEL`, their
//! releases and the conversion exactly `DISPATCH_LEVEL`, the `…AtDpcLevel`/`…FromDpcLevel` and
//! `ExTry…AtDpcLevel` variants >= `DISPATCH_LEVEL` (the header's bound). A raising release
//! given an `OldIrql` above the current IRQL is 0xC4/0x31, as `KeLowerIrql`.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Instant,
};

use wdk_sys::{KIRQL, LOGICAL, PEX_SPIN_LOCK};

use super::spin_lock;
use crate::{
    bugcheck::{code::DRIVER_VERIFIER_DETECTED_VIOLATION, verifier},
    context::{enter, irql, Entry, Hold, LockFamily},
    processor::spin_wait,
};

/// Held exclusive.
const EXCLUSIVE: u32 = 0x8000_0000;
/// One waiting writer.
const WRITER: u32 = 0x0001_0000;
/// The waiting-writers field.
const WRITERS: u32 = 0x7FFF_0000;
/// The shared-holders field.
const READERS: u32 = 0x0000_FFFF;

/// The lock word, after checking the pointer (0xC4/0xE1 when null or misaligned).
fn word<'a>(e: &Entry, lock: PEX_SPIN_LOCK) -> &'a AtomicU32 {
    if lock.is_null() || !lock.cast::<AtomicU32>().is_aligned() {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [0xE1, lock as u64, 0, 0],
            format!(
                "{} on an invalid or misaligned EX_SPIN_LOCK {lock:p}",
                e.ddi
            ),
        );
    }
    // SAFETY: `lock` is non-null and 4-byte aligned (checked above); the DDI contract makes it a
    // zero-initialised LONG in resident memory that lives while the lock is in use, and every
    // access to it goes through atomics.
    unsafe { AtomicU32::from_ptr(lock.cast::<u32>()) }
}

/// The state of the lock, for hang messages.
fn describe(lock: PEX_SPIN_LOCK, value: u32) -> String {
    format!(
        "EX_SPIN_LOCK {lock:p} ({}{} shared holders, {} writers waiting)",
        if value & EXCLUSIVE == 0 {
            ""
        } else {
            "held exclusive, "
        },
        value & READERS,
        (value & WRITERS) / WRITER
    )
}

/// Bug checks 0xC4/0xE5 when `ok` does not hold for the caller's IRQL.
fn require_irql(e: &Entry, lock: PEX_SPIN_LOCK, ok: impl FnOnce(u8) -> bool, needs: &str) -> u8 {
    let level = e.irql.get();
    if !ok(level) {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(level),
                lock as u64,
                0,
            ],
            format!("{} at IRQL {level}: requires {needs}", e.ddi),
        );
    }
    level
}

fn require_at_most_dispatch(e: &Entry, lock: PEX_SPIN_LOCK) -> u8 {
    require_irql(e, lock, |l| l <= irql::DISPATCH, "<= DISPATCH_LEVEL")
}

fn require_dispatch(e: &Entry, lock: PEX_SPIN_LOCK) {
    require_irql(e, lock, |l| l == irql::DISPATCH, "DISPATCH_LEVEL");
}

fn require_at_least_dispatch(e: &Entry, lock: PEX_SPIN_LOCK) {
    require_irql(e, lock, |l| l >= irql::DISPATCH, ">= DISPATCH_LEVEL");
}

/// Lowers IRQL to the `OldIrql` a raising release was given; a value above the current IRQL is
/// not a lower (0xC4/0x31, as `KeLowerIrql`).
fn lower_to(e: &Entry, old_irql: u8) {
    let level = e.irql.get();
    if old_irql > level {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::LOWER_IRQL_INVALID,
                u64::from(level),
                u64::from(old_irql),
                0,
            ],
            format!(
                "{} with OldIrql {old_irql}, above the current IRQL {level}",
                e.ddi
            ),
        );
    }
    e.set_irql(old_irql);
}

/// Spins until the caller holds the lock shared.
fn acquire_shared(e: &Entry, lock: PEX_SPIN_LOCK) {
    let word = word(e, lock);
    spin_lock::check_not_owned(e, lock as usize);
    let began = Instant::now();
    let mut spins = 0;
    loop {
        let value = word.load(Ordering::Relaxed);
        if value & (EXCLUSIVE | WRITERS) == 0
            && word
                .compare_exchange_weak(value, value + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        spin_wait(e, &mut spins, began, lock as u64, || {
            describe(lock, word.load(Ordering::Relaxed))
        });
    }
}

/// Spins until the caller holds the lock exclusive, waiting as a writer meanwhile.
fn acquire_exclusive(e: &Entry, lock: PEX_SPIN_LOCK) {
    let word = word(e, lock);
    spin_lock::check_not_owned(e, lock as usize);
    if word
        .compare_exchange(0, EXCLUSIVE, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    word.fetch_add(WRITER, Ordering::Relaxed);
    let began = Instant::now();
    let mut spins = 0;
    loop {
        let value = word.load(Ordering::Relaxed);
        if value & (EXCLUSIVE | READERS) == 0
            && word
                .compare_exchange_weak(
                    value,
                    (value - WRITER) | EXCLUSIVE,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return;
        }
        spin_wait(e, &mut spins, began, lock as u64, || {
            describe(lock, word.load(Ordering::Relaxed))
        });
    }
}

/// One attempt at a shared hold: fails while the lock is held exclusive or a writer waits.
fn try_shared(e: &Entry, lock: PEX_SPIN_LOCK) -> bool {
    let word = word(e, lock);
    spin_lock::check_not_owned(e, lock as usize);
    let mut value = word.load(Ordering::Relaxed);
    while value & (EXCLUSIVE | WRITERS) == 0 {
        match word.compare_exchange_weak(value, value + 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => value = now,
        }
    }
    false
}

/// One attempt at an exclusive hold: fails while the lock has any holder.
fn try_exclusive(e: &Entry, lock: PEX_SPIN_LOCK) -> bool {
    let word = word(e, lock);
    spin_lock::check_not_owned(e, lock as usize);
    let mut value = word.load(Ordering::Relaxed);
    while value & (EXCLUSIVE | READERS) == 0 {
        match word.compare_exchange_weak(
            value,
            value | EXCLUSIVE,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return true,
            Err(now) => value = now,
        }
    }
    false
}

/// Releases the caller's hold made through `family` (shared or exclusive by the family).
fn release(e: &Entry, lock: PEX_SPIN_LOCK, family: LockFamily) -> Hold {
    let word = word(e, lock);
    let Some(hold) = spin_lock::release_hold(e, lock as usize, family, 0) else {
        let value = word.load(Ordering::Relaxed);
        if value & (EXCLUSIVE | READERS) == 0 {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RELEASED_NOT_ACQUIRED, lock as u64, 0, 0],
                format!("{} of EX_SPIN_LOCK {lock:p}, which is not held", e.ddi),
            );
        }
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASED_BY_OTHER_THREAD, lock as u64, 0, e.uid],
            format!(
                "{} of {}, which this context does not hold",
                e.ddi,
                describe(lock, value)
            ),
        );
    };
    if matches!(
        family,
        LockFamily::ExSpinShared | LockFamily::ExSpinSharedAtDpc
    ) {
        word.fetch_sub(1, Ordering::Release);
    } else {
        word.fetch_and(!EXCLUSIVE, Ordering::Release);
    }
    hold
}

export! {
    /// Raises to `DISPATCH_LEVEL` and acquires the lock exclusive; returns the previous IRQL.
    /// IRQL <= `DISPATCH_LEVEL`. Re-acquiring a lock the caller holds (either mode) is 0xF.
    fn ExAcquireSpinLockExclusive(SpinLock: PEX_SPIN_LOCK) -> KIRQL {
        let e = enter("ExAcquireSpinLockExclusive");
        let old = require_at_most_dispatch(&e, SpinLock);
        e.set_irql(irql::DISPATCH);
        acquire_exclusive(&e, SpinLock);
        spin_lock::hold(&e, SpinLock as usize, LockFamily::ExSpinExclusive, Some(old));
        old
    }
}

export! {
    /// Raises to `DISPATCH_LEVEL` and acquires the lock shared (waiting while it is held
    /// exclusive or a writer waits); returns the previous IRQL. IRQL <= `DISPATCH_LEVEL`.
    fn ExAcquireSpinLockShared(SpinLock: PEX_SPIN_LOCK) -> KIRQL {
        let e = enter("ExAcquireSpinLockShared");
        let old = require_at_most_dispatch(&e, SpinLock);
        e.set_irql(irql::DISPATCH);
        acquire_shared(&e, SpinLock);
        spin_lock::hold(&e, SpinLock as usize, LockFamily::ExSpinShared, Some(old));
        old
    }
}

export! {
    /// Releases an exclusive hold from `ExAcquireSpinLockExclusive` (or a converted
    /// `ExAcquireSpinLockShared` hold) and lowers IRQL to `OldIrql`. At `DISPATCH_LEVEL`.
    fn ExReleaseSpinLockExclusive(SpinLock: PEX_SPIN_LOCK, OldIrql: KIRQL) {
        let e = enter("ExReleaseSpinLockExclusive");
        require_dispatch(&e, SpinLock);
        release(&e, SpinLock, LockFamily::ExSpinExclusive);
        lower_to(&e, OldIrql);
    }
}

export! {
    /// Releases a shared hold from `ExAcquireSpinLockShared` and lowers IRQL to `OldIrql`. At
    /// `DISPATCH_LEVEL`.
    fn ExReleaseSpinLockShared(SpinLock: PEX_SPIN_LOCK, OldIrql: KIRQL) {
        let e = enter("ExReleaseSpinLockShared");
        require_dispatch(&e, SpinLock);
        release(&e, SpinLock, LockFamily::ExSpinShared);
        lower_to(&e, OldIrql);
    }
}

export! {
    /// Acquires the lock exclusive, IRQL unchanged. IRQL >= `DISPATCH_LEVEL`.
    fn ExAcquireSpinLockExclusiveAtDpcLevel(SpinLock: PEX_SPIN_LOCK) {
        let e = enter("ExAcquireSpinLockExclusiveAtDpcLevel");
        require_at_least_dispatch(&e, SpinLock);
        acquire_exclusive(&e, SpinLock);
        spin_lock::hold(&e, SpinLock as usize, LockFamily::ExSpinExclusiveAtDpc, None);
    }
}

export! {
    /// Acquires the lock shared, IRQL unchanged. IRQL >= `DISPATCH_LEVEL`.
    fn ExAcquireSpinLockSharedAtDpcLevel(SpinLock: PEX_SPIN_LOCK) {
        let e = enter("ExAcquireSpinLockSharedAtDpcLevel");
        require_at_least_dispatch(&e, SpinLock);
        acquire_shared(&e, SpinLock);
        spin_lock::hold(&e, SpinLock as usize, LockFamily::ExSpinSharedAtDpc, None);
    }
}

export! {
    /// Releases an exclusive hold taken at DPC level (or a converted `…SharedAtDpcLevel` hold),
    /// IRQL unchanged. IRQL >= `DISPATCH_LEVEL`.
    fn ExReleaseSpinLockExclusiveFromDpcLevel(SpinLock: PEX_SPIN_LOCK) {
        let e = enter("ExReleaseSpinLockExclusiveFromDpcLevel");
        require_at_least_dispatch(&e, SpinLock);
        release(&e, SpinLock, LockFamily::ExSpinExclusiveAtDpc);
    }
}

export! {
    /// Releases a shared hold taken at DPC level, IRQL unchanged. IRQL >= `DISPATCH_LEVEL`.
    fn ExReleaseSpinLockSharedFromDpcLevel(SpinLock: PEX_SPIN_LOCK) {
        let e = enter("ExReleaseSpinLockSharedFromDpcLevel");
        require_at_least_dispatch(&e, SpinLock);
        release(&e, SpinLock, LockFamily::ExSpinSharedAtDpc);
    }
}

export! {
    /// Converts the caller's shared hold to exclusive when it is the only shared holder and no
    /// writer waits: nonzero, and the hold must then be released exclusive with the variant
    /// matching its acquire. Zero otherwise, the caller still holding it shared. At
    /// `DISPATCH_LEVEL`; without a shared hold 0xC4/0x1007 (emulator convention).
    fn ExTryConvertSharedSpinLockExclusive(SpinLock: PEX_SPIN_LOCK) -> LOGICAL {
        let e = enter("ExTryConvertSharedSpinLockExclusive");
        require_dispatch(&e, SpinLock);
        let word = word(&e, SpinLock);
        let index = e.find_hold(SpinLock as usize).filter(|&i| {
            matches!(
                e.held.borrow()[i].family,
                LockFamily::ExSpinShared | LockFamily::ExSpinSharedAtDpc
            )
        });
        let Some(index) = index else {
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RELEASED_NOT_ACQUIRED, SpinLock as u64, 0, 0],
                format!(
                    "ExTryConvertSharedSpinLockExclusive of EX_SPIN_LOCK {SpinLock:p}, which this \
                     context does not hold shared"
                ),
            );
        };
        if word
            .compare_exchange(1, EXCLUSIVE, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return 0;
        }
        let mut holds = e.held.borrow_mut();
        let hold = &mut holds[index];
        hold.family = if hold.family == LockFamily::ExSpinShared {
            LockFamily::ExSpinExclusive
        } else {
            LockFamily::ExSpinExclusiveAtDpc
        };
        1
    }
}

export! {
    /// One attempt at a shared hold at DPC level: nonzero when acquired, zero (immediately)
    /// while the lock is held exclusive or a writer waits. IRQL >= `DISPATCH_LEVEL` (by its
    /// name; the header does not annotate it).
    fn ExTryAcquireSpinLockSharedAtDpcLevel(SpinLock: PEX_SPIN_LOCK) -> LOGICAL {
        let e = enter("ExTryAcquireSpinLockSharedAtDpcLevel");
        require_at_least_dispatch(&e, SpinLock);
        if try_shared(&e, SpinLock) {
            spin_lock::hold(&e, SpinLock as usize, LockFamily::ExSpinSharedAtDpc, None);
            1
        } else {
            0
        }
    }
}

export! {
    /// One attempt at an exclusive hold at DPC level: nonzero when acquired, zero (immediately)
    /// while the lock has any holder. IRQL >= `DISPATCH_LEVEL` (by its name; the header does not
    /// annotate it).
    fn ExTryAcquireSpinLockExclusiveAtDpcLevel(SpinLock: PEX_SPIN_LOCK) -> LOGICAL {
        let e = enter("ExTryAcquireSpinLockExclusiveAtDpcLevel");
        require_at_least_dispatch(&e, SpinLock);
        if try_exclusive(&e, SpinLock) {
            spin_lock::hold(&e, SpinLock as usize, LockFamily::ExSpinExclusiveAtDpc, None);
            1
        } else {
            0
        }
    }
}
