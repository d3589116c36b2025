//! Processors, affinity and time (ddi.md 10.3).
//!
//! `KeQueryActiveProcessorCountEx`,
//! `KeGetCurrentProcessorNumberEx`, `KeGetProcessorNumberFromIndex`,
//! `KeSetSystemGroupAffinityThread`, `KeRevertToUserGroupAffinityThread`,
//! `KeQueryPerformanceCounter`, `KeStallExecutionProcessor`.

use std::time::{Duration, Instant};

use wdk_sys::{
    GROUP_AFFINITY, LARGE_INTEGER, PGROUP_AFFINITY, PLARGE_INTEGER, PPROCESSOR_NUMBER, ULONG,
    USHORT,
};

use crate::{
    bugcheck::{code, verifier},
    context::{enter, irql},
    processor::mask_of,
};

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

/// Whether `affinity` names group 0 and only processors that exist, at least one of them.
const fn valid_affinity(affinity: &GROUP_AFFINITY, count: u32) -> bool {
    affinity.Group == 0 && affinity.Mask != 0 && affinity.Mask & !mask_of(count) == 0
}

fn require_at_most_apc(e: &crate::context::Entry, object: usize) {
    let level = e.irql.get();
    if level > irql::APC {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(level),
                object as u64,
                u64::from(irql::APC),
            ],
            format!(
                "{} at IRQL {level}: requires IRQL <= APC_LEVEL (the header's bound, stricter \
                 than the docs' DISPATCH_LEVEL)",
                e.ddi
            ),
        );
    }
}

/// Applies a hard affinity to the calling context: it moves to an allowed processor now, and
/// only takes allowed processors when it raises to `DISPATCH_LEVEL`.
fn apply_affinity(e: &crate::context::Entry, mask: u64) {
    e.affinity.set(mask);
    if mask & (1 << e.processor.get()) == 0 {
        e.processor.set(mask.trailing_zeros());
    }
}

export! {
    /// Sets the calling thread's hard affinity to `Affinity` (group 0, a mask of existing
    /// processors): it then runs only there, and raising to `DISPATCH_LEVEL` takes one of those
    /// processors. `*PreviousAffinity` (optional) receives the previous affinity for
    /// `KeRevertToUserGroupAffinityThread`. An invalid group or mask (or no processor of the
    /// mask active) leaves the affinity unchanged and zeroes `*PreviousAffinity` (ddi.md 10.3).
    /// IRQL <= `APC_LEVEL` (header; the docs allow `DISPATCH_LEVEL`; else 0xC4/0xE5).
    fn KeSetSystemGroupAffinityThread(Affinity: PGROUP_AFFINITY, PreviousAffinity: PGROUP_AFFINITY) {
        let e = enter("KeSetSystemGroupAffinityThread");
        require_at_most_apc(&e, Affinity as usize);
        // SAFETY: the DDI contract makes `Affinity` a readable GROUP_AFFINITY (NULL is treated
        // as invalid).
        let requested = unsafe { Affinity.as_ref() }.copied();
        let valid = requested.filter(|a| valid_affinity(a, e.machine.processor_count()));
        // SAFETY: the DDI contract makes `PreviousAffinity` null or a writable GROUP_AFFINITY.
        if let Some(previous) = unsafe { PreviousAffinity.as_mut() } {
            *previous = GROUP_AFFINITY {
                Mask: if valid.is_some() { e.affinity.get() } else { 0 },
                Group: 0,
                Reserved: [0; 3],
            };
        }
        if let Some(affinity) = valid {
            apply_affinity(&e, affinity.Mask);
        }
    }
}

export! {
    /// Restores the affinity saved by `KeSetSystemGroupAffinityThread`; a zero mask in
    /// `*PreviousAffinity` (or NULL) restores the thread's user affinity (every processor).
    /// IRQL <= `APC_LEVEL` (else 0xC4/0xE5).
    fn KeRevertToUserGroupAffinityThread(PreviousAffinity: PGROUP_AFFINITY) {
        let e = enter("KeRevertToUserGroupAffinityThread");
        require_at_most_apc(&e, PreviousAffinity as usize);
        let all = mask_of(e.machine.processor_count());
        // SAFETY: the DDI contract makes `PreviousAffinity` a readable GROUP_AFFINITY.
        let previous = unsafe { PreviousAffinity.as_ref() }.copied();
        match previous {
            Some(p) if p.Mask != 0 => {
                if valid_affinity(&p, e.machine.processor_count()) {
                    apply_affinity(&e, p.Mask);
                }
            }
            _ => apply_affinity(&e, all),
        }
    }
}
