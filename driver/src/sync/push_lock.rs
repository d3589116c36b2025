//! Push lock (`EX_PUSH_LOCK`, ddi.md section 6.1): readers and writers.
//!
//! - [`Lock::lock`]: `KeEnterCriticalRegion`, `ExAcquirePushLockExclusiveEx(lock, 0)`; released
//!   by `ExReleasePushLockExclusiveEx(lock, 0)`, then `KeLeaveCriticalRegion`.
//! - [`Lock::lock_shared`]: the same with `ExAcquirePushLockSharedEx` /
//!   `ExReleasePushLockSharedEx`.
//!
//! Flags 0 is what the `ExAcquirePushLockExclusive` (etc.) macros pass
//! (`EX_DEFAULT_PUSH_LOCK_FLAGS`). The critical region the DDIs require is entered by the
//! acquire itself and kept in the guard, which leaves it only after the release. IRQL <=
//! `APC_LEVEL` for both modes; the holder stays at the caller's IRQL with normal kernel APCs
//! disabled by the region. Not recursive in any mode (a second acquire by a holder hangs as soon
//! as a writer is queued); not fair; never from a DPC.

use alloc::boxed::Box;
use core::pin::Pin;
use core::sync::atomic::AtomicBool;

use synclab_protocol::wire::StressResponse;
use wdk_sys::{NTSTATUS, ULONG, ULONG_PTR};

use super::{Lock, NonRecursive, RawExclusive, RawLock, RawShared};
use crate::{
    kernel::apc::CriticalRegion,
    stress::{Attempt, Hold, Inside, Setup, TortureOps},
};

/// `EX_DEFAULT_PUSH_LOCK_FLAGS`, what the non-`Ex` macros pass.
const EX_DEFAULT_PUSH_LOCK_FLAGS: ULONG = 0;

/// The `EX_PUSH_LOCK` backend (`EX_PUSH_LOCK` is a `ULONG_PTR` macro, absent from `wdk-sys`).
pub struct PushLockBackend;

/// A push lock protecting a `T`. Acquire (either mode) at IRQL <= `APC_LEVEL`; the holder stays
/// at the caller's IRQL, in a critical region the guard leaves after the release.
pub type PushLock<T> = Lock<T, PushLockBackend>;

// SAFETY: a push lock initialised by ExInitializePushLock has either one exclusive holder or any
// number of shared holders, never both, between its acquires and the matching releases.
unsafe impl RawLock for PushLockBackend {
    type State = ULONG_PTR;

    fn uninit() -> ULONG_PTR {
        0
    }

    /// `ExInitializePushLock`. Any IRQL.
    unsafe fn init(state: *mut ULONG_PTR) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is writable, pointer-aligned, pinned and not in use (RawLock::init's
        // contract); ExInitializePushLock has no IRQL requirement.
        unsafe { wdk_sys::ntddk::ExInitializePushLock(state) };
        Ok(())
    }
}

// SAFETY: ExAcquirePushLockExclusiveEx gives the initialised push lock one holder, beside no
// shared one, until the exclusive release, which matches it.
unsafe impl RawExclusive for PushLockBackend {
    /// The critical region entered before the acquire; dropped (left) after the release, since
    /// the guard's state drops after its `Drop` has called `unlock`.
    type GuardState = CriticalRegion;

    /// `KeEnterCriticalRegion`, `ExAcquirePushLockExclusiveEx(lock, 0)`. IRQL <= `APC_LEVEL`.
    unsafe fn lock(state: *mut ULONG_PTR) -> CriticalRegion {
        let region = CriticalRegion::enter();
        // SAFETY: an initialised, pinned push lock the caller does not hold (either mode); the
        // caller is at IRQL <= APC_LEVEL (RawExclusive::lock's contract) and `region` has just
        // put it in the critical region the acquire requires; flags 0 are valid.
        unsafe {
            wdk_sys::ntddk::ExAcquirePushLockExclusiveEx(state, EX_DEFAULT_PUSH_LOCK_FLAGS);
        }
        region
    }

    /// `ExReleasePushLockExclusiveEx(lock, 0)`; the caller's guard then leaves the region.
    unsafe fn unlock(state: *mut ULONG_PTR, _region: &CriticalRegion) {
        // SAFETY: the caller holds the lock exclusive through the acquire that returned
        // `_region`, on this thread, still inside that critical region (it is left only when the
        // guard state drops, after this call), at IRQL <= DISPATCH_LEVEL (it acquired at <=
        // APC_LEVEL, and guards drop in reverse order, so any raise inside has ended); flags 0
        // are valid.
        unsafe {
            wdk_sys::ntddk::ExReleasePushLockExclusiveEx(state, EX_DEFAULT_PUSH_LOCK_FLAGS);
        }
    }
}

// SAFETY: ExAcquirePushLockSharedEx admits no exclusive holder until the shared release, which
// matches it.
unsafe impl RawShared for PushLockBackend {
    /// As [`RawExclusive::GuardState`]: the critical region, left after the release.
    type SharedGuardState = CriticalRegion;

    /// `KeEnterCriticalRegion`, `ExAcquirePushLockSharedEx(lock, 0)`. IRQL <= `APC_LEVEL`.
    unsafe fn lock_shared(state: *mut ULONG_PTR) -> CriticalRegion {
        let region = CriticalRegion::enter();
        // SAFETY: an initialised, pinned push lock the caller does not hold (a shared re-acquire
        // deadlocks once a writer queues); the caller is at IRQL <= APC_LEVEL
        // (RawShared::lock_shared's contract) and `region` has just put it in the critical
        // region the acquire requires; flags 0 are valid.
        unsafe {
            wdk_sys::ntddk::ExAcquirePushLockSharedEx(state, EX_DEFAULT_PUSH_LOCK_FLAGS);
        }
        region
    }

    /// `ExReleasePushLockSharedEx(lock, 0)`; the caller's guard then leaves the region.
    unsafe fn unlock_shared(state: *mut ULONG_PTR, _region: &CriticalRegion) {
        // SAFETY: the caller holds the lock shared through the acquire that returned `_region`,
        // on this thread, still inside that critical region (left only when the guard state
        // drops, after this call), at IRQL <= DISPATCH_LEVEL (as for unlock); flags 0 are
        // valid.
        unsafe {
            wdk_sys::ntddk::ExReleasePushLockSharedEx(state, EX_DEFAULT_PUSH_LOCK_FLAGS);
        }
    }
}

// SAFETY: no acquire by the exclusive holder returns: an exclusive or shared request by it hangs
// (ddi.md 6.1). A shared holder's second shared acquire can return while no writer is queued
// (errata 16), but shared guards give `&T` only, so the `&mut T` this marker allows stays the
// only reference.
unsafe impl NonRecursive for PushLockBackend {}

/// The stress table of `pushlock` (one variant, `plain`). Threads only, at `PASSIVE_LEVEL` or
/// `APC_LEVEL`: writers exclusive, readers shared.
pub struct Ops {
    lock: Pin<Box<PushLock<()>>>,
}

impl TortureOps for Ops {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        if setup.plan.variant.name != "plain" {
            return Err(wdk_sys::STATUS_NOT_SUPPORTED);
        }
        Ok(Self {
            lock: PushLock::try_new(())?,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        let _guard = self.lock.as_ref().lock();
        inside(Hold::EXCLUSIVE);
        Attempt::DONE
    }

    fn read(&self, inside: Inside<'_>) -> Attempt {
        let _guard = self.lock.as_ref().lock_shared();
        inside(Hold::SHARED);
        Attempt::DONE
    }
}

/// Runs `pushlock`, until it ends or `stop` is set. IRQL: `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
