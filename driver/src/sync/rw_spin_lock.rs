//! Reader/writer spin lock (`EX_SPIN_LOCK`, ddi.md section 3).
//!
//! - [`Lock::lock`] / [`Lock::lock_shared`]: `ExAcquireSpinLockExclusive` /
//!   `ExAcquireSpinLockShared`, released by `ExReleaseSpinLockExclusive` /
//!   `ExReleaseSpinLockShared` with the saved IRQL. IRQL <= `DISPATCH_LEVEL`.
//! - [`Lock::lock_at_dpc`] / [`Lock::lock_shared_at_dpc`]: the `…AtDpcLevel` forms, released by
//!   the matching `…FromDpcLevel`. IRQL == `DISPATCH_LEVEL`.
//! - [`SharedGuard::try_convert_exclusive`]: `ExTryConvertSharedSpinLockExclusive`; a converted
//!   hold is released exclusive in the style of its shared acquire (ddi.md 3 rule 3).
//!
//! The lock is a zero-initialised `LONG` (there is no initialisation routine). Writers are
//! preferred: once one waits, new readers wait behind it (rule 2). No recursion in either mode
//! (rule 1). The holder runs at `DISPATCH_LEVEL` whichever way it acquired: keep holds short,
//! never wait.

use alloc::boxed::Box;
use core::pin::Pin;
use core::sync::atomic::AtomicBool;

use synclab_protocol::wire::StressResponse;
use wdk_sys::{EX_SPIN_LOCK, KIRQL, NTSTATUS};

use super::{
    Guard, Lock, NonRecursive, RawExclusive, RawExclusiveAtDpc, RawLock, RawShared, RawSharedAtDpc,
    SharedGuard,
};
use crate::{
    kernel::irql::{self, AtDispatch, DISPATCH_LEVEL},
    stress::{Attempt, Hold, Inside, Setup, TortureOps},
};

/// The `EX_SPIN_LOCK` backend.
pub struct RwSpinLockBackend;

/// How an acquisition (of either mode) was made, so the release matches it (ddi.md 3 rule 4).
pub enum Acquired {
    /// Raised from this IRQL (`ExAcquireSpinLockExclusive`/`Shared`); released with
    /// `ExReleaseSpinLockExclusive`/`Shared(lock, irql)`.
    Raised(KIRQL),
    /// Taken at `DISPATCH_LEVEL` (`…AtDpcLevel`); released with the matching `…FromDpcLevel`.
    AtDpcLevel,
}

/// A reader/writer spin lock protecting a `T`. The holder, of either mode, runs at
/// `DISPATCH_LEVEL`.
pub type RwSpinLock<T> = Lock<T, RwSpinLockBackend>;

// SAFETY: a zeroed EX_SPIN_LOCK admits one exclusive holder or any number of shared holders,
// never both, between each acquire and its matching release.
unsafe impl RawLock for RwSpinLockBackend {
    type State = EX_SPIN_LOCK;

    fn uninit() -> EX_SPIN_LOCK {
        0
    }

    unsafe fn init(state: *mut EX_SPIN_LOCK) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is valid for writes, pinned, nonpaged and not in use (RawLock::init's
        // contract); zero is the initialised, free lock (ddi.md 3: no initialisation routine).
        unsafe { state.write(0) };
        Ok(())
    }
}

// SAFETY: an EX_SPIN_LOCK held exclusive has no other holder in either mode until its exclusive
// release; every release below matches its acquire's style (raising or at DPC level).
unsafe impl RawExclusive for RwSpinLockBackend {
    type GuardState = Acquired;

    unsafe fn lock(state: *mut EX_SPIN_LOCK) -> Acquired {
        // SAFETY: an initialised, pinned, nonpaged EX_SPIN_LOCK the caller does not hold in any
        // mode; the caller is at IRQL <= DISPATCH_LEVEL (RawExclusive::lock's contract).
        Acquired::Raised(unsafe { wdk_sys::ntddk::ExAcquireSpinLockExclusive(state) })
    }

