//! APC state: critical and guarded regions as guards, and the two queries (ddi.md 0.3).

use core::marker::PhantomData;

/// A critical region (normal kernel APCs disabled) for as long as it lives. IRQL <= `APC_LEVEL`.
#[must_use = "the region is left when the guard is dropped"]
pub struct CriticalRegion {
    _not_send: PhantomData<*mut ()>,
}

impl CriticalRegion {
    /// Enters a critical region (`KeEnterCriticalRegion`). IRQL <= `APC_LEVEL`.
    pub fn enter() -> Self {
        // SAFETY: IRQL <= APC_LEVEL is this function's contract; the matching leave is the
        // guard's drop, on the same thread (the guard is !Send).
        unsafe { wdk_sys::ntddk::KeEnterCriticalRegion() };
        Self {
            _not_send: PhantomData,
        }
    }
}

impl Drop for CriticalRegion {
    fn drop(&mut self) {
        // SAFETY: this guard entered the region on this thread and leaves it exactly once.
        unsafe { wdk_sys::ntddk::KeLeaveCriticalRegion() };
    }
}

/// A guarded region (all APCs disabled) for as long as it lives. IRQL <= `APC_LEVEL`.
#[must_use = "the region is left when the guard is dropped"]
pub struct GuardedRegion {
    _not_send: PhantomData<*mut ()>,
}

impl GuardedRegion {
    /// Enters a guarded region (`KeEnterGuardedRegion`). IRQL <= `APC_LEVEL`.
    pub fn enter() -> Self {
        // SAFETY: IRQL <= APC_LEVEL is this function's contract; the matching leave is the
        // guard's drop, on the same thread (the guard is !Send).
        unsafe { wdk_sys::ntddk::KeEnterGuardedRegion() };
        Self {
            _not_send: PhantomData,
        }
    }
}

impl Drop for GuardedRegion {
    fn drop(&mut self) {
        // SAFETY: this guard entered the region on this thread and leaves it exactly once.
        unsafe { wdk_sys::ntddk::KeLeaveGuardedRegion() };
    }
}

/// `KeAreApcsDisabled()`: in a critical or a guarded region. IRQL <= `APC_LEVEL` (errata 1:
/// never from a DPC or under a spin lock).
#[must_use]
pub fn apcs_disabled() -> bool {
    // SAFETY: no preconditions beyond the IRQL, which is this function's contract.
    unsafe { wdk_sys::ntddk::KeAreApcsDisabled() != 0 }
}

/// `KeAreAllApcsDisabled()`: in a guarded region or at IRQL >= `APC_LEVEL`. IRQL <=
/// `APC_LEVEL` (errata 1).
#[must_use]
pub fn all_apcs_disabled() -> bool {
    // SAFETY: no preconditions beyond the IRQL, which is this function's contract.
    unsafe { wdk_sys::ntddk::KeAreAllApcsDisabled() != 0 }
}
