//! In-stack queued spin lock (`KSPIN_LOCK` + `KLOCK_QUEUE_HANDLE`, ddi.md section 2).
//!
//! - [`QueuedSpinLock::with_lock`]: `KeAcquireInStackQueuedSpinLock` /
//!   `KeReleaseInStackQueuedSpinLock` (the handle saves and restores the IRQL). IRQL <=
//!   `DISPATCH_LEVEL`.
//! - [`QueuedSpinLock::with_lock_at_dpc`]: `KeAcquireInStackQueuedSpinLockAtDpcLevel` /
//!   `KeReleaseInStackQueuedSpinLockFromDpcLevel`. IRQL == `DISPATCH_LEVEL`.
//! - [`QueuedSpinLock::with_lock_for_dpc`]: `KeAcquireInStackQueuedSpinLockForDpc` /
//!   `KeReleaseInStackQueuedSpinLockForDpc`, for threaded DPCs (which may run at `PASSIVE_LEVEL`
//!   or `DISPATCH_LEVEL`). IRQL <= `DISPATCH_LEVEL`.
//!
//! Why closure-scoped, not a [`super::Guard`]: the caller's `KLOCK_QUEUE_HANDLE` is its node in
//! the lock's FIFO queue. The acquire links it in by address (a successor writes its own address
//! into the handle's `LockQueue.Next`, the predecessor hands the lock over by writing to the
//! handle's `LockQueue.Lock`), and the release must be given that very handle (ddi.md 2 rule 1).
//! A guard holding the handle would move with the guard (returned, stored, swapped), so the
//! kernel would write into a stale stack slot. Here the handle lives in a pinned slot on the
//! acquiring function's own stack for the whole critical section, the data is reachable only
//! inside the closure, and a drop guard that borrows the slot releases it when the closure
//! returns or unwinds (host tests). Nested acquisitions are released in reverse order (rule 3)
//! because closures nest.
//!
//! The holder runs at `DISPATCH_LEVEL` whichever way it acquired: keep holds short, never wait.
//! The lock must never be taken through the ordinary `Ke…SpinLock` routines (rule 5): this
//! backend offers no other way.

use alloc::boxed::Box;
use core::sync::atomic::AtomicBool;
use core::{cell::UnsafeCell, marker::PhantomPinned, pin::Pin};

use synclab_protocol::wire::StressResponse;
use wdk_sys::{KLOCK_QUEUE_HANDLE, KSPIN_LOCK, NTSTATUS};

use super::{Lock, NonRecursive, RawLock};
use crate::{
    kernel::irql::{self, AtDispatch, DISPATCH_LEVEL},
    stress::{Attempt, Hold, Inside, Setup, TortureOps},
};

/// The in-stack queued spin lock backend: a `KSPIN_LOCK` only ever taken through the
/// `Ke…InStackQueuedSpinLock…` routines, with a handle per acquisition.
pub struct QueuedSpinLockBackend;

/// A queued spin lock protecting a `T`, acquired by closure. The holder runs at
/// `DISPATCH_LEVEL`.
pub type QueuedSpinLock<T> = Lock<T, QueuedSpinLockBackend>;

/// How an acquisition was made, so the release matches it (ddi.md 1.2 rule 2, 2).
#[derive(Clone, Copy)]
enum Acquired {
    /// `KeAcquireInStackQueuedSpinLock`; released by `KeReleaseInStackQueuedSpinLock`, which
    /// restores the IRQL saved in the handle.
    Raised,
    /// `…AtDpcLevel`; released by `KeReleaseInStackQueuedSpinLockFromDpcLevel`.
    AtDpcLevel,
    /// `…ForDpc`; released by `KeReleaseInStackQueuedSpinLockForDpc`, which restores the IRQL
    /// saved in the handle.
    ForDpc,
}

/// One acquisition's `KLOCK_QUEUE_HANDLE`: its node in the lock's queue. Other processors write
/// into it through the address the acquire published, so it is only ever reached through
/// shared references (the `UnsafeCell` allows their writes) and never moves once pinned.
struct QueueHandle {
    handle: UnsafeCell<KLOCK_QUEUE_HANDLE>,
    _pin: PhantomPinned,
}

