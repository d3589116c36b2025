//! Notification events: one signal releases every waiter at once (the start gate of a run).

use core::{cell::UnsafeCell, marker::PhantomPinned, pin::Pin, ptr};

use wdk_sys::KEVENT;

/// A notification event (`KeInitializeEvent(NotificationEvent)`), constructed not signaled. It
/// is a dispatcher object threads wait on by address, so it is pinned and, since
/// [`Event::try_new`] puts it in pool, nonpaged.
pub struct Event {
    object: UnsafeCell<KEVENT>,
    _pin: PhantomPinned,
}

// SAFETY: the KEVENT is only reached through KeSetEvent, KeWaitForSingleObject and
// KeReadStateEvent, which the kernel synchronizes with its dispatcher lock.
unsafe impl Sync for Event {}

impl Event {
    /// A new notification event, not signaled, initialised in its pinned pool allocation.
    /// IRQL <= `DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` when pool cannot be had.
    pub fn try_new() -> Result<Pin<alloc::boxed::Box<Self>>, wdk_sys::NTSTATUS> {
        let event = super::pool::try_pin(Self {
            object: UnsafeCell::new(KEVENT::default()),
            _pin: PhantomPinned,
        })?;
        // SAFETY: the KEVENT is in its final, pinned place and nobody can wait on it yet.
        unsafe {
            wdk_sys::ntddk::KeInitializeEvent(
                event.object.get(),
                wdk_sys::_EVENT_TYPE::NotificationEvent,
                0,
            );
        }
        Ok(event)
    }

    /// Signals the event, releasing every waiter. IRQL <= `DISPATCH_LEVEL`.
    pub fn signal(&self) {
        // SAFETY: an initialised, pinned KEVENT; Wait = FALSE, so the caller's IRQL is restored
        // before the call returns (ddi.md 8.1).
        let _ = unsafe { wdk_sys::ntddk::KeSetEvent(self.object.get(), 0, 0) };
    }

    /// Waits until the event is signaled. IRQL <= `APC_LEVEL`, in a thread (never a DPC).
    pub fn wait(&self) {
        #[allow(clippy::cast_possible_truncation, reason = "KernelMode is 0")]
        let mode = wdk_sys::_MODE::KernelMode as wdk_sys::KPROCESSOR_MODE;
        // SAFETY: an initialised, pinned, nonpaged KEVENT; an infinite non-alertable KernelMode
        // wait at IRQL <= APC_LEVEL in a thread (this function's contract) is allowed.
        let _ = unsafe {
            wdk_sys::ntddk::KeWaitForSingleObject(
                self.object.get().cast(),
                wdk_sys::_KWAIT_REASON::Executive,
                mode,
                0,
                ptr::null_mut(),
            )
        };
    }
}
