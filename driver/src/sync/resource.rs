//! Executive resource (`ERESOURCE`, ddi.md section 7).
//!
//! - [`Lock::try_new`]: `ExInitializeResourceLite`; dropping the lock calls
//!   `ExDeleteResourceLite` before its memory is freed. IRQL <= `APC_LEVEL` for the drop.
//! - [`Lock::lock`]: `KeEnterCriticalRegion`, `ExAcquireResourceExclusiveLite(Wait = TRUE)`;
//!   the guard releases with `ExReleaseResourceLite`, then `KeLeaveCriticalRegion`.
//! - [`Lock::lock_shared`]: the same around `ExAcquireResourceSharedLite(Wait = TRUE)`;
//!   [`Resource::lock_shared_starve_exclusive`] and
//!   [`Resource::lock_shared_wait_for_exclusive`] use `ExAcquireSharedStarveExclusive` and
//!   `ExAcquireSharedWaitForExclusive` instead.
//! - [`Guard::convert_to_shared`]: `ExConvertExclusiveToSharedLite`; the hold goes on as a
//!   [`SharedGuard`] and is released like any shared one.
//! - [`Guard::depth`] / [`SharedGuard::depth`]: `ExIsResourceAcquiredSharedLite`, the
//!   acquisitions the calling thread holds.
//!
//! Every acquire is made from a thread at IRQL <= `APC_LEVEL` and inside a critical region
//! (ddi.md 7.2): each guard owns the region its acquire entered, so the order is always enter,
//! acquire, …, release, leave. The holder's IRQL is the caller's. The resource is recursive (an
//! exclusive owner may acquire it again in either mode and stays exclusive; a shared owner may
//! acquire it shared again), so its guards only give `&T`.

use alloc::boxed::Box;
use core::pin::Pin;
use core::sync::atomic::AtomicBool;

use synclab_protocol::wire::StressResponse;
use wdk_sys::{ERESOURCE, NTSTATUS, PERESOURCE};

use super::{Guard, Lock, RawExclusive, RawLock, RawShared, SharedGuard};
use crate::{
    kernel::apc::CriticalRegion,
    stress::{Attempt, Hold, Inside, Mode, Setup, TortureOps},
};

/// `TRUE`, for the `Wait` parameter: every acquire here waits until it is granted.
const WAIT: u8 = 1;

/// The `ERESOURCE` backend.
pub struct ResourceBackend;

/// An executive resource protecting a `T`. Acquire from a thread at IRQL <= `APC_LEVEL`; the
/// holder stays at its IRQL, in a critical region.
pub type Resource<T> = Lock<T, ResourceBackend>;

/// The shared acquire DDIs (ddi.md 7.2); they differ only in how they treat exclusive waiters.
#[derive(Clone, Copy)]
enum SharedDdi {
    /// `ExAcquireResourceSharedLite`: waits behind exclusive waiters unless the caller holds it.
    Lite,
    /// `ExAcquireSharedStarveExclusive`: passes exclusive waiters while others own it shared.
    StarveExclusive,
    /// `ExAcquireSharedWaitForExclusive`: waits behind exclusive waiters even if the caller
    /// owns it shared.
    WaitForExclusive,
}

/// Enters a critical region and acquires `resource` shared through `ddi`, waiting. Returns the
/// region, which the release must outlive.
///
/// # Safety
/// `resource` was initialised by `ExInitializeResourceLite`, is pinned in nonpaged memory and
/// not deleted; the caller is a thread at IRQL <= `APC_LEVEL`; with `WaitForExclusive`, the
/// caller does not already own it shared (it would wait behind its own hold).
unsafe fn acquire_shared(resource: PERESOURCE, ddi: SharedDdi) -> CriticalRegion {
    // Normal kernel APCs are disabled before the acquire and stay so until the release.
    let region = CriticalRegion::enter();
    let granted = match ddi {
        // SAFETY: a live, pinned resource, at IRQL <= APC_LEVEL, in the critical region just
        // entered (this function's contract and the line above).
        SharedDdi::Lite => unsafe { wdk_sys::ntddk::ExAcquireResourceSharedLite(resource, WAIT) },
        // SAFETY: a live, pinned resource, at IRQL <= APC_LEVEL, in the critical region just
        // entered.
        SharedDdi::StarveExclusive => unsafe {
            wdk_sys::ntddk::ExAcquireSharedStarveExclusive(resource, WAIT)
        },
        // SAFETY: a live, pinned resource, at IRQL <= APC_LEVEL, in the critical region just
        // entered; the caller does not own it shared, so it never waits behind itself.
        SharedDdi::WaitForExclusive => unsafe {
            wdk_sys::ntddk::ExAcquireSharedWaitForExclusive(resource, WAIT)
        },
    };
    debug_assert_ne!(
        granted, 0,
        "an acquire with Wait = TRUE returns only when granted"
    );
    region
}

