//! Safe wrappers over WDF objects, as in `wdk::wdf` 0.4.1.

use wdk_sys::{
    call_unsafe_wdf_function_binding, NTSTATUS, WDFSPINLOCK, WDFTIMER, WDF_OBJECT_ATTRIBUTES,
    WDF_TIMER_CONFIG,
};

/// A WDF spin lock (`WDFSPINLOCK`). IRQL <= `DISPATCH_LEVEL`.
///
/// No `Drop`: the framework deletes it with its parent object.
pub struct SpinLock {
    wdf_spin_lock: WDFSPINLOCK,
}

impl SpinLock {
    /// Creates a WDF spin lock.
    ///
    /// # Errors
    /// The NTSTATUS of `WdfSpinLockCreate`.
    #[inline]
    pub fn try_new(attributes: &mut WDF_OBJECT_ATTRIBUTES) -> Result<Self, NTSTATUS> {
        let mut spin_lock = Self {
            wdf_spin_lock: core::ptr::null_mut(),
        };
        // SAFETY: `attributes` is a valid WDF_OBJECT_ATTRIBUTES and the out pointer is a live
        // field of `spin_lock`.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfSpinLockCreate,
                attributes,
                &raw mut spin_lock.wdf_spin_lock
            )
        };
        wdk_sys::NT_SUCCESS(status)
            .then_some(spin_lock)
            .ok_or(status)
    }

    /// Alias of [`SpinLock::try_new`].
    ///
    /// # Errors
    /// The NTSTATUS of `WdfSpinLockCreate`.
    #[inline]
    pub fn create(attributes: &mut WDF_OBJECT_ATTRIBUTES) -> Result<Self, NTSTATUS> {
        Self::try_new(attributes)
    }

    /// Acquires the lock (raises to `DISPATCH_LEVEL`).
    #[inline]
    pub fn acquire(&self) {
        // SAFETY: `wdf_spin_lock` is the handle WdfSpinLockCreate returned; it is private and
        // never changes, so it is valid while `self` is.
        unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, self.wdf_spin_lock) };
    }

    /// Releases the lock.
    #[inline]
    pub fn release(&self) {
        // SAFETY: as in `acquire`.
        unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, self.wdf_spin_lock) };
    }
}

/// A WDF timer (`WDFTIMER`). IRQL <= `DISPATCH_LEVEL`.
///
/// No `Drop`: the framework deletes it with its parent object.
pub struct Timer {
    wdf_timer: WDFTIMER,
}

impl Timer {
    /// Creates a WDF timer.
    ///
    /// # Errors
    /// The NTSTATUS of `WdfTimerCreate`.
    #[inline]
    pub fn try_new(
        timer_config: &mut WDF_TIMER_CONFIG,
        attributes: &mut WDF_OBJECT_ATTRIBUTES,
    ) -> Result<Self, NTSTATUS> {
        let mut timer = Self {
            wdf_timer: core::ptr::null_mut(),
        };
        // SAFETY: both structures are valid and the out pointer is a live field of `timer`.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfTimerCreate,
                timer_config,
                attributes,
                &raw mut timer.wdf_timer
            )
        };
        wdk_sys::NT_SUCCESS(status).then_some(timer).ok_or(status)
    }

    /// Alias of [`Timer::try_new`].
    ///
    /// # Errors
    /// The NTSTATUS of `WdfTimerCreate`.
    #[inline]
    pub fn create(
        timer_config: &mut WDF_TIMER_CONFIG,
        attributes: &mut WDF_OBJECT_ATTRIBUTES,
    ) -> Result<Self, NTSTATUS> {
        Self::try_new(timer_config, attributes)
    }

    /// Starts the timer; negative `due_time` is relative, in 100 ns units.
    #[must_use]
    #[inline]
    pub fn start(&self, due_time: i64) -> bool {
        // SAFETY: `wdf_timer` is the private handle WdfTimerCreate returned.
        let queued =
            unsafe { call_unsafe_wdf_function_binding!(WdfTimerStart, self.wdf_timer, due_time) };
        queued != 0
    }

    /// Stops the timer, waiting for a running callback when `wait`.
    #[must_use]
    #[inline]
    pub fn stop(&self, wait: bool) -> bool {
        // SAFETY: `wdf_timer` is the private handle WdfTimerCreate returned.
        let stopped = unsafe {
            call_unsafe_wdf_function_binding!(WdfTimerStop, self.wdf_timer, u8::from(wait))
        };
        stopped != 0
    }
}
