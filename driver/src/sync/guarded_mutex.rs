//! Guarded mutex (`KGUARDED_MUTEX`, ddi.md section 5), Windows 8 and later model: a
//! `KGUARDED_MUTEX` is a `FAST_MUTEX`, and the safe acquire raises to `APC_LEVEL` as
//! `ExAcquireFastMutex` does.
//!
//! - [`Lock::lock`] / [`Lock::try_lock`]: `KeAcquireGuardedMutex` /
//!   `KeTryToAcquireGuardedMutex`, released by `KeReleaseGuardedMutex`. IRQL <= `APC_LEVEL`; the
//!   holder runs at `APC_LEVEL` (the caller's IRQL is saved in the mutex and restored by the
//!   release).
//! - [`GuardedMutex::lock_unsafe`]: `KeAcquireGuardedMutexUnsafe` /
//!   `KeReleaseGuardedMutexUnsafe`, from inside a guarded region the caller proves with a
//!   `GuardedRegion` the guard borrows, so the release always comes before
//!   `KeLeaveGuardedRegion`. A critical region is not enough (ddi.md 5 rule 2). IRQL <=
//!   `APC_LEVEL`; the holder stays at the caller's IRQL, every APC disabled by the region.
//!
//! Initialised with `KeInitializeGuardedMutex` (IRQL <= `APC_LEVEL`). Not recursive: a second
//! acquire by the owner deadlocks. The holder must not do what is illegal at `APC_LEVEL`.

use alloc::boxed::Box;
use core::pin::Pin;
use core::sync::atomic::AtomicBool;

use synclab_protocol::wire::StressResponse;
use wdk_sys::{KGUARDED_MUTEX, NTSTATUS};

use super::{Guard, Lock, NonRecursive, RawExclusive, RawLock, RawTryExclusive};
use crate::{
    kernel::apc::GuardedRegion,
    stress::{Attempt, Hold, Inside, Setup, TortureOps},
};

/// The `KGUARDED_MUTEX` backend.
pub struct GuardedMutexBackend;

/// How an acquisition was made, so the release matches it (safe and Unsafe routines are not
/// interchangeable).
pub enum Acquired {
    /// `KeAcquireGuardedMutex` or a successful `KeTryToAcquireGuardedMutex`: raised to
    /// `APC_LEVEL`, the previous IRQL saved in the mutex; released with `KeReleaseGuardedMutex`.
    Raised,
    /// `KeAcquireGuardedMutexUnsafe` inside a guarded region; released with
    /// `KeReleaseGuardedMutexUnsafe` while that region is still entered.
    Unsafe,
}

/// A guarded mutex protecting a `T`. Acquire at IRQL <= `APC_LEVEL`; see the module for where
/// the holder runs.
pub type GuardedMutex<T> = Lock<T, GuardedMutexBackend>;

// SAFETY: a KGUARDED_MUTEX initialised by KeInitializeGuardedMutex has at most one owner between
// any of its acquires and the matching release.
unsafe impl RawLock for GuardedMutexBackend {
    type State = KGUARDED_MUTEX;

    fn uninit() -> KGUARDED_MUTEX {
        KGUARDED_MUTEX::default()
    }

    /// `KeInitializeGuardedMutex`. IRQL <= `APC_LEVEL`.
    unsafe fn init(state: *mut KGUARDED_MUTEX) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is writable, pinned, nonpaged and not in use (RawLock::init's
        // contract); the caller of Lock::try_new runs at IRQL <= APC_LEVEL, this backend's
        // documented contract.
        unsafe { wdk_sys::ntddk::KeInitializeGuardedMutex(state) };
        Ok(())
    }
}

// SAFETY: KeAcquireGuardedMutex and KeAcquireGuardedMutexUnsafe give the initialised mutex one
// owner until its release, and every release below matches its acquire's DDI pair.
unsafe impl RawExclusive for GuardedMutexBackend {
    type GuardState = Acquired;

    /// `KeAcquireGuardedMutex`. IRQL <= `APC_LEVEL`; returns at `APC_LEVEL`.
    unsafe fn lock(state: *mut KGUARDED_MUTEX) -> Acquired {
        // SAFETY: an initialised, pinned, nonpaged KGUARDED_MUTEX the caller does not own; the
        // caller is at IRQL <= APC_LEVEL (RawExclusive::lock's contract).
        unsafe { wdk_sys::ntddk::KeAcquireGuardedMutex(state) };
        Acquired::Raised
    }

