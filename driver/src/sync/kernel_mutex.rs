//! Dispatcher mutex (`KMUTEX`) used as a lock (ddi.md sections 8.3 and 8.6).
//!
//! - [`Lock::try_new`]: `KeInitializeMutex(mutex, 0)` (free, signaled). Nothing to tear down.
//! - [`Lock::lock`]: `KeWaitForSingleObject(mutex, Executive, KernelMode, FALSE, NULL)`; the
//!   guard releases with `KeReleaseMutex(mutex, FALSE)`. IRQL <= `APC_LEVEL`, from a thread.
//! - [`Guard::depth`]: `1 - KeReadStateMutex`, the calling owner's recursion depth.
//!
//! Owning the mutex puts the holder in a critical region (the kernel does it, once per
//! ownership, not per recursive acquire); the holder's IRQL is the caller's. The owner may wait
//! on it again (recursion): it is free again after as many releases, so its guards only give
//! `&T`. Ownership belongs to the thread (guards are `!Send`), and a thread must not end owning
//! it (0x4000008A).

use alloc::boxed::Box;
use core::sync::atomic::AtomicBool;
use core::{pin::Pin, ptr};

use synclab_protocol::wire::StressResponse;
use wdk_sys::{KMUTEX, NTSTATUS};

use super::{Guard, Lock, RawExclusive, RawLock};
use crate::stress::{Attempt, Hold, Inside, Mode, Setup, TortureOps};

/// The `KMUTEX` backend.
pub struct KernelMutexBackend;

/// A kernel mutex protecting a `T`. Acquire from a thread at IRQL <= `APC_LEVEL`; the holder
/// stays at its IRQL, in a critical region.
pub type KernelMutex<T> = Lock<T, KernelMutexBackend>;

// SAFETY: a KMUTEX initialised by KeInitializeMutex has at most one owner thread: a wait on it
// is satisfied only when it is free or already owned by the waiter, and it is free again only
// after the owner released every acquisition (ddi.md 8.3).
unsafe impl RawLock for KernelMutexBackend {
    type State = KMUTEX;

    fn uninit() -> KMUTEX {
        KMUTEX::default()
    }

    unsafe fn init(state: *mut KMUTEX) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is writable, aligned, pinned, nonpaged and not in use (RawLock::init's
        // contract); KeInitializeMutex is callable at any IRQL; Level is reserved, 0.
        unsafe { wdk_sys::ntddk::KeInitializeMutex(state, 0) };
        Ok(())
    }
}

// SAFETY: a satisfied wait makes the caller the mutex's only owner (or adds to its own
// recursion) until it has released every acquisition (ddi.md 8.3); each release is
// KeReleaseMutex by the owner thread, outside a DPC as its acquire was.
unsafe impl RawExclusive for KernelMutexBackend {
    type GuardState = ();

    unsafe fn lock(state: *mut KMUTEX) {
        #[allow(clippy::cast_possible_truncation, reason = "KernelMode is 0")]
        let mode = wdk_sys::_MODE::KernelMode as wdk_sys::KPROCESSOR_MODE;
        // SAFETY: an initialised, pinned, nonpaged KMUTEX (RawExclusive::lock's contract); an
        // infinite (NULL timeout), non-alertable KernelMode wait, which a mutex requires, from a
        // thread at IRQL <= APC_LEVEL (the caller's contract), never a DPC.
        let status = unsafe {
            wdk_sys::ntddk::KeWaitForSingleObject(
                state.cast(),
                wdk_sys::_KWAIT_REASON::Executive,
                mode,
                0,
                ptr::null_mut(),
            )
        };
        // A non-alertable kernel wait with no timeout ends only when satisfied, and a kernel
        // mutex is never abandoned (errata 4).
        debug_assert_eq!(status, wdk_sys::STATUS_SUCCESS);
    }

    unsafe fn unlock(state: *mut KMUTEX, _guard: &()) {
        // SAFETY: the calling thread owns the mutex through the acquisition being released
        // (RawExclusive::unlock's contract), outside a DPC as when it acquired (guards are
        // !Send); Wait = FALSE, so the caller's IRQL is restored before the call returns.
        let _previous = unsafe { wdk_sys::ntddk::KeReleaseMutex(state, 0) };
    }
}

impl<T> Guard<'_, T, KernelMutexBackend> {
    /// The calling owner's recursion depth, `1 - KeReadStateMutex` (the state is 1 when free and
    /// `1 - n` when owned `n` times): 1 for one hold, 2 after a recursive one.
    /// IRQL <= `DISPATCH_LEVEL`.
    #[must_use]
    pub fn depth(&self) -> u32 {
        // SAFETY: an initialised, pinned KMUTEX (Lock::try_new) that this guard's thread owns, so
        // no other thread changes its state while it is read; IRQL is this method's contract.
        let state = unsafe { wdk_sys::ntddk::KeReadStateMutex(self.lock().state()) };
        u32::try_from(1_i64 - i64::from(state)).unwrap_or(0)
    }
}

/// The variants of the registry row `kmutex`.
#[derive(Clone, Copy)]
enum Way {
    /// One wait, one release.
    Plain,
    /// Two waits, the depth checked, two releases.
    Recursive,
}

/// The stress table of `kmutex`. Every path runs in a thread at `PASSIVE_LEVEL` or `APC_LEVEL`
/// (the row allows no DPC).
pub struct Ops {
    lock: Pin<Box<KernelMutex<()>>>,
    way: Way,
}

impl TortureOps for Ops {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        let way = crate::stress::variant(
            setup,
            &[("plain", Way::Plain), ("recursive", Way::Recursive)],
        )?;
        Ok(Self {
            lock: KernelMutex::try_new(())?,
            way,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        let lock = self.lock.as_ref();
        match self.way {
            Way::Plain => {
                let guard = lock.lock();
                inside(Hold {
                    mode: Mode::Exclusive,
                    depth: Some(guard.depth()),
                });
            }
            Way::Recursive => {
                let outer = lock.lock();
                let inner = lock.lock();
                inside(Hold {
                    mode: Mode::Exclusive,
                    depth: Some(inner.depth()),
                });
                drop(inner);
                drop(outer);
            }
        }
        Attempt::DONE
    }
}

/// Runs `kmutex` (any variant), until it ends or `stop` is set. IRQL:
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
