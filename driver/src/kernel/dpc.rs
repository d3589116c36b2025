//! DPC objects. A [`Dpc`] is `KDPC` storage that must stay pinned (and nonpaged) from
//! initialisation until the last queued run has finished (see [`flush`]).

use core::{cell::UnsafeCell, marker::PhantomPinned};

use wdk_sys::{KDPC, NTSTATUS, PROCESSOR_NUMBER, PVOID};

/// A DPC object.
pub struct Dpc {
    object: UnsafeCell<KDPC>,
    _pin: PhantomPinned,
}

// SAFETY: the KDPC is only touched through KeInitializeDpc/KeSetTargetProcessorDpcEx (before it
// is queued) and KeInsertQueueDpc (any context, atomic in the kernel).
unsafe impl Sync for Dpc {}

/// The routine type of a DPC.
pub type Routine = unsafe extern "C" fn(*mut KDPC, PVOID, PVOID, PVOID);

impl Dpc {
    /// Uninitialised storage; call [`Dpc::init`] before queuing.
    #[must_use]
    pub fn new() -> Self {
        Self {
            object: UnsafeCell::new(KDPC::default()),
            _pin: PhantomPinned,
        }
    }

    /// Initialises the DPC (a threaded DPC when `threaded`) and targets it at processor
    /// `index`. Any IRQL; must not be queued.
    ///
    /// # Errors
    /// `STATUS_INVALID_PARAMETER` when the processor does not exist.
    ///
    /// # Safety
    /// `self` must not move or be freed until every queued run has finished, and `context` must
    /// stay valid for `routine` until then.
    pub unsafe fn init(
        &self,
        routine: Routine,
        context: PVOID,
        index: u32,
        threaded: bool,
    ) -> Result<(), NTSTATUS> {
        if threaded {
            // SAFETY: the KDPC is ours, not queued, and pinned per this function's contract.
            unsafe {
                wdk_sys::ntddk::KeInitializeThreadedDpc(self.object.get(), Some(routine), context);
            }
        } else {
            // SAFETY: the KDPC is ours, not queued, and pinned per this function's contract.
            unsafe { wdk_sys::ntddk::KeInitializeDpc(self.object.get(), Some(routine), context) };
        }
        let mut number = PROCESSOR_NUMBER::default();
        // SAFETY: `number` is writable; callable at any IRQL.
        let status =
            unsafe { wdk_sys::ntddk::KeGetProcessorNumberFromIndex(index, &raw mut number) };
        if !wdk_sys::NT_SUCCESS(status) {
            return Err(status);
        }
        // SAFETY: the KDPC is initialised and not queued; `number` is a valid processor number.
        let status = unsafe {
            wdk_sys::ntddk::KeSetTargetProcessorDpcEx(self.object.get(), &raw mut number)
        };
        if wdk_sys::NT_SUCCESS(status) {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// Queues the DPC; false when it was already queued. Any IRQL.
    pub fn queue(&self) -> bool {
        // SAFETY: the KDPC was initialised by `init` (contract of the owner) and is pinned.
        unsafe {
            wdk_sys::ntddk::KeInsertQueueDpc(
                self.object.get(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            ) != 0
        }
    }
}

/// Waits until every DPC queued so far, on every processor, has run. `PASSIVE_LEVEL`.
pub fn flush() {
    // SAFETY: no preconditions beyond IRQL, which is this function's contract.
    unsafe { wdk_sys::ntddk::KeFlushQueuedDpcs() };
}