    unsafe fn unlock(state: *mut KGUARDED_MUTEX, guard: &Acquired) {
        match guard {
            // SAFETY: the caller owns the mutex through KeAcquireGuardedMutex or a successful
            // KeTryToAcquireGuardedMutex and is still at APC_LEVEL, where that acquire left it;
            // the release restores the IRQL the acquire saved.
            Acquired::Raised => unsafe { wdk_sys::ntddk::KeReleaseGuardedMutex(state) },
            // SAFETY: the caller owns it through KeAcquireGuardedMutexUnsafe, and the guarded
            // region that acquire required is still entered: the guard borrows its
            // GuardedRegion, which cannot be left before the guard is dropped.
            Acquired::Unsafe => unsafe { wdk_sys::ntddk::KeReleaseGuardedMutexUnsafe(state) },
        }
    }
}

// SAFETY: KeTryToAcquireGuardedMutex owns the mutex (raised to APC_LEVEL) exactly when it
// returns TRUE, and changes nothing when it returns FALSE.
unsafe impl RawTryExclusive for GuardedMutexBackend {
    /// `KeTryToAcquireGuardedMutex`. IRQL <= `APC_LEVEL`; on success returns at `APC_LEVEL`.
    unsafe fn try_lock(state: *mut KGUARDED_MUTEX) -> Option<Acquired> {
        // SAFETY: an initialised, pinned, nonpaged KGUARDED_MUTEX the caller does not own, at
        // IRQL <= APC_LEVEL (RawTryExclusive's contract); the call never waits.
        let owned = unsafe { wdk_sys::ntddk::KeTryToAcquireGuardedMutex(state) } != 0;
        owned.then_some(Acquired::Raised)
    }
}

// SAFETY: a second acquire by the owner deadlocks (ddi.md 5 rule 1); no second guard is ever
// returned, and KeTryToAcquireGuardedMutex fails for the owner.
unsafe impl NonRecursive for GuardedMutexBackend {}

impl<T> GuardedMutex<T> {
    /// Acquires with `KeAcquireGuardedMutexUnsafe` inside the caller's guarded region, which the
    /// guard borrows: the release (`KeReleaseGuardedMutexUnsafe`, when the guard drops) comes
    /// before the region is left. IRQL <= `APC_LEVEL`; the holder stays at the caller's IRQL.
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_unsafe<'a>(
        self: Pin<&'a Self>,
        _region: &'a GuardedRegion,
    ) -> Guard<'a, T, GuardedMutexBackend> {
        // SAFETY: initialised and pinned (Lock::try_new is the only constructor; an owner asking
        // again would hang, never get a second guard); `_region` proves this thread is
        // in a guarded region (a GuardedRegion is !Send and !Sync, so it is this thread's), as
        // the Unsafe acquire requires, and the caller is at IRQL <= APC_LEVEL (this method's
        // contract).
        unsafe { wdk_sys::ntddk::KeAcquireGuardedMutexUnsafe(self.state()) };
        Guard::new(self.get_ref(), Acquired::Unsafe)
    }
}

/// The variants of the registry row `guardedmutex`.
#[derive(Clone, Copy)]
enum Way {
    Plain,
    Unsafe,
    Try,
}

/// The stress table of `guardedmutex`. Threads only, at `PASSIVE_LEVEL` or `APC_LEVEL`.
pub struct Ops {
    lock: Pin<Box<GuardedMutex<()>>>,
    way: Way,
}

impl Ops {
    /// `KeTryToAcquireGuardedMutex` until it succeeds; failures are the contention seen.
    fn try_hold(&self, inside: Inside<'_>) -> Attempt {
        crate::stress::until_acquired(|| self.lock.as_ref().try_lock(), inside, Hold::EXCLUSIVE)
    }
}

impl TortureOps for Ops {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        let way = crate::stress::variant(
            setup,
            &[
                ("plain", Way::Plain),
                ("unsafe", Way::Unsafe),
                ("try", Way::Try),
            ],
        )?;
        Ok(Self {
            lock: GuardedMutex::try_new(())?,
            way,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        match self.way {
            Way::Plain => {
                let _guard = self.lock.as_ref().lock();
                inside(Hold::EXCLUSIVE);
                Attempt::DONE
            }
            Way::Unsafe => {
                let region = GuardedRegion::enter();
                let _guard = self.lock.as_ref().lock_unsafe(&region);
                inside(Hold::EXCLUSIVE);
                Attempt::DONE
            }
            Way::Try => self.try_hold(inside),
        }
    }
}

/// Runs `guardedmutex` (any variant), until it ends or `stop` is set. IRQL:
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
