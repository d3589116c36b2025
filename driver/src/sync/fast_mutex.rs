//! Fast mutex (`FAST_MUTEX`, ddi.md section 4).
//!
//! - [`Lock::lock`] / [`Lock::try_lock`]: `ExAcquireFastMutex` / `ExTryToAcquireFastMutex`,
//!   released by `ExReleaseFastMutex`. IRQL <= `APC_LEVEL`; the holder runs at `APC_LEVEL` (the
//!   caller's IRQL is saved in the mutex and restored by the release): the IRQL blocks every
//!   APC, and no region is entered.
//! - [`FastMutex::lock_unsafe`]: `ExAcquireFastMutexUnsafe` / `ExReleaseFastMutexUnsafe`, from
//!   inside a critical region the caller proves with a `CriticalRegion` the guard borrows, so
//!   the release always comes before `KeLeaveCriticalRegion`. IRQL <= `APC_LEVEL`; the holder
//!   stays at the caller's IRQL, normal kernel APCs disabled by the region.
//!
//! `ExInitializeFastMutex` is `FORCEINLINE` in the WDK, absent from `wdk-sys`, so
//! [`RawLock::init`] does what its body does (ddi.md 0.4). Not recursive: a second acquire by the
//! owner deadlocks. Nothing illegal at `APC_LEVEL` may be done while holding it
//! (`PsCreateSystemThread`, `Zw…` calls; ddi.md 4 rule 6).

use alloc::boxed::Box;
use core::pin::Pin;
use core::sync::atomic::AtomicBool;

use synclab_protocol::wire::StressResponse;
use wdk_sys::{FAST_MUTEX, LONG, NTSTATUS};

use super::{Guard, Lock, NonRecursive, RawExclusive, RawLock, RawTryExclusive};
use crate::{
    kernel::apc::CriticalRegion,
    stress::{Attempt, Hold, Inside, Setup, TortureOps},
};

/// `FM_LOCK_BIT` as the `LONG` `Count` holds: set means *free*.
#[allow(clippy::cast_possible_wrap, reason = "FM_LOCK_BIT is 1")]
const FM_LOCK_BIT: LONG = wdk_sys::FM_LOCK_BIT as LONG;

/// The `FAST_MUTEX` backend.
pub struct FastMutexBackend;

/// How an acquisition was made, so the release matches it (ddi.md 4 rule 3).
pub enum Acquired {
    /// `ExAcquireFastMutex` or a successful `ExTryToAcquireFastMutex`: raised to `APC_LEVEL`,
    /// the previous IRQL saved in the mutex; released with `ExReleaseFastMutex`.
    Raised,
    /// `ExAcquireFastMutexUnsafe` inside a critical region; released with
    /// `ExReleaseFastMutexUnsafe` while that region is still entered.
    Unsafe,
}

/// A fast mutex protecting a `T`. Acquire at IRQL <= `APC_LEVEL`; see the module for where the
/// holder runs.
pub type FastMutex<T> = Lock<T, FastMutexBackend>;

// SAFETY: a FAST_MUTEX initialised as ExInitializeFastMutex does has at most one owner between
// any of its acquires and the matching release.
unsafe impl RawLock for FastMutexBackend {
    type State = FAST_MUTEX;

    fn uninit() -> FAST_MUTEX {
        FAST_MUTEX::default()
    }

    /// `ExInitializeFastMutex`, re-implemented (it is `FORCEINLINE`). IRQL <= `DISPATCH_LEVEL`.
    unsafe fn init(state: *mut FAST_MUTEX) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is valid for writes and not in use (RawLock::init's contract); the
        // event part is initialised just below.
        unsafe {
            state.write(FAST_MUTEX {
                Count: FM_LOCK_BIT,
                Owner: core::ptr::null_mut(),
                Contention: 0,
                ..FAST_MUTEX::default()
            });
        }
        // SAFETY: `state` points to the FAST_MUTEX just written; this only takes the address of
        // its event field.
        let event = unsafe { &raw mut (*state).Event };
        // SAFETY: the event is inside the pinned, nonpaged mutex nobody uses yet (RawLock::init's
        // contract), so its wait list may point to itself; KeInitializeEvent is callable at
        // IRQL <= DISPATCH_LEVEL, which Lock::try_new's callers meet.
        unsafe {
            wdk_sys::ntddk::KeInitializeEvent(event, wdk_sys::_EVENT_TYPE::SynchronizationEvent, 0);
        }
        Ok(())
    }
}

