//! Time: the performance counter, and sleeping.

use wdk_sys::LARGE_INTEGER;

/// `KeQueryPerformanceCounter`'s value now. Any IRQL.
#[must_use]
pub fn ticks() -> i64 {
    // SAFETY: a null frequency pointer is allowed; callable at any IRQL.
    let now = unsafe { wdk_sys::ntddk::KeQueryPerformanceCounter(core::ptr::null_mut()) };
    // SAFETY: every bit pattern of the LARGE_INTEGER union is a valid i64.
    unsafe { now.QuadPart }
}

/// The performance-counter frequency, ticks per second. Any IRQL.
#[must_use]
pub fn frequency() -> i64 {
    let mut frequency = LARGE_INTEGER::default();
    // SAFETY: `frequency` is a live, writable LARGE_INTEGER; callable at any IRQL.
    let _ = unsafe { wdk_sys::ntddk::KeQueryPerformanceCounter(&raw mut frequency) };
    // SAFETY: every bit pattern of the union is a valid i64.
    unsafe { frequency.QuadPart }
}

/// Converts a tick count to nanoseconds at `frequency` ticks per second.
#[must_use]
pub fn ticks_to_ns(ticks: i64, frequency: i64) -> u64 {
    let ticks = u128::from(ticks.max(0).unsigned_abs());
    let frequency = u128::from(frequency.max(1).unsigned_abs());
    u64::try_from(ticks * 1_000_000_000 / frequency).unwrap_or(u64::MAX)
}

/// Sleeps at least `milliseconds`. IRQL <= `APC_LEVEL`; never from a DPC.
pub fn sleep_ms(milliseconds: u32) {
    sleep_100ns(i64::from(milliseconds) * 10_000);
}

/// Sleeps at least `ticks` performance-counter ticks at `frequency` (at least 100 ns; the
/// kernel's timer resolution may make it longer). IRQL <= `APC_LEVEL`; never from a DPC.
pub fn sleep_ticks(ticks: i64, frequency: i64) {
    let hundreds = i128::from(ticks.max(1)) * 10_000_000 / i128::from(frequency.max(1));
    sleep_100ns(i64::try_from(hundreds).unwrap_or(i64::MAX).max(1));
}

/// Sleeps at least `hundreds` × 100 ns. IRQL <= `APC_LEVEL`; never from a DPC.
fn sleep_100ns(hundreds: i64) {
    let mut interval = LARGE_INTEGER {
        QuadPart: -hundreds,
    };
    #[allow(clippy::cast_possible_truncation, reason = "KernelMode is 0")]
    let mode = wdk_sys::_MODE::KernelMode as wdk_sys::KPROCESSOR_MODE;
    // SAFETY: a relative interval in a live LARGE_INTEGER; callers run at IRQL <= APC_LEVEL in
    // a thread context (this function's contract). A non-alertable kernel-mode delay only
    // returns STATUS_SUCCESS.
    let _ = unsafe { wdk_sys::ntddk::KeDelayExecutionThread(mode, 0, &raw mut interval) };
}