/// `ExIsResourceAcquiredSharedLite`: how many acquisitions the calling thread holds, in either
/// mode.
///
/// # Safety
/// `resource` was initialised, is pinned and not deleted; IRQL <= `DISPATCH_LEVEL`.
unsafe fn held_by_caller(resource: PERESOURCE) -> u32 {
    // SAFETY: a live, pinned resource at IRQL <= DISPATCH_LEVEL (this function's contract);
    // the query changes nothing.
    unsafe { wdk_sys::ntddk::ExIsResourceAcquiredSharedLite(resource) }
}

// SAFETY: an ERESOURCE initialised by ExInitializeResourceLite grants an exclusive acquisition
// only when no other thread holds it in any mode, and a shared one only when no other thread
// holds it exclusively (ddi.md 7.2); it is deleted only once nobody holds or waits on it.
unsafe impl RawLock for ResourceBackend {
    type State = ERESOURCE;

    fn uninit() -> ERESOURCE {
        ERESOURCE::default()
    }

    unsafe fn init(state: *mut ERESOURCE) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is writable, 8-byte aligned, pinned, nonpaged and not in use
        // (RawLock::init's contract); Lock::try_new runs at IRQL <= DISPATCH_LEVEL.
        let status = unsafe { wdk_sys::ntddk::ExInitializeResourceLite(state) };
        // Always STATUS_SUCCESS (ddi.md 7.1); a failure would leave nothing to delete, and the
        // lock does not destroy what `init` did not initialise.
        if wdk::nt_success(status) {
            Ok(())
        } else {
            Err(status)
        }
    }

    unsafe fn destroy(state: *mut ERESOURCE) {
        // SAFETY: initialised, and nobody holds or waits on it (RawLock::destroy's contract);
        // the lock is dropped by a thread at IRQL <= APC_LEVEL, before its memory is freed.
        let status = unsafe { wdk_sys::ntddk::ExDeleteResourceLite(state) };
        debug_assert!(wdk::nt_success(status), "ExDeleteResourceLite: {status:#X}");
    }
}

// SAFETY: an exclusive acquisition of an initialised ERESOURCE is granted only while no other
// thread holds it in any mode (ddi.md 7.2); each release is ExReleaseResourceLite by the
// acquiring thread, still in the critical region its acquire entered.
unsafe impl RawExclusive for ResourceBackend {
    /// The critical region entered before the acquire; dropped after the release.
    type GuardState = CriticalRegion;

    unsafe fn lock(state: *mut ERESOURCE) -> CriticalRegion {
        // Normal kernel APCs are disabled before the acquire and stay so until the release.
        let region = CriticalRegion::enter();
        // SAFETY: initialised and pinned (RawExclusive::lock's contract), from a thread at IRQL
        // <= APC_LEVEL, in the critical region just entered. (A thread that owns it only shared
        // would wait for itself forever: a hang, never a second owner; `Ops` never asks so.)
        let granted = unsafe { wdk_sys::ntddk::ExAcquireResourceExclusiveLite(state, WAIT) };
        debug_assert_ne!(
            granted, 0,
            "an acquire with Wait = TRUE returns only when granted"
        );
        region
    }