impl QueueHandle {
    /// A fresh handle (ddi.md 2 rule 1: never reused while in use, never shared).
    fn new() -> Self {
        Self {
            handle: UnsafeCell::new(KLOCK_QUEUE_HANDLE::default()),
            _pin: PhantomPinned,
        }
    }
}

/// Releases the acquisition made through `handle` when dropped, so the lock is released even
/// while the critical section unwinds (host tests; the Windows build aborts on panic).
struct Release<'h> {
    handle: Pin<&'h QueueHandle>,
    acquired: Acquired,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let handle = self.handle.handle.get();
        match self.acquired {
            // SAFETY: `handle` was filled by KeAcquireInStackQueuedSpinLock (only `hold` creates
            // a Release, right after the acquire), is pinned in place since, and this context is
            // still at DISPATCH_LEVEL (a holder never lowers; closures nest, so inner holds are
            // released first).
            Acquired::Raised => unsafe { wdk_sys::ntddk::KeReleaseInStackQueuedSpinLock(handle) },
            // SAFETY: filled by KeAcquireInStackQueuedSpinLockAtDpcLevel and pinned since; the
            // holder is at DISPATCH_LEVEL, where it acquired.
            Acquired::AtDpcLevel => unsafe {
                wdk_sys::ntddk::KeReleaseInStackQueuedSpinLockFromDpcLevel(handle);
            },
            // SAFETY: filled by KeAcquireInStackQueuedSpinLockForDpc (which saved the IRQL to
            // restore in it) and pinned since; the holder is at DISPATCH_LEVEL.
            Acquired::ForDpc => unsafe {
                wdk_sys::ntddk::KeReleaseInStackQueuedSpinLockForDpc(handle);
            },
        }
    }
}

// SAFETY: a KSPIN_LOCK initialised by KeInitializeSpinLock and only ever acquired through the
// in-stack queued routines (the only acquires this file offers) excludes every other holder
// between an acquire and the release with the same handle.
unsafe impl RawLock for QueuedSpinLockBackend {
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

// SAFETY: re-acquiring a queued spin lock one holds spins forever behind one's own handle (0xF on
// a checked kernel and on ntsim); the closure is never entered a second time.
unsafe impl NonRecursive for QueuedSpinLockBackend {}

impl<T> QueuedSpinLock<T> {
    /// Acquires as `acquired` says through a handle pinned on this stack frame, runs `f` on the
    /// data, and releases with the matching routine and the same handle.
    ///
    /// # Safety
    /// The caller's IRQL meets the acquire's contract: <= `DISPATCH_LEVEL` for
    /// [`Acquired::Raised`] and [`Acquired::ForDpc`], exactly `DISPATCH_LEVEL` for
    /// [`Acquired::AtDpcLevel`]; and it does not hold this lock.
    unsafe fn hold<R>(self: Pin<&Self>, acquired: Acquired, f: impl FnOnce(&T) -> R) -> R {
        let slot = core::pin::pin!(QueueHandle::new());
        let handle = slot.into_ref();
        let node = handle.handle.get();
        let lock = self.state();
        match acquired {
            // SAFETY: `lock` is initialised, pinned and nonpaged (Lock::try_new is the only
            // constructor); `node` is a fresh handle pinned on this frame until the Release below
            // drops; the caller is at <= DISPATCH_LEVEL and does not hold the lock (this
            // function's contract).
            Acquired::Raised => unsafe {
                wdk_sys::ntddk::KeAcquireInStackQueuedSpinLock(lock, node);
            },
            // SAFETY: `lock` is initialised, pinned and nonpaged (Lock::try_new); `node` is a
            // fresh handle pinned on this frame until the Release below drops; the caller is at
            // exactly DISPATCH_LEVEL and does not hold the lock (this function's contract).
            Acquired::AtDpcLevel => unsafe {
                wdk_sys::ntddk::KeAcquireInStackQueuedSpinLockAtDpcLevel(lock, node);
            },
            // SAFETY: `lock` is initialised, pinned and nonpaged (Lock::try_new); `node` is a
            // fresh handle pinned on this frame until the Release below drops; the caller is at
            // <= DISPATCH_LEVEL (either IRQL of a threaded DPC) and does not hold the lock (this
            // function's contract).
            Acquired::ForDpc => unsafe {
                wdk_sys::ntddk::KeAcquireInStackQueuedSpinLockForDpc(lock, node);
            },
        }
        let _release = Release { handle, acquired };
        // SAFETY: this context holds the lock exclusively from the acquire above until
        // `_release` drops, after `f` returns; `f` cannot keep the reference (it is only valid
        // for the call, the closure's argument lifetime being higher-ranked).
        f(unsafe { self.get_ref().data() })
    }