// SAFETY: ExAcquireFastMutex and ExAcquireFastMutexUnsafe give the initialised mutex one owner
// until its release, and every release below matches its acquire's DDI pair.
unsafe impl RawExclusive for FastMutexBackend {
    type GuardState = Acquired;

    /// `ExAcquireFastMutex`. IRQL <= `APC_LEVEL`; returns at `APC_LEVEL`.
    unsafe fn lock(state: *mut FAST_MUTEX) -> Acquired {
        // SAFETY: an initialised, pinned, nonpaged FAST_MUTEX the caller does not own; the caller
        // is at IRQL <= APC_LEVEL (RawExclusive::lock's contract).
        unsafe { wdk_sys::ntddk::ExAcquireFastMutex(state) };
        Acquired::Raised
    }

    unsafe fn unlock(state: *mut FAST_MUTEX, guard: &Acquired) {
        match guard {
            // SAFETY: the caller owns the mutex through ExAcquireFastMutex or a successful
            // ExTryToAcquireFastMutex and is still at APC_LEVEL (a holder never changes IRQL
            // unbalanced); the release restores the IRQL the acquire saved.
            Acquired::Raised => unsafe { wdk_sys::ntddk::ExReleaseFastMutex(state) },
            // SAFETY: the caller owns it through ExAcquireFastMutexUnsafe, and the critical
            // region that acquire required is still entered: the guard borrows its
            // CriticalRegion, which cannot be left before the guard is dropped.
            Acquired::Unsafe => unsafe { wdk_sys::ntddk::ExReleaseFastMutexUnsafe(state) },
        }
    }
}

// SAFETY: ExTryToAcquireFastMutex owns the mutex (raised to APC_LEVEL) exactly when it returns
// TRUE, and changes nothing when it returns FALSE.
unsafe impl RawTryExclusive for FastMutexBackend {
    /// `ExTryToAcquireFastMutex`. IRQL <= `APC_LEVEL`; on success returns at `APC_LEVEL`.
    unsafe fn try_lock(state: *mut FAST_MUTEX) -> Option<Acquired> {
        // SAFETY: an initialised, pinned, nonpaged FAST_MUTEX the caller does not own, at IRQL <=
        // APC_LEVEL (RawTryExclusive's contract); the call never waits.
        let owned = unsafe { wdk_sys::ntddk::ExTryToAcquireFastMutex(state) } != 0;
        owned.then_some(Acquired::Raised)
    }
}

// SAFETY: a second acquire by the owner deadlocks (ddi.md 4 rule 2); no second guard is ever
// returned, and ExTryToAcquireFastMutex fails for the owner.
unsafe impl NonRecursive for FastMutexBackend {}

impl<T> FastMutex<T> {
    /// Acquires with `ExAcquireFastMutexUnsafe` inside the caller's critical region, which the
    /// guard borrows: the release (`ExReleaseFastMutexUnsafe`, when the guard drops) comes before
    /// the region is left. IRQL <= `APC_LEVEL`; the holder stays at the caller's IRQL.
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_unsafe<'a>(
        self: Pin<&'a Self>,
        _region: &'a CriticalRegion,
    ) -> Guard<'a, T, FastMutexBackend> {
        // SAFETY: initialised and pinned (Lock::try_new is the only constructor; an owner asking
        // again would hang, never get a second guard); `_region` proves this thread is
        // in a critical region (a CriticalRegion is !Send and !Sync, so it is this thread's), as
        // the Unsafe acquire requires, and the caller is at IRQL <= APC_LEVEL (this method's
        // contract).
        unsafe { wdk_sys::ntddk::ExAcquireFastMutexUnsafe(self.state()) };
        Guard::new(self.get_ref(), Acquired::Unsafe)
    }
}

/// The variants of the registry row `fastmutex`.
#[derive(Clone, Copy)]
enum Way {
    Plain,
    Unsafe,
    Try,
}

/// The stress table of `fastmutex`. Threads only, at `PASSIVE_LEVEL` or `APC_LEVEL`.
pub struct Ops {
    lock: Pin<Box<FastMutex<()>>>,
    way: Way,
}

impl Ops {
    /// `ExTryToAcquireFastMutex` until it succeeds; failures are the contention seen.
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
            lock: FastMutex::try_new(())?,
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
                let region = CriticalRegion::enter();
                let _guard = self.lock.as_ref().lock_unsafe(&region);
                inside(Hold::EXCLUSIVE);
                Attempt::DONE
            }
            Way::Try => self.try_hold(inside),
        }
    }
}

/// Runs `fastmutex` (any variant), until it ends or `stop` is set. IRQL:
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
