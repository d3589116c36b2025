//! Processors.

/// Active processors in all groups. Any IRQL.
#[must_use]
pub fn count() -> u32 {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "ALL_PROCESSOR_GROUPS is 0xFFFF"
    )]
    let all = wdk_sys::ALL_PROCESSOR_GROUPS as u16;
    // SAFETY: no preconditions; callable at any IRQL.
    unsafe { wdk_sys::ntddk::KeQueryActiveProcessorCountEx(all) }
}

/// The system-wide index of the current processor. Any IRQL (meaningful at `DISPATCH_LEVEL`).
#[must_use]
pub fn current() -> u32 {
    // SAFETY: a null out-pointer is allowed; callable at any IRQL.
    unsafe { wdk_sys::ntddk::KeGetCurrentProcessorNumberEx(core::ptr::null_mut()) }
}

/// Busy-waits `microseconds` without releasing the processor. Any IRQL; keep it short.
pub fn stall(microseconds: u32) {
    // SAFETY: no preconditions; callable at any IRQL.
    unsafe { wdk_sys::ntddk::KeStallExecutionProcessor(microseconds) };
}

/// The calling thread's hard affinity to one processor, for as long as it lives; dropping it
/// reverts to the thread's previous affinity. `!Send`: it belongs to the thread that set it.
#[must_use = "the affinity is reverted when the guard is dropped"]
pub struct Affinity {
    previous: wdk_sys::GROUP_AFFINITY,
    _not_send: core::marker::PhantomData<*mut ()>,
}

/// Binds the calling thread to processor `index` (system-wide index).
/// IRQL: `PASSIVE_LEVEL` or `APC_LEVEL` (the header's bound).
///
/// # Errors
/// `STATUS_INVALID_PARAMETER` when no such processor exists.
pub fn bind_current_thread(index: u32) -> Result<Affinity, wdk_sys::NTSTATUS> {
    let mut number = wdk_sys::PROCESSOR_NUMBER::default();
    // SAFETY: `number` is writable; callable at any IRQL.
    let status = unsafe { wdk_sys::ntddk::KeGetProcessorNumberFromIndex(index, &raw mut number) };
    if !wdk_sys::NT_SUCCESS(status) {
        return Err(status);
    }
    let mut affinity = wdk_sys::GROUP_AFFINITY {
        Mask: 1 << number.Number,
        Group: number.Group,
        ..wdk_sys::GROUP_AFFINITY::default()
    };
    let mut previous = wdk_sys::GROUP_AFFINITY::default();
    // SAFETY: both structures are live and writable; the mask names one active processor of
    // its group (from KeGetProcessorNumberFromIndex); IRQL <= APC_LEVEL is this function's
    // contract. The guard reverts on the same thread.
    unsafe {
        wdk_sys::ntddk::KeSetSystemGroupAffinityThread(&raw mut affinity, &raw mut previous);
    }
    Ok(Affinity {
        previous,
        _not_send: core::marker::PhantomData,
    })
}

impl Drop for Affinity {
    fn drop(&mut self) {
        // SAFETY: `previous` is what KeSetSystemGroupAffinityThread saved for this thread, which
        // is the one dropping the guard (it is !Send).
        unsafe { wdk_sys::ntddk::KeRevertToUserGroupAffinityThread(&raw mut self.previous) };
    }
}
