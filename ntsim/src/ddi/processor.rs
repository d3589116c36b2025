//! Processors and time (ddi.md 10.3): `KeQueryActiveProcessorCountEx`,
//! `KeGetCurrentProcessorNumberEx`, `KeQueryPerformanceCounter`, `KeStallExecutionProcessor`.

use std::time::{Duration, Instant};

use wdk_sys::{LARGE_INTEGER, PLARGE_INTEGER, PPROCESSOR_NUMBER, ULONG, USHORT};

use crate::context::enter;

/// `ALL_PROCESSOR_GROUPS`.
const ALL_PROCESSOR_GROUPS: u16 = 0xFFFF;

/// Performance-counter frequency: 10 MHz, as on current Windows.
pub const PERFORMANCE_FREQUENCY: i64 = 10_000_000;

export! {
    /// Active processors in `GroupNumber` (group 0 or all groups); 0 for another group.
    fn KeQueryActiveProcessorCountEx(GroupNumber: USHORT) -> ULONG {
        let e = enter("KeQueryActiveProcessorCountEx");
        if GroupNumber == 0 || GroupNumber == ALL_PROCESSOR_GROUPS {
            e.machine.processor_count()
        } else {
            0
        }
    }
}

export! {
    /// The system-wide index of the current processor; fills `ProcNumber` when given.
    fn KeGetCurrentProcessorNumberEx(ProcNumber: PPROCESSOR_NUMBER) -> ULONG {
        let e = enter("KeGetCurrentProcessorNumberEx");
        let index = e.processor.get();
        // SAFETY: the DDI contract makes `ProcNumber` null or a writable PROCESSOR_NUMBER.
        if let Some(out) = unsafe { ProcNumber.as_mut() } {
            out.Group = 0;
            out.Number = u8::try_from(index).unwrap_or(u8::MAX);
            out.Reserved = 0;
        }
        index
    }
}

fn ticks_since_boot(boot: Instant) -> i64 {
    i64::try_from(boot.elapsed().as_nanos() / 100).unwrap_or(i64::MAX)
}

export! {
    /// Monotonic ticks since boot at [`PERFORMANCE_FREQUENCY`]; stores the frequency when
    /// asked. Any IRQL.
    fn KeQueryPerformanceCounter(PerformanceFrequency: PLARGE_INTEGER) -> LARGE_INTEGER {
        let e = enter("KeQueryPerformanceCounter");
        // SAFETY: the DDI contract makes `PerformanceFrequency` null or a writable
        // LARGE_INTEGER.
        if let Some(out) = unsafe { PerformanceFrequency.as_mut() } {
            out.QuadPart = PERFORMANCE_FREQUENCY;
        }
        LARGE_INTEGER {
            QuadPart: ticks_since_boot(e.machine.boot),
        }
    }
}

export! {
    /// Busy-waits at least `MicroSeconds` without yielding the processor. Any IRQL.
    fn KeStallExecutionProcessor(MicroSeconds: ULONG) {
        let _e = enter("KeStallExecutionProcessor");
        let until = Instant::now() + Duration::from_micros(u64::from(MicroSeconds));
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

export! {
    /// The group and in-group number of processor `ProcIndex`; `STATUS_INVALID_PARAMETER` for an
    /// index that does not exist. Any IRQL.
    fn KeGetProcessorNumberFromIndex(ProcIndex: ULONG, ProcNumber: PPROCESSOR_NUMBER) -> wdk_sys::NTSTATUS {
        let e = enter("KeGetProcessorNumberFromIndex");
        if ProcIndex >= e.machine.processor_count() {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the DDI contract makes `ProcNumber` a writable PROCESSOR_NUMBER.
        let Some(out) = (unsafe { ProcNumber.as_mut() }) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        out.Group = 0;
        out.Number = u8::try_from(ProcIndex).unwrap_or(u8::MAX);
        out.Reserved = 0;
        wdk_sys::STATUS_SUCCESS
    }
}
