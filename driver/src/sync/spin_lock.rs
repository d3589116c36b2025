//! Executive spin lock (`KSPIN_LOCK`).
//!
//! From a thread: `KeAcquireSpinLockRaiseToDpc` (what `KeAcquireSpinLock` expands to on x64)
//! and `KeReleaseSpinLock` with the saved IRQL. From a DPC: `KeAcquireSpinLockAtDpcLevel` and
//! `KeReleaseSpinLockFromDpcLevel`. The holder runs at `DISPATCH_LEVEL` either way.

use wdk_sys::{KIRQL, KSPIN_LOCK};

use super::{Backend, DpcBackend};

/// The `KSPIN_LOCK` backend.
pub struct SpinLockBackend;

/// How an acquisition was made, so the release matches it.
pub enum Acquired {
    /// Raised from this IRQL; release with `KeReleaseSpinLock(lock, irql)`.
    Raised(KIRQL),
    /// Taken at `DISPATCH_LEVEL`; release with `KeReleaseSpinLockFromDpcLevel`.
    AtDpcLevel,
}

/// A spin lock protecting a `T`. Acquire at IRQL <= `DISPATCH_LEVEL`; the holder runs at
/// `DISPATCH_LEVEL` and must keep the hold short and never wait.
pub type SpinLock<T> = super::Lock<T, SpinLockBackend>;

// SAFETY: KeAcquireSpinLock*/KeReleaseSpinLock* provide mutual exclusion on the KSPIN_LOCK.
unsafe impl Backend for SpinLockBackend {
    type State = KSPIN_LOCK;
    type GuardState = Acquired;

    unsafe fn init(state: *mut KSPIN_LOCK) {
        // SAFETY: `state` is writable, pinned and not in use (caller's contract).
        unsafe { wdk_sys::ntddk::KeInitializeSpinLock(state) };
    }

    unsafe fn lock(state: *mut KSPIN_LOCK) -> Acquired {
        // SAFETY: initialised, pinned, nonpaged KSPIN_LOCK not held by the caller; the caller
        // is at IRQL <= DISPATCH_LEVEL (Backend::lock's contract).
        Acquired::Raised(unsafe { wdk_sys::ntddk::KeAcquireSpinLockRaiseToDpc(state) })
    }

    unsafe fn unlock(state: *mut KSPIN_LOCK, guard: &Acquired) {
        match *guard {
            // SAFETY: the caller holds the lock through the raising acquire that saved
            // `irql`; it is still at DISPATCH_LEVEL (the holder never lowers).
            Acquired::Raised(irql) => unsafe { wdk_sys::ntddk::KeReleaseSpinLock(state, irql) },
            // SAFETY: the caller holds it through KeAcquireSpinLockAtDpcLevel, at DISPATCH_LEVEL.
            Acquired::AtDpcLevel => unsafe { wdk_sys::ntddk::KeReleaseSpinLockFromDpcLevel(state) },
        }
    }
}

// SAFETY: as for Backend.
unsafe impl DpcBackend for SpinLockBackend {
    unsafe fn lock_at_dpc(state: *mut KSPIN_LOCK) -> Acquired {
        // SAFETY: initialised, pinned, not held by the caller, and the caller is at
        // DISPATCH_LEVEL (DpcBackend::lock_at_dpc's contract).
        unsafe { wdk_sys::ntddk::KeAcquireSpinLockAtDpcLevel(state) };
        Acquired::AtDpcLevel
    }
}
