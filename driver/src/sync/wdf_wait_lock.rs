//! KMDF wait lock (`WDFWAITLOCK`).
//!
//! - [`Lock::try_new`]: `WdfWaitLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &handle)` (parented to the
//!   driver); dropping the lock deletes it with `WdfObjectDelete`. IRQL <= `DISPATCH_LEVEL`.
//! - [`Lock::lock`]: `WdfWaitLockAcquire(lock, NULL)`, which blocks until the lock is free;
//!   the guard releases with `WdfWaitLockRelease`. IRQL: `PASSIVE_LEVEL` (a thread).
//!
//! KMDF enters a critical region for the holder before it waits and leaves it on release, so
//! the holder runs at its own IRQL with normal kernel APCs disabled. The lock is not recursive:
//! a second `NULL`-timeout acquire by the holder is a framework violation (0x10D), never a second
//! guard, so an exclusive guard gives `&mut T`.

use alloc::boxed::Box;
use core::sync::atomic::AtomicBool;
use core::{pin::Pin, ptr};

use synclab_protocol::wire::StressResponse;
use wdk_sys::{call_unsafe_wdf_function_binding, NTSTATUS, WDFWAITLOCK, WDF_NO_OBJECT_ATTRIBUTES};

use super::{Lock, NonRecursive, RawExclusive, RawLock};
use crate::stress::{Attempt, Hold, Inside, Setup, TortureOps};

/// The `WDFWAITLOCK` backend. Its state is the framework handle (NULL until created).
pub struct WdfWaitLockBackend;

/// A KMDF wait lock protecting a `T`. Acquire from a thread at `PASSIVE_LEVEL`; the holder stays
/// there, in a critical region.
pub type WdfWaitLock<T> = Lock<T, WdfWaitLockBackend>;

// SAFETY: a WDFWAITLOCK created by WdfWaitLockCreate has at most one holder between a
// successful WdfWaitLockAcquire and the matching WdfWaitLockRelease; it is deleted only once
// nobody holds or waits on it.
unsafe impl RawLock for WdfWaitLockBackend {
    type State = WDFWAITLOCK;

    fn uninit() -> WDFWAITLOCK {
        ptr::null_mut()
    }

    unsafe fn init(state: *mut WDFWAITLOCK) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is a writable handle slot, not in use (RawLock::init's contract); no
        // attributes, so the lock is parented to the driver; Lock::try_new runs at IRQL <=
        // DISPATCH_LEVEL.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(WdfWaitLockCreate, WDF_NO_OBJECT_ATTRIBUTES, state)
        };
        if wdk::nt_success(status) {
            Ok(())
        } else {
            Err(status)
        }
    }

    unsafe fn destroy(state: *mut WDFWAITLOCK) {
        // SAFETY: `state` is the lock's initialised handle slot (RawLock::destroy's contract),
        // readable and no longer written by anyone.
        let handle = unsafe { state.read() };
        // SAFETY: a live wait lock this driver created and nobody holds or waits on
        // (RawLock::destroy's contract); it is deleted exactly once, at IRQL <= DISPATCH_LEVEL.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, handle.cast()) };
    }
}

// SAFETY: a successful WdfWaitLockAcquire makes the caller the lock's only holder until its
// WdfWaitLockRelease; each release is made by the thread that acquired.
unsafe impl RawExclusive for WdfWaitLockBackend {
    type GuardState = ();

    unsafe fn lock(state: *mut WDFWAITLOCK) {
        // SAFETY: `state` is the initialised handle slot, which nobody writes after creation
        // (RawExclusive::lock's contract).
        let handle = unsafe { state.read() };
        // SAFETY: a live wait lock (created by Lock::try_new, deleted only by its drop), which
        // the calling thread does not hold (a NULL-timeout re-acquire is a framework violation),
        // at PASSIVE_LEVEL (the caller's contract); a NULL timeout waits until it is acquired.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(WdfWaitLockAcquire, handle, ptr::null_mut())
        };
        // With no timeout the acquire returns only once the lock is the caller's.
        debug_assert_eq!(status, wdk_sys::STATUS_SUCCESS);
    }

    unsafe fn unlock(state: *mut WDFWAITLOCK, _guard: &()) {
        // SAFETY: `state` is the initialised handle slot, which nobody writes after creation.
        let handle = unsafe { state.read() };
        // SAFETY: the calling thread holds the lock through the acquisition being released
        // (RawExclusive::unlock's contract), at IRQL <= DISPATCH_LEVEL.
        unsafe { call_unsafe_wdf_function_binding!(WdfWaitLockRelease, handle) };
    }
}

// SAFETY: a NULL-timeout WdfWaitLockAcquire by the holder never returns a second acquisition:
// KMDF's verifier reports it (0x10D), and without the verifier it waits forever.
unsafe impl NonRecursive for WdfWaitLockBackend {}

/// The stress table of `wdfwaitlock` (variant `plain`). Every path runs in a thread at
/// `PASSIVE_LEVEL` (the row allows no other context).
pub struct Ops {
    lock: Pin<Box<WdfWaitLock<()>>>,
}

impl TortureOps for Ops {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        if setup.plan.variant.name != "plain" {
            return Err(wdk_sys::STATUS_NOT_SUPPORTED);
        }
        Ok(Self {
            lock: WdfWaitLock::try_new(())?,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        let _guard = self.lock.as_ref().lock();
        inside(Hold::EXCLUSIVE);
        Attempt::DONE
    }
}

/// Runs `wdfwaitlock` (any variant), until it ends or `stop` is set. IRQL:
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