    unsafe fn unlock(state: *mut EX_SPIN_LOCK, guard: &Acquired) {
        match *guard {
            // SAFETY: the caller holds the lock exclusive through ExAcquireSpinLockExclusive (or a
            // converted ExAcquireSpinLockShared), which returned `irql`, and is still at
            // DISPATCH_LEVEL (a holder never lowers).
            Acquired::Raised(irql) => unsafe {
                wdk_sys::ntddk::ExReleaseSpinLockExclusive(state, irql);
            },
            // SAFETY: the caller holds it exclusive through the …AtDpcLevel acquire (or a
            // converted …SharedAtDpcLevel one), at DISPATCH_LEVEL.
            Acquired::AtDpcLevel => unsafe {
                wdk_sys::ntddk::ExReleaseSpinLockExclusiveFromDpcLevel(state);
            },
        }
    }
}

// SAFETY: ExAcquireSpinLockExclusiveAtDpcLevel gives the same exclusion as the raising acquire,
// and its guard state makes the release ExReleaseSpinLockExclusiveFromDpcLevel.
unsafe impl RawExclusiveAtDpc for RwSpinLockBackend {
    unsafe fn lock_at_dpc(state: *mut EX_SPIN_LOCK) -> Acquired {
        // SAFETY: initialised, pinned, not held by the caller in any mode, and the caller is at
        // DISPATCH_LEVEL (RawExclusiveAtDpc::lock_at_dpc's contract).
        unsafe { wdk_sys::ntddk::ExAcquireSpinLockExclusiveAtDpcLevel(state) };
        Acquired::AtDpcLevel
    }
}

// SAFETY: a shared acquire returns only while no writer holds the lock, and no writer gets it
// until every shared holder has released.
unsafe impl RawShared for RwSpinLockBackend {
    type SharedGuardState = Acquired;

    unsafe fn lock_shared(state: *mut EX_SPIN_LOCK) -> Acquired {
        // SAFETY: initialised, pinned, not held by the caller in any mode; the caller is at IRQL
        // <= DISPATCH_LEVEL (RawShared::lock_shared's contract).
        Acquired::Raised(unsafe { wdk_sys::ntddk::ExAcquireSpinLockShared(state) })
    }

    unsafe fn unlock_shared(state: *mut EX_SPIN_LOCK, guard: &Acquired) {
        match *guard {
            // SAFETY: the caller holds the lock shared through ExAcquireSpinLockShared, which
            // returned `irql`, and is still at DISPATCH_LEVEL.
            Acquired::Raised(irql) => unsafe {
                wdk_sys::ntddk::ExReleaseSpinLockShared(state, irql);
            },
            // SAFETY: the caller holds it shared through ExAcquireSpinLockSharedAtDpcLevel, at
            // DISPATCH_LEVEL.
            Acquired::AtDpcLevel => unsafe {
                wdk_sys::ntddk::ExReleaseSpinLockSharedFromDpcLevel(state);
            },
        }
    }
}

// SAFETY: ExAcquireSpinLockSharedAtDpcLevel returns only while no writer holds the lock, like the
// raising shared acquire, and its guard state makes the release …SharedFromDpcLevel.
unsafe impl RawSharedAtDpc for RwSpinLockBackend {
    unsafe fn lock_shared_at_dpc(state: *mut EX_SPIN_LOCK) -> Acquired {
        // SAFETY: initialised, pinned, not held by the caller in any mode, and the caller is at
        // DISPATCH_LEVEL (RawSharedAtDpc::lock_shared_at_dpc's contract).
        unsafe { wdk_sys::ntddk::ExAcquireSpinLockSharedAtDpcLevel(state) };
        Acquired::AtDpcLevel
    }
}

// SAFETY: re-acquiring an EX_SPIN_LOCK one holds, in either mode, deadlocks (0xF on ntsim); no
// second guard is ever returned.
unsafe impl NonRecursive for RwSpinLockBackend {}

