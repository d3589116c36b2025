//! Executive spin lock (`KSPIN_LOCK`, ddi.md section 1).
//!
//! - `lock` ([`Lock::lock`]) calls `KeAcquireSpinLockRaiseToDpc` (what `KeAcquireSpinLock`
//!   expands to on x64) and `KeReleaseSpinLock` with the saved IRQL. IRQL <= `DISPATCH_LEVEL`.
//! - `lock_at_dpc` and `try_lock_at_dpc` ([`Lock::lock_at_dpc`], [`Lock::try_lock_at_dpc`])
//!   call `KeAcquireSpinLockAtDpcLevel` or `KeTryToAcquireSpinLockAtDpcLevel`, released by
//!   `KeReleaseSpinLockFromDpcLevel`. IRQL == `DISPATCH_LEVEL` (errata 5).
//! - `lock_for_dpc` ([`SpinLock::lock_for_dpc`]) calls `KeAcquireSpinLockForDpc` and
//!   `KeReleaseSpinLockForDpc`, for threaded DPCs (which may run at `PASSIVE_LEVEL` or
//!   `DISPATCH_LEVEL`). IRQL <= `DISPATCH_LEVEL`.
//!
//! The holder runs at `DISPATCH_LEVEL` whichever way it acquired: keep holds short, never wait.

use alloc::boxed::Box;
use core::pin::Pin;
use core::sync::atomic::AtomicBool;

use synclab_protocol::wire::StressResponse;
use wdk_sys::{KIRQL, KSPIN_LOCK, NTSTATUS};

use super::{Guard, Lock, NonRecursive, RawExclusive, RawExclusiveAtDpc, RawLock, RawTryAtDpc};
use crate::{
    kernel::irql::{self, AtDispatch, DISPATCH_LEVEL},
    stress::{Attempt, Hold, Inside, Setup, TortureOps},
};

/// The `KSPIN_LOCK` backend.
pub struct SpinLockBackend;

/// How an acquisition was made, so the release matches it (ddi.md 1.2 rule 2).
pub enum Acquired {
    /// Raised from this IRQL; released with `KeReleaseSpinLock(lock, irql)`.
    Raised(KIRQL),
    /// Taken at `DISPATCH_LEVEL`; released with `KeReleaseSpinLockFromDpcLevel`.
    AtDpcLevel,
    /// Taken with `KeAcquireSpinLockForDpc` from this IRQL; released with
    /// `KeReleaseSpinLockForDpc(lock, irql)`.
    ForDpc(KIRQL),
}

/// A spin lock protecting a `T`. The holder runs at `DISPATCH_LEVEL`.
pub type SpinLock<T> = Lock<T, SpinLockBackend>;

// SAFETY: a KSPIN_LOCK initialised by KeInitializeSpinLock excludes every other holder between
// any of its acquires and the matching release.
unsafe impl RawLock for SpinLockBackend {
    type State = KSPIN_LOCK;

    fn uninit() -> KSPIN_LOCK {
        0
    }

    unsafe fn init(state: *mut KSPIN_LOCK) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is writable, pinned, nonpaged and not in use (RawLock::init's
        // contract); KeInitializeSpinLock is callable at any IRQL.
        unsafe { wdk_sys::ntddk::KeInitializeSpinLock(state) };
        Ok(())
    }
}

// SAFETY: KeAcquireSpinLockRaiseToDpc excludes every other holder of the initialised
// KSPIN_LOCK until the release, and every release below matches its acquire's DDI pair.
unsafe impl RawExclusive for SpinLockBackend {
    type GuardState = Acquired;

    unsafe fn lock(state: *mut KSPIN_LOCK) -> Acquired {
        // SAFETY: an initialised, pinned, nonpaged KSPIN_LOCK the caller does not hold; the
        // caller is at IRQL <= DISPATCH_LEVEL (RawExclusive::lock's contract).
        Acquired::Raised(unsafe { wdk_sys::ntddk::KeAcquireSpinLockRaiseToDpc(state) })
    }

    unsafe fn unlock(state: *mut KSPIN_LOCK, guard: &Acquired) {
        match *guard {
            // SAFETY: the caller holds the lock through the raising acquire that saved `irql`
            // and is still at DISPATCH_LEVEL (a holder never lowers).
            Acquired::Raised(irql) => unsafe { wdk_sys::ntddk::KeReleaseSpinLock(state, irql) },
            // SAFETY: the caller holds it through KeAcquireSpinLockAtDpcLevel (or a successful
            // try), at DISPATCH_LEVEL.
            Acquired::AtDpcLevel => unsafe { wdk_sys::ntddk::KeReleaseSpinLockFromDpcLevel(state) },
            // SAFETY: the caller holds it through KeAcquireSpinLockForDpc, which returned `irql`.
            Acquired::ForDpc(irql) => unsafe {
                wdk_sys::ntddk::KeReleaseSpinLockForDpc(state, irql);
            },
        }
    }
}

