//! Framework spin lock (`WDFSPINLOCK`, KMDF).
//!
//! - [`Lock::try_new`]: `WdfSpinLockCreate(WDF_NO_OBJECT_ATTRIBUTES, &handle)`; the framework
//!   parents it to the driver object. IRQL <= `DISPATCH_LEVEL`. Dropping the lock deletes the
//!   object with `WdfObjectDelete` (IRQL <= `DISPATCH_LEVEL`).
//! - [`Lock::lock`]: `WdfSpinLockAcquire` / `WdfSpinLockRelease`. The framework raises to
//!   `DISPATCH_LEVEL` and keeps the IRQL to restore in the lock object itself, so the same call
//!   serves threads and DPC routines. IRQL <= `DISPATCH_LEVEL`.
//!
//! The holder runs at `DISPATCH_LEVEL`: keep holds short, never wait. Acquiring it again while
//! holding it is a framework verifier bug check (0x10D), never a second hold.

use alloc::boxed::Box;
use core::pin::Pin;
use core::sync::atomic::AtomicBool;

use synclab_protocol::wire::StressResponse;
use wdk_sys::{call_unsafe_wdf_function_binding, NTSTATUS, WDFOBJECT, WDFSPINLOCK};

use super::{Lock, NonRecursive, RawExclusive, RawLock};
use crate::{
    kernel::irql::AtDispatch,
    stress::{Attempt, Hold, Inside, Setup, TortureOps},
};

/// The `WDFSPINLOCK` backend: the state is the framework handle.
pub struct WdfSpinLockBackend;

/// A framework spin lock protecting a `T`. The holder runs at `DISPATCH_LEVEL`.
pub type WdfSpinLock<T> = Lock<T, WdfSpinLockBackend>;

// SAFETY: a WDFSPINLOCK created by WdfSpinLockCreate excludes every other holder between
// WdfSpinLockAcquire and WdfSpinLockRelease, until WdfObjectDelete.
unsafe impl RawLock for WdfSpinLockBackend {
    type State = WDFSPINLOCK;

    fn uninit() -> WDFSPINLOCK {
        core::ptr::null_mut()
    }

    unsafe fn init(state: *mut WDFSPINLOCK) -> Result<(), NTSTATUS> {
        // SAFETY: `state` is valid for writes (RawLock::init's contract) and receives the new
        // handle; no attributes are passed (WDF_NO_OBJECT_ATTRIBUTES is the documented null);
        // the caller of Lock::try_new is at IRQL <= DISPATCH_LEVEL.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfSpinLockCreate,
                wdk_sys::WDF_NO_OBJECT_ATTRIBUTES,
                state
            )
        };
        if wdk::nt_success(status) {
            Ok(())
        } else {
            Err(status)
        }
    }

    unsafe fn destroy(state: *mut WDFSPINLOCK) {
        // SAFETY: `state` holds the handle `init` stored (RawLock::destroy's contract: it was
        // initialised), and nothing writes it after `init`.
        let handle = unsafe { *state };
        // SAFETY: a live WDFSPINLOCK nobody holds or waits on (RawLock::destroy's contract),
        // deleted once: the Lock owning it is being dropped.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, handle as WDFOBJECT) };
    }
}

// SAFETY: between WdfSpinLockAcquire and WdfSpinLockRelease no other context holds the
// WDFSPINLOCK; the release restores the IRQL its acquire saved in the object.
unsafe impl RawExclusive for WdfSpinLockBackend {
    /// Nothing: the framework keeps the IRQL to restore in the lock object.
    type GuardState = ();

    unsafe fn lock(state: *mut WDFSPINLOCK) {
        // SAFETY: `state` holds the handle stored by a successful `init` (RawExclusive::lock's
        // contract) and is only read after it.
        let handle = unsafe { *state };
        // SAFETY: a live WDFSPINLOCK the caller does not hold; the caller is at IRQL <=
        // DISPATCH_LEVEL (RawExclusive::lock's contract).
        unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, handle) };
    }

    unsafe fn unlock(state: *mut WDFSPINLOCK, _guard: &()) {
        // SAFETY: `state` holds the handle stored by a successful `init` (the caller holds the
        // lock, so it was initialised) and is only read after it.
        let handle = unsafe { *state };
        // SAFETY: the caller holds the lock through WdfSpinLockAcquire, in this context, and is
        // still at DISPATCH_LEVEL (RawExclusive::unlock's contract).
        unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, handle) };
    }
}

// SAFETY: WdfSpinLockAcquire by the holder bug checks (0x10D/0x2 under the framework verifier,
// a hang without it); no second guard is ever returned.
unsafe impl NonRecursive for WdfSpinLockBackend {}

/// The stress table of `wdfspinlock` (one variant, `plain`).
pub struct Ops {
    lock: Pin<Box<WdfSpinLock<()>>>,
}

impl Ops {
    /// One hold through `WdfSpinLockAcquire`, from any IRQL <= `DISPATCH_LEVEL`.
    fn hold(&self, inside: Inside<'_>) -> Attempt {
        let _guard = self.lock.as_ref().lock();
        inside(Hold::EXCLUSIVE);
        Attempt::DONE
    }
}

impl TortureOps for Ops {
    fn try_new(setup: &Setup) -> Result<Self, NTSTATUS> {
        if setup.plan.variant.name != "plain" {
            return Err(wdk_sys::STATUS_NOT_SUPPORTED);
        }
        Ok(Self {
            lock: WdfSpinLock::try_new(())?,
        })
    }

    fn write(&self, inside: Inside<'_>) -> Attempt {
        self.hold(inside)
    }

    /// The same acquire: `WdfSpinLockAcquire` is legal at `DISPATCH_LEVEL` (it saves
    /// `DISPATCH_LEVEL` and restores it).
    fn write_at_dpc(&self, _at: &AtDispatch<'_>, inside: Inside<'_>) -> Attempt {
        self.hold(inside)
    }
}

/// Runs `wdfspinlock`. IRQL: `PASSIVE_LEVEL`.
///
/// # Errors
/// As [`crate::stress::run`].
pub fn run(setup: &Setup, stop: &AtomicBool) -> Result<Box<StressResponse>, NTSTATUS> {
    crate::stress::run::<Ops>(setup, stop)
}