    unsafe fn unlock(state: *mut ERESOURCE, _region: &CriticalRegion) {
        // SAFETY: the calling thread holds an acquisition of the resource (RawExclusive::unlock's
        // contract) and is still in the critical region that `_region` keeps, which the guard
        // leaves only after this release; IRQL <= APC_LEVEL, as at the acquire.
        unsafe { wdk_sys::ntddk::ExReleaseResourceLite(state) };
    }
}

// SAFETY: a shared acquisition of an initialised ERESOURCE is granted only while no other thread
// holds it exclusively (ddi.md 7.2); each release is ExReleaseResourceLite by the acquiring
// thread, still in the critical region its acquire entered.
unsafe impl RawShared for ResourceBackend {
    /// The critical region entered before the acquire; dropped after the release.
    type SharedGuardState = CriticalRegion;

    unsafe fn lock_shared(state: *mut ERESOURCE) -> CriticalRegion {
        // SAFETY: initialised and pinned, from a thread at IRQL <= APC_LEVEL
        // (RawShared::lock_shared's contract); `Lite` has no further requirement.
        unsafe { acquire_shared(state, SharedDdi::Lite) }
    }

    unsafe fn unlock_shared(state: *mut ERESOURCE, _region: &CriticalRegion) {
        // SAFETY: the calling thread holds a shared acquisition (RawShared::unlock_shared's
        // contract), still in the critical region `_region` keeps; IRQL <= APC_LEVEL.
        unsafe { wdk_sys::ntddk::ExReleaseResourceLite(state) };
    }
}

impl<T> Resource<T> {
    /// Acquires shared with `ExAcquireSharedStarveExclusive` (granted while others own it shared
    /// even if writers wait), in a critical region. IRQL <= `APC_LEVEL`, from a thread.
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_shared_starve_exclusive(self: Pin<&Self>) -> SharedGuard<'_, T, ResourceBackend> {
        // SAFETY: initialised and pinned (Lock::try_new is the only constructor); the caller is
        // a thread at IRQL <= APC_LEVEL (this method's contract).
        let region = unsafe { acquire_shared(self.state(), SharedDdi::StarveExclusive) };
        SharedGuard::new(self.get_ref(), region)
    }

    /// Acquires shared with `ExAcquireSharedWaitForExclusive` (waits behind waiting writers), in
    /// a critical region. IRQL <= `APC_LEVEL`, from a thread that does not already hold the
    /// resource shared (it would wait behind its own hold: a self-deadlock).
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_shared_wait_for_exclusive(self: Pin<&Self>) -> SharedGuard<'_, T, ResourceBackend> {
        // SAFETY: initialised and pinned (Lock::try_new is the only constructor); the caller is
        // a thread at IRQL <= APC_LEVEL that does not own it shared (this method's contract).
        let region = unsafe { acquire_shared(self.state(), SharedDdi::WaitForExclusive) };
        SharedGuard::new(self.get_ref(), region)
    }
}

impl<'a, T> Guard<'a, T, ResourceBackend> {
    /// Converts this exclusive hold to a shared one (`ExConvertExclusiveToSharedLite`), granting
    /// every waiting reader at once; the returned guard releases it. The critical region goes
    /// on. If this thread holds the resource recursively, all of its acquisitions become shared
    /// (the other guards only ever gave `&T`). IRQL <= `APC_LEVEL`.
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn convert_to_shared(self) -> SharedGuard<'a, T, ResourceBackend> {
        let lock = self.lock();
        let region = self.into_state();
        // SAFETY: the calling thread owns the resource exclusively through the guard it just gave
        // up (initialised and pinned: Lock::try_new), whose release the returned guard takes
        // over; it is a thread at IRQL <= APC_LEVEL (this method's contract).
        unsafe { wdk_sys::ntddk::ExConvertExclusiveToSharedLite(lock.state()) };
        SharedGuard::new(lock, region)
    }

    /// The acquisitions the calling thread holds, in either mode
    /// (`ExIsResourceAcquiredSharedLite`): 1 for one exclusive hold, 2 after a recursive one.
    /// IRQL <= `DISPATCH_LEVEL`.
    #[must_use]
    pub fn depth(&self) -> u32 {
        // SAFETY: initialised, pinned and not deleted while this guard borrows the lock; the
        // IRQL is this method's contract.
        unsafe { held_by_caller(self.lock().state()) }
    }
}