impl<'a, T> SharedGuard<'a, T, RwSpinLockBackend> {
    /// Tries to turn this shared hold into an exclusive one with
    /// `ExTryConvertSharedSpinLockExclusive`: the exclusive guard when this was the only reader
    /// and no writer waited; this shared guard, still held, otherwise. The exclusive guard
    /// releases in the style of the shared acquire (`ExReleaseSpinLockExclusive` with the saved
    /// IRQL, or `ExReleaseSpinLockExclusiveFromDpcLevel`). IRQL: `DISPATCH_LEVEL`, the holder's.
    ///
    /// # Errors
    /// The shared guard, unchanged, when the conversion was refused.
    pub fn try_convert_exclusive(self) -> Result<Guard<'a, T, RwSpinLockBackend>, Self> {
        let lock = self.lock();
        // SAFETY: this guard proves the caller holds the initialised, pinned lock shared, on
        // this thread (guards are !Send), at DISPATCH_LEVEL (every holder is).
        let converted =
            unsafe { wdk_sys::ntddk::ExTryConvertSharedSpinLockExclusive(lock.state()) } != 0;
        if converted {
            // The kernel now counts the hold as exclusive: hand its state (the shared acquire's
            // style and saved IRQL, which the exclusive release must use) to an exclusive guard
            // without releasing.
            Ok(Guard::new(lock, self.into_state()))
        } else {
            Err(self)
        }
    }
}

/// The variants of the registry row `rwspin`.
#[derive(Clone, Copy)]
enum Way {
    Raise,
    AtDpc,
    Convert,
}

/// The stress table of `rwspin`.
pub struct Ops {
    lock: Pin<Box<RwSpinLock<()>>>,
    way: Way,
}

/// A reader's hold in `convert`: report it shared, then try to convert and, when that works,
/// report the same hold exclusive before releasing it exclusive.
fn convert(shared: SharedGuard<'_, (), RwSpinLockBackend>, inside: Inside<'_>) -> Attempt {
    inside(Hold::SHARED);
    match shared.try_convert_exclusive() {
        Ok(_exclusive) => {
            inside(Hold::EXCLUSIVE);
            Attempt {
                conversions: 1,
                ..Attempt::DONE
            }
        }
        Err(_shared) => Attempt::DONE,
    }
}

impl Ops {
    /// A writer at `DISPATCH_LEVEL` (a DPC routine, or a thread that raised).
    fn write_dispatch(&self, at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        let _guard = self.lock.as_ref().lock_at_dpc(at);
        inside(Hold::EXCLUSIVE);
        Attempt::DONE
    }

    /// A reader at `DISPATCH_LEVEL` (a DPC routine, or a thread that raised).
    fn read_dispatch(&self, at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        let shared = self.lock.as_ref().lock_shared_at_dpc(at);
        match self.way {
            Way::Convert => convert(shared, inside),
            Way::Raise | Way::AtDpc => {
                inside(Hold::SHARED);
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
                ("convert", Way::Convert),
            ],
        )?;
        Ok(Self {
            lock: RwSpinLock::try_new(())?,
            way,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        match self.way {
            Way::Raise | Way::Convert => {
                let _guard = self.lock.as_ref().lock();
                inside(Hold::EXCLUSIVE);
                Attempt::DONE
            }
            // The …AtDpcLevel forms from a thread: raise first.
            Way::AtDpc => {
                let raised = irql::raise(DISPATCH_LEVEL);
                raised
                    .at_dispatch()
                    .map_or(Attempt::UNSUPPORTED, |at| self.write_dispatch(&at, inside))
            }
        }
    }

    fn read(&self, inside: Inside<'_>) -> Attempt {
        match self.way {
            Way::Raise => {
                let _guard = self.lock.as_ref().lock_shared();
                inside(Hold::SHARED);
                Attempt::DONE
            }
            Way::Convert => convert(self.lock.as_ref().lock_shared(), inside),
            Way::AtDpc => {
                let raised = irql::raise(DISPATCH_LEVEL);
                raised
                    .at_dispatch()
                    .map_or(Attempt::UNSUPPORTED, |at| self.read_dispatch(&at, inside))
            }
        }
    }

    fn write_at_dpc(&self, at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        self.write_dispatch(at, inside)
    }

    fn read_at_dpc(&self, at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        self.read_dispatch(at, inside)
    }
}

/// Runs `rwspin` (any variant), until it ends or `stop` is set. IRQL:
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
