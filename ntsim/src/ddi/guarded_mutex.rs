//! Guarded mutexes (`KGUARDED_MUTEX`), ddi.md section 5, with the Windows 8 and later model.
//!
//! `KGUARDED_MUTEX` is `FAST_MUTEX`, and `KeAcquireGuardedMutex` raises to `APC_LEVEL` and saves
//! the previous IRQL in the mutex exactly as `ExAcquireFastMutex` does (so while it is held
//! `KeGetCurrentIrql` is 1, `KeAreApcsDisabled` is FALSE and `KeAreAllApcsDisabled` TRUE). The
//! state and blocking are [`super::fast_mutex`]'s; this module adds the guarded-mutex rules:
//! every routine at <= `APC_LEVEL` (DDI rule `IrqlKeApcLte1`, 0xC4/0x2000F), and the Unsafe pair
//! only inside a guarded region or at `APC_LEVEL` (a critical region is not enough: 0xC4/0x39,
//! 0x3A, emulator convention).
//!
//! The Windows Server 2003 – Windows 7 model (a guarded region at unchanged IRQL) is not
//! emulated.

use wdk_sys::{BOOLEAN, PKGUARDED_MUTEX};

use super::fast_mutex::{
    apc_violation, check_initialised, check_not_recursive, hold, initialise, release, take,
    try_take, view,
};
use crate::{
    bugcheck::{code::DRIVER_VERIFIER_DETECTED_VIOLATION, verifier},
    context::{enter, irql, Entry, LockFamily},
};

/// DDI rule `IrqlKeApcLte1`: every guarded-mutex routine at <= `APC_LEVEL` (P2 IRQL, P3 mutex).
fn require_apc_or_below(e: &Entry, mutex: PKGUARDED_MUTEX) {
    let level = e.irql.get();
    if level > irql::APC {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RULE_IRQL_KE_APC_LTE1,
                u64::from(level),
                mutex as u64,
                0,
            ],
            format!(
                "{} at IRQL {level}: guarded-mutex routines require <= APC_LEVEL",
                e.ddi
            ),
        );
    }
}

/// The Unsafe pair's precondition: a guarded region, or IRQL `APC_LEVEL`.
fn require_unsafe_state(e: &Entry, mutex: PKGUARDED_MUTEX, subcode: u64) {
    require_apc_or_below(e, mutex);
    if e.irql.get() < irql::APC && e.special_apc_disable.get() == 0 {
        apc_violation(
            e,
            subcode,
            mutex as u64,
            "the Unsafe guarded-mutex routines need a guarded region or APC_LEVEL (a critical \
             region is not enough)",
        );
    }
}

export! {
    /// Initialises a guarded mutex to the free state (the same state as `ExInitializeFastMutex`).
    /// IRQL <= `APC_LEVEL` (0xC4/0x2000F). Re-initialising a held mutex is 0xC4/0x1005.
    fn KeInitializeGuardedMutex(GuardedMutex: PKGUARDED_MUTEX) {
        let e = enter("KeInitializeGuardedMutex");
        require_apc_or_below(&e, GuardedMutex);
        initialise(&e, GuardedMutex);
    }
}

export! {
    /// Acquires a guarded mutex (Windows 8+: raises to `APC_LEVEL`, saves the previous IRQL in
    /// the mutex), sleeping while another thread owns it. IRQL <= `APC_LEVEL` (0xC4/0x2000F).
    /// Not recursive (0xBF).
    fn KeAcquireGuardedMutex(GuardedMutex: PKGUARDED_MUTEX) {
        let e = enter("KeAcquireGuardedMutex");
        require_apc_or_below(&e, GuardedMutex);
        let v = view(&e, GuardedMutex);
        check_initialised(&e, &v);
        check_not_recursive(&e, &v);
        e.machine.lock_order.acquire(&e, GuardedMutex as usize);
        let old = e.irql.get();
        e.set_irql(irql::APC);
        take(&e, &v);
        hold(&e, &v, LockFamily::GuardedMutex, Some(old));
    }
}

export! {
    /// One attempt to acquire a guarded mutex: TRUE when now owned (as `KeAcquireGuardedMutex`),
    /// FALSE at once when busy (also when the caller owns it). IRQL <= `APC_LEVEL`
    /// (0xC4/0x2000F).
    fn KeTryToAcquireGuardedMutex(GuardedMutex: PKGUARDED_MUTEX) -> BOOLEAN {
        let e = enter("KeTryToAcquireGuardedMutex");
        require_apc_or_below(&e, GuardedMutex);
        let v = view(&e, GuardedMutex);
        check_initialised(&e, &v);
        let old = e.irql.get();
        e.set_irql(irql::APC);
        if try_take(&e, &v) {
            hold(&e, &v, LockFamily::GuardedMutex, Some(old));
            1
        } else {
            e.set_irql(old);
            0
        }
    }
}

export! {
    /// Releases a guarded mutex taken with `KeAcquireGuardedMutex`/`KeTryToAcquireGuardedMutex`
    /// and restores the saved IRQL. IRQL <= `APC_LEVEL` (0xC4/0x2000F), and since the holder
    /// runs at `APC_LEVEL` on Windows 8+, exactly `APC_LEVEL` (a holder that lowered it:
    /// 0xC4/0x34, as for a fast mutex). Owner, matching-routine and order checks as
    /// `ExReleaseFastMutex`.
    fn KeReleaseGuardedMutex(GuardedMutex: PKGUARDED_MUTEX) {
        let e = enter("KeReleaseGuardedMutex");
        require_apc_or_below(&e, GuardedMutex);
        if e.irql.get() != irql::APC {
            apc_violation(
                &e,
                verifier::FAST_MUTEX_RELEASE_IRQL,
                GuardedMutex as u64,
                "the holder of a guarded mutex runs at APC_LEVEL (Windows 8 and later)",
            );
        }
        let v = view(&e, GuardedMutex);
        check_initialised(&e, &v);
        let saved = release(&e, &v, LockFamily::GuardedMutex);
        e.set_irql(saved);
    }
}

export! {
    /// Acquires a guarded mutex without changing IRQL or the APC state. The caller must be in a
    /// guarded region or at `APC_LEVEL` (else 0xC4/0x39; above `APC_LEVEL` 0xC4/0x2000F). Not
    /// recursive (0xBF).
    fn KeAcquireGuardedMutexUnsafe(GuardedMutex: PKGUARDED_MUTEX) {
        let e = enter("KeAcquireGuardedMutexUnsafe");
        require_unsafe_state(&e, GuardedMutex, verifier::UNSAFE_MUTEX_ACQUIRE_APCS_ENABLED);
        let v = view(&e, GuardedMutex);
        check_initialised(&e, &v);
        check_not_recursive(&e, &v);
        e.machine.lock_order.acquire(&e, GuardedMutex as usize);
        take(&e, &v);
        hold(&e, &v, LockFamily::GuardedMutexUnsafe, None);
    }
}

export! {
    /// Releases a guarded mutex taken with `KeAcquireGuardedMutexUnsafe`; IRQL unchanged. Same
    /// precondition as the acquire (else 0xC4/0x3A).
    fn KeReleaseGuardedMutexUnsafe(GuardedMutex: PKGUARDED_MUTEX) {
        let e = enter("KeReleaseGuardedMutexUnsafe");
        require_unsafe_state(&e, GuardedMutex, verifier::UNSAFE_MUTEX_RELEASE_APCS_ENABLED);
        let v = view(&e, GuardedMutex);
        check_initialised(&e, &v);
        release(&e, &v, LockFamily::GuardedMutexUnsafe);
    }
}