    /// Runs `f` holding the lock through `KeAcquireInStackQueuedSpinLock`, then releases with
    /// `KeReleaseInStackQueuedSpinLock`. IRQL <= `DISPATCH_LEVEL`; `f` runs at `DISPATCH_LEVEL`
    /// and must not acquire this lock again.
    pub fn with_lock<R>(self: Pin<&Self>, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: this method's IRQL contract is the caller's; a recursive acquire is a bug
        // check, never a second hold.
        unsafe { self.hold(Acquired::Raised, f) }
    }

    /// Runs `f` holding the lock through `KeAcquireInStackQueuedSpinLockAtDpcLevel`, then
    /// releases with `KeReleaseInStackQueuedSpinLockFromDpcLevel`. IRQL == `DISPATCH_LEVEL`
    /// (`_at` proves it); `f` must not acquire this lock again.
    pub fn with_lock_at_dpc<R>(
        self: Pin<&Self>,
        _at: &AtDispatch<'_>,
        f: impl FnOnce(&T) -> R,
    ) -> R {
        // SAFETY: `_at` proves the caller runs at DISPATCH_LEVEL.
        unsafe { self.hold(Acquired::AtDpcLevel, f) }
    }

    /// Runs `f` holding the lock through `KeAcquireInStackQueuedSpinLockForDpc`, then releases
    /// with `KeReleaseInStackQueuedSpinLockForDpc`: the form meant for threaded DPCs. IRQL <=
    /// `DISPATCH_LEVEL`; `f` runs at `DISPATCH_LEVEL` and must not acquire this lock again.
    pub fn with_lock_for_dpc<R>(self: Pin<&Self>, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: this method's IRQL contract (<= DISPATCH_LEVEL) is the caller's; a recursive
        // acquire is a bug check, never a second hold.
        unsafe { self.hold(Acquired::ForDpc, f) }
    }
}

/// The variants of the registry row `queued`.
#[derive(Clone, Copy)]
enum Way {
    Plain,
    AtDpc,
    ForDpc,
}

/// The stress table of `queued`.
pub struct Ops {
    lock: Pin<Box<QueuedSpinLock<()>>>,
    way: Way,
}

impl Ops {
    /// One hold at `DISPATCH_LEVEL` (a DPC routine, or a thread that raised).
    fn at_dpc(&self, at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        match self.way {
            Way::Plain | Way::AtDpc => {
                self.lock
                    .as_ref()
                    .with_lock_at_dpc(at, |()| inside(Hold::EXCLUSIVE));
            }
            Way::ForDpc => self
                .lock
                .as_ref()
                .with_lock_for_dpc(|()| inside(Hold::EXCLUSIVE)),
        }
        Attempt::DONE
    }
}

impl TortureOps for Ops {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        let way = crate::stress::variant(
            setup,
            &[
                ("plain", Way::Plain),
                ("atdpc", Way::AtDpc),
                ("fordpc", Way::ForDpc),
            ],
        )?;
        Ok(Self {
            lock: QueuedSpinLock::try_new(())?,
            way,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        match self.way {
            Way::Plain => {
                self.lock.as_ref().with_lock(|()| inside(Hold::EXCLUSIVE));
                Attempt::DONE
            }
            // Threaded DPCs (PASSIVE_LEVEL or DISPATCH_LEVEL) come here too: …ForDpc is legal at
            // either.
            Way::ForDpc => {
                self.lock
                    .as_ref()
                    .with_lock_for_dpc(|()| inside(Hold::EXCLUSIVE));
                Attempt::DONE
            }
            // The …AtDpcLevel forms from a thread: raise first, as a driver does inside its own
            // raised section.
            Way::AtDpc => {
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

/// Runs `queued` (any variant), until it ends or `stop` is set. IRQL:
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