// SAFETY: KeAcquireSpinLockAtDpcLevel excludes every other holder as the raising acquire does;
// its guard state makes the release KeReleaseSpinLockFromDpcLevel.
unsafe impl RawExclusiveAtDpc for SpinLockBackend {
    unsafe fn lock_at_dpc(state: *mut KSPIN_LOCK) -> Acquired {
        // SAFETY: initialised, pinned, not held by the caller, and the caller is at
        // DISPATCH_LEVEL (RawExclusiveAtDpc::lock_at_dpc's contract).
        unsafe { wdk_sys::ntddk::KeAcquireSpinLockAtDpcLevel(state) };
        Acquired::AtDpcLevel
    }
}

// SAFETY: KeTryToAcquireSpinLockAtDpcLevel owns the lock exactly when it returns TRUE.
unsafe impl RawTryAtDpc for SpinLockBackend {
    unsafe fn try_lock_at_dpc(state: *mut KSPIN_LOCK) -> Option<Acquired> {
        // SAFETY: an initialised, pinned KSPIN_LOCK the caller does not hold, and the caller is
        // at DISPATCH_LEVEL (RawTryAtDpc's contract); the call never waits.
        let owned = unsafe { wdk_sys::ntddk::KeTryToAcquireSpinLockAtDpcLevel(state) } != 0;
        owned.then_some(Acquired::AtDpcLevel)
    }
}

// SAFETY: re-acquiring a spin lock one holds spins forever (0xF on a checked kernel); no second
// guard is ever returned.
unsafe impl NonRecursive for SpinLockBackend {}

impl<T> SpinLock<T> {
    /// Acquires with `KeAcquireSpinLockForDpc`, the form meant for threaded DPCs.
    /// IRQL <= `DISPATCH_LEVEL`; the holder runs at `DISPATCH_LEVEL`.
    #[must_use = "the lock is released when the guard is dropped"]
    pub fn lock_for_dpc(self: Pin<&Self>) -> Guard<'_, T, SpinLockBackend> {
        // SAFETY: initialised and pinned (Lock::try_new is the only constructor); the caller is
        // at IRQL <= DISPATCH_LEVEL (this method's contract) and does not hold it.
        let irql = unsafe { wdk_sys::ntddk::KeAcquireSpinLockForDpc(self.state()) };
        Guard::new(self.get_ref(), Acquired::ForDpc(irql))
    }
}

/// The variants of the registry row `spinlock`.
#[derive(Clone, Copy)]
enum Way {
    Raise,
    AtDpc,
    Try,
    ForDpc,
}

/// The stress table of `spinlock`.
pub struct Ops {
    lock: Pin<Box<SpinLock<()>>>,
    way: Way,
}

impl Ops {
    /// `KeTryToAcquireSpinLockAtDpcLevel` until it succeeds; failures are the contention seen.
    fn try_hold(&self, at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        crate::stress::until_acquired(
            || self.lock.as_ref().try_lock_at_dpc(at),
            inside,
            Hold::EXCLUSIVE,
        )
    }

    fn at_dpc(&self, at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        match self.way {
            Way::Raise | Way::AtDpc => {
                let _guard = self.lock.as_ref().lock_at_dpc(at);
                inside(Hold::EXCLUSIVE);
                Attempt::DONE
            }
            Way::Try => self.try_hold(at, inside),
            Way::ForDpc => {
                let _guard = self.lock.as_ref().lock_for_dpc();
                inside(Hold::EXCLUSIVE);
                Attempt::DONE
            }
        }
    }
}

impl TortureOps for Ops {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        let way = crate::stress::variant(
            setup,
            &[
                ("raise", Way::Raise),
                ("atdpc", Way::AtDpc),
                ("try", Way::Try),
                ("fordpc", Way::ForDpc),
            ],
        )?;
        Ok(Self {
            lock: SpinLock::try_new(())?,
            way,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        match self.way {
            Way::Raise => {
                let _guard = self.lock.as_ref().lock();
                inside(Hold::EXCLUSIVE);
                Attempt::DONE
            }
            Way::ForDpc => {
                let _guard = self.lock.as_ref().lock_for_dpc();
                inside(Hold::EXCLUSIVE);
                Attempt::DONE
            }
            // The …AtDpcLevel forms from a thread: raise first, as a driver does inside its own
            // raised section.
            Way::AtDpc | Way::Try => {
                let raised = irql::raise(DISPATCH_LEVEL);
                raised
                    .at_dispatch()
                    .map_or(Attempt::UNSUPPORTED, |at| self.at_dpc(&at, inside))
            }
        }
    }

    fn write_at_dpc(&self, at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        self.at_dpc(at, inside)
    }
}

/// Runs `spinlock` (any variant), until it ends or `stop` is set. IRQL:
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