impl<T> SharedGuard<'_, T, ResourceBackend> {
    /// The acquisitions the calling thread holds, in either mode
    /// (`ExIsResourceAcquiredSharedLite`): 1 for one shared hold, 2 after a recursive one.
    /// IRQL <= `DISPATCH_LEVEL`.
    #[must_use]
    pub fn depth(&self) -> u32 {
        // SAFETY: initialised, pinned and not deleted while this guard borrows the lock; the
        // IRQL is this method's contract.
        unsafe { held_by_caller(self.lock().state()) }
    }
}

/// The variants of the registry row `resource`.
#[derive(Clone, Copy)]
enum Way {
    /// `ExAcquireResourceExclusiveLite` / `ExAcquireResourceSharedLite`.
    Lite,
    /// Readers: `ExAcquireSharedStarveExclusive`.
    Starve,
    /// Readers: `ExAcquireSharedWaitForExclusive`.
    WaitExclusive,
    /// Writers: exclusive, write, `ExConvertExclusiveToSharedLite`, read, release.
    Convert,
    /// Writers: exclusive then shared again (still exclusive); readers: shared twice.
    Recursive,
}

/// The stress table of `resource`. Every path runs in a thread at `PASSIVE_LEVEL` or
/// `APC_LEVEL` (the row allows no DPC).
pub struct Ops {
    lock: Pin<Box<Resource<()>>>,
    way: Way,
}

impl TortureOps for Ops {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        let way = crate::stress::variant(
            setup,
            &[
                ("lite", Way::Lite),
                ("starve", Way::Starve),
                ("waitexcl", Way::WaitExclusive),
                ("convert", Way::Convert),
                ("recursive", Way::Recursive),
            ],
        )?;
        Ok(Self {
            lock: Resource::try_new(())?,
            way,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        let lock = self.lock.as_ref();
        match self.way {
            Way::Lite | Way::Starve | Way::WaitExclusive => {
                let guard = lock.lock();
                inside(Hold {
                    mode: Mode::Exclusive,
                    depth: Some(guard.depth()),
                });
                Attempt::DONE
            }
            Way::Convert => {
                let exclusive = lock.lock();
                inside(Hold {
                    mode: Mode::Exclusive,
                    depth: Some(exclusive.depth()),
                });
                let shared = exclusive.convert_to_shared();
                inside(Hold {
                    mode: Mode::Shared,
                    depth: Some(shared.depth()),
                });
                Attempt {
                    conversions: 1,
                    ..Attempt::DONE
                }
            }
            Way::Recursive => {
                let outer = lock.lock();
                // An exclusive owner asking shared is granted recursively and stays exclusive.
                let inner = lock.lock_shared();
                inside(Hold {
                    mode: Mode::Exclusive,
                    depth: Some(inner.depth()),
                });
                drop(inner);
                drop(outer);
                Attempt::DONE
            }
        }
    }

    fn read(&self, inside: Inside<'_>) -> Attempt {
        let lock = self.lock.as_ref();
        let guard = match self.way {
            Way::Lite | Way::Convert => lock.lock_shared(),
            Way::Starve => lock.lock_shared_starve_exclusive(),
            Way::WaitExclusive => lock.lock_shared_wait_for_exclusive(),
            Way::Recursive => {
                let outer = lock.lock_shared();
                // A shared owner asking shared again is granted even behind waiting writers.
                let inner = lock.lock_shared();
                inside(Hold {
                    mode: Mode::Shared,
                    depth: Some(inner.depth()),
                });
                drop(inner);
                drop(outer);
                return Attempt::DONE;
            }
        };
        inside(Hold {
            mode: Mode::Shared,
            depth: Some(guard.depth()),
        });
        Attempt::DONE
    }
}

/// Runs `resource` (any variant), until it ends or `stop` is set. IRQL:
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
