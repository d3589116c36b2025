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
