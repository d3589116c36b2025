//! DPCs (ddi.md 10.2) and the DPC watchdog (errata 6).
//!
//! `KeInitializeDpc`, `KeInitializeThreadedDpc`, `KeSetImportanceDpc`,
//! `KeSetTargetProcessorDpcEx`, `KeInsertQueueDpc`, `KeRemoveQueueDpc`, `KeFlushQueuedDpcs`,
//! `KeQueryDpcWatchdogInformation`, and the checks made when a DPC routine returns.
//!
//! The state lives in the driver's `KDPC`, at the x64 offsets of the WDK layout: the routine,
//! context and arguments, the importance, the target processor, and `DpcData`, which is non-zero
//! exactly while the DPC is queued (set with a compare-and-swap, so a second insert returns
//! FALSE).
//!
//! Threaded DPCs: Windows runs them at `PASSIVE_LEVEL` in a real-time thread, or at
//! `DISPATCH_LEVEL` when threaded DPCs are disabled (`ThreadDpcEnable = 0`). ntsim models the
//! disabled case: a threaded DPC is an ordinary DPC, run at `DISPATCH_LEVEL` by the processor's
//! DPC runner, with every DPC check. A driver that obeys the `DISPATCH_LEVEL` rules (which the
//! docs require either way) behaves the same under both.
//!
//! The DPC watchdog (errata 6) measures in clock ticks of 15.625 ms, as Windows reports it:
//! single-DPC limit `MachineConfig::dpc_time_limit` (default 20 s = 0x500 ticks), cumulative
//! limit `MachineConfig::dpc_watchdog_limit` (default 120 s = 0x1E00 ticks). The machine's clock
//! thread fires it while the offender runs (`processor::start_clock`); a DPC routine that returns
//! over its limit is caught at its return as well.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use wdk_sys::{
    BOOLEAN, KDPC_IMPORTANCE, NTSTATUS, PKDEFERRED_ROUTINE, PKDPC_WATCHDOG_INFORMATION,
    PPROCESSOR_NUMBER, PRKDPC, PVOID,
};

use crate::{
    bugcheck::{code, verifier},
    context::{self, enter, irql, Ctx, Entry},
    machine::MachineInner,
    processor::ticks,
};

const TYPE: usize = 0;
const IMPORTANCE: usize = 1;
const NUMBER: usize = 2;
const ROUTINE: usize = 24;
const CONTEXT: usize = 32;
const ARGUMENT1: usize = 40;
const ARGUMENT2: usize = 48;
const DPC_DATA: usize = 56;

/// `DpcObject` in the `KOBJECTS` enumeration.
const DPC_OBJECT: u8 = 19;
/// `ThreadedDpcObject` in the `KOBJECTS` enumeration.
const THREADED_DPC_OBJECT: u8 = 24;
/// `HighImportance`: queued at the head.
const HIGH_IMPORTANCE: u8 = 2;

const fn field<T>(dpc: PRKDPC, offset: usize) -> *mut T {
    dpc.cast::<u8>().wrapping_add(offset).cast()
}

const fn queued_marker<'a>(dpc: PRKDPC) -> &'a AtomicU64 {
    // SAFETY: `dpc` points to a resident 64-byte, 8-byte aligned KDPC (DDI contract); DpcData
    // at offset 56 is only accessed atomically by ntsim.
    unsafe { AtomicU64::from_ptr(field(dpc, DPC_DATA)) }
}

/// Checks a `KDPC` pointer a DDI was given (null or misaligned is 0xC7, P1 = 1).
pub(crate) fn check_dpc(e: &Entry, dpc: PRKDPC) {
    if dpc.is_null() || !dpc.cast::<u64>().is_aligned() {
        e.bugcheck(
            code::TIMER_OR_DPC_INVALID,
            [1, dpc as u64, 0, 0],
            format!("{} on an invalid KDPC {dpc:p}", e.ddi),
        );
    }
}

fn initialize(e: &Entry, dpc: PRKDPC, kind: u8, routine: PKDEFERRED_ROUTINE, context: PVOID) {
    check_dpc(e, dpc);
    // SAFETY: `dpc` is a valid, writable, 8-byte aligned 64-byte KDPC (checked non-null and
    // aligned; size per the DDI contract). Zeroing it first gives every field a defined value.
    unsafe { dpc.cast::<u8>().write_bytes(0, 64) };
    // SAFETY: offset 0 is inside the KDPC just zeroed.
    unsafe { field::<u8>(dpc, TYPE).write(kind) };
    // SAFETY: offset 1 is inside the KDPC; MediumImportance = 1.
    unsafe { field::<u8>(dpc, IMPORTANCE).write(1) };
    // SAFETY: offset 24 is 8-aligned and inside the KDPC; the routine slot is pointer-sized.
    unsafe { field::<PKDEFERRED_ROUTINE>(dpc, ROUTINE).write(routine) };
    // SAFETY: offset 32 is 8-aligned and inside the KDPC.
    unsafe { field::<PVOID>(dpc, CONTEXT).write(context) };
}

export! {
    /// Initialises a DPC object (medium importance, current processor). Any IRQL.
    fn KeInitializeDpc(Dpc: PRKDPC, DeferredRoutine: PKDEFERRED_ROUTINE, DeferredContext: PVOID) {
        let e = enter("KeInitializeDpc");
        initialize(&e, Dpc, DPC_OBJECT, DeferredRoutine, DeferredContext);
    }
}

export! {
    /// Initialises a threaded DPC object. Any IRQL. ntsim runs threaded DPCs as Windows does
    /// with threaded DPCs disabled: at `DISPATCH_LEVEL` on the DPC runner (see the module docs).
    fn KeInitializeThreadedDpc(
        Dpc: PRKDPC,
        DeferredRoutine: PKDEFERRED_ROUTINE,
        DeferredContext: PVOID,
    ) {
        let e = enter("KeInitializeThreadedDpc");
        initialize(&e, Dpc, THREADED_DPC_OBJECT, DeferredRoutine, DeferredContext);
    }
}

export! {
    /// Sets the DPC's importance: `HighImportance` DPCs are queued at the head of their
    /// processor's queue, the others at the tail. Any IRQL; takes effect at the next insert (do
    /// not change it while the DPC is queued).
    fn KeSetImportanceDpc(Dpc: PRKDPC, Importance: KDPC_IMPORTANCE) {
        let e = enter("KeSetImportanceDpc");
        check_dpc(&e, Dpc);
        let value = u8::try_from(Importance).unwrap_or(1);
        // SAFETY: offset 1 is inside the KDPC (checked non-null and aligned).
        unsafe { field::<u8>(Dpc, IMPORTANCE).write(value) };
    }
}

export! {
    /// Targets the DPC at one processor. `STATUS_INVALID_PARAMETER` for a processor that does not
    /// exist. Any IRQL.
    fn KeSetTargetProcessorDpcEx(Dpc: PRKDPC, ProcNumber: PPROCESSOR_NUMBER) -> NTSTATUS {
        let e = enter("KeSetTargetProcessorDpcEx");
        check_dpc(&e, Dpc);
        // SAFETY: the DDI contract makes `ProcNumber` null or a readable PROCESSOR_NUMBER.
        let Some(number) = (unsafe { ProcNumber.as_ref() }) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        if number.Group != 0 || u32::from(number.Number) >= e.machine.processor_count() {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        }
        // SAFETY: offset 2 is 2-aligned and inside the KDPC; ntsim stores processor + 1.
        unsafe { field::<u16>(Dpc, NUMBER).write(u16::from(number.Number) + 1) };
        wdk_sys::STATUS_SUCCESS
    }
}

/// Marks a queued DPC as inserted by a timer's expiry (bit 32 of `DpcData`; bits 0..32 hold
/// the processor + 1), so a timer DPC that changes the APC-disable count is 0xC7 with P1 = 5.
const TIMER_DPC: u64 = 1 << 32;

/// `KeInsertQueueDpc`'s logic: queues `dpc` on its target processor (else `default_cpu`);
/// FALSE, and nothing done, when it is already queued. `timer` marks an insertion by a timer's
/// expiry.
///
/// # Safety
/// `dpc` is an initialised, resident, 8-byte aligned `KDPC`.
pub(crate) unsafe fn insert(
    machine: &MachineInner,
    dpc: PRKDPC,
    argument1: PVOID,
    argument2: PVOID,
    default_cpu: u32,
    timer: bool,
) -> bool {
    // SAFETY: caller guarantee; offset 2 is inside the KDPC.
    let number = unsafe { field::<u16>(dpc, NUMBER).read() };
    let target = if number == 0 {
        default_cpu
    } else {
        u32::from(number) - 1
    };
    let marker = (u64::from(target) + 1) | if timer { TIMER_DPC } else { 0 };
    if queued_marker(dpc)
        .compare_exchange(0, marker, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    // SAFETY: offset 40 is 8-aligned, inside the KDPC, and ours to write while we hold the
    // queued marker.
    unsafe { field::<PVOID>(dpc, ARGUMENT1).write(argument1) };
    // SAFETY: offset 48, as above.
    unsafe { field::<PVOID>(dpc, ARGUMENT2).write(argument2) };
    // SAFETY: offset 1 is inside the KDPC.
    let importance = unsafe { field::<u8>(dpc, IMPORTANCE).read() };
    machine
        .processors
        .enqueue(target, dpc as usize, importance == HIGH_IMPORTANCE);
    true
}

export! {
    /// Queues the DPC on its target processor (or the current one). FALSE, and nothing done,
    /// when it is already queued. Any IRQL.
    fn KeInsertQueueDpc(Dpc: PRKDPC, SystemArgument1: PVOID, SystemArgument2: PVOID) -> BOOLEAN {
        let e = enter("KeInsertQueueDpc");
        check_dpc(&e, Dpc);
        // SAFETY: checked non-null and aligned; an initialised, resident KDPC per the DDI
        // contract.
        let queued = unsafe {
            insert(&e.machine, Dpc, SystemArgument1, SystemArgument2, e.processor.get(), false)
        };
        BOOLEAN::from(queued)
    }
}

export! {
    /// Removes a queued DPC before it runs: TRUE when it was queued. Any IRQL.
    fn KeRemoveQueueDpc(Dpc: PRKDPC) -> BOOLEAN {
        let e = enter("KeRemoveQueueDpc");
        check_dpc(&e, Dpc);
        let marker = queued_marker(Dpc).load(Ordering::Acquire);
        if marker == 0 {
            return 0;
        }
        #[allow(clippy::cast_possible_truncation, reason = "the low half is processor + 1 <= 64")]
        let cpu = ((marker & !TIMER_DPC) - 1) as u32;
        if e.machine.processors.dequeue(cpu, Dpc as usize) {
            queued_marker(Dpc).store(0, Ordering::Release);
            1
        } else {
            0
        }
    }
}

export! {
    /// Returns once every DPC queued before the call, on every processor, has run.
    /// `PASSIVE_LEVEL` (the docs' value; the header says <= `APC_LEVEL`, ddi.md 14).
    fn KeFlushQueuedDpcs() {
        let e = enter("KeFlushQueuedDpcs");
        if e.in_dpc.get() {
            e.bugcheck(code::ATTEMPTED_SWITCH_FROM_DPC, [0; 4], "KeFlushQueuedDpcs from a DPC");
        }
        let level = e.irql.get();
        if level != irql::PASSIVE {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [crate::bugcheck::verifier::API_AT_WRONG_IRQL, u64::from(level), 0, 0],
                format!("KeFlushQueuedDpcs at IRQL {level}: requires PASSIVE_LEVEL"),
            );
        }
        e.machine.processors.flush(&e.machine);
    }
}

export! {
    /// The DPC watchdog's figures for the current processor, in clock ticks (errata 6):
    /// `DpcTimeLimit` / `DpcWatchdogLimit` from the machine's configuration (0 = disabled), and
    /// what remains of each (`DpcTimeCount` for the running DPC, `DpcWatchdogCount` for the time
    /// at `DISPATCH_LEVEL`). `STATUS_SUCCESS` inside a DPC routine, `STATUS_UNSUCCESSFUL`
    /// otherwise (the structure is filled either way; `DpcTimeCount` is then 0). At
    /// `DISPATCH_LEVEL` (else 0xC4/0xE5).
    fn KeQueryDpcWatchdogInformation(WatchdogInformation: PKDPC_WATCHDOG_INFORMATION) -> NTSTATUS {
        let e = enter("KeQueryDpcWatchdogInformation");
        let level = e.irql.get();
        if level != irql::DISPATCH {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::API_AT_WRONG_IRQL, u64::from(level), 0, 0],
                format!("KeQueryDpcWatchdogInformation at IRQL {level}: requires DISPATCH_LEVEL"),
            );
        }
        // SAFETY: the DDI contract makes `WatchdogInformation` a writable structure.
        let Some(out) = (unsafe { WatchdogInformation.as_mut() }) else {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        };
        let config = &e.machine.config;
        let now = e.machine.now_nanos();
        let (raised, dpc) = e.machine.processors.watchdog_marks(e.processor.get());
        let remaining = |limit: std::time::Duration, since: Option<u64>| -> u32 {
            if limit.is_zero() {
                return 0;
            }
            let used = std::time::Duration::from_nanos(since.map_or(0, |s| now.saturating_sub(s)));
            u32::try_from(ticks(limit.saturating_sub(used))).unwrap_or(u32::MAX)
        };
        let limit = |d: std::time::Duration| u32::try_from(ticks(d)).unwrap_or(u32::MAX);
        out.DpcTimeLimit = limit(config.dpc_time_limit);
        out.DpcTimeCount = if e.in_dpc.get() { remaining(config.dpc_time_limit, dpc) } else { 0 };
        out.DpcWatchdogLimit = limit(config.dpc_watchdog_limit);
        out.DpcWatchdogCount = remaining(config.dpc_watchdog_limit, raised);
        out.Reserved = 0;
        if e.in_dpc.get() {
            wdk_sys::STATUS_SUCCESS
        } else {
            wdk_sys::STATUS_UNSUCCESSFUL
        }
    }
}

/// Runs one dequeued DPC on a runner that holds its processor at `DISPATCH_LEVEL`, then applies
/// the checks made when a DPC returns (ddi.md 10.2, 13.5).
pub(crate) fn execute(ctx: &Ctx, dpc: usize) {
    let dpc = dpc as PRKDPC;
    // SAFETY: the KDPC was queued by KeInsertQueueDpc, so it is a valid, initialised KDPC that
    // the driver keeps resident until it has run (freeing it while queued is the driver's bug).
    let routine = unsafe { field::<PKDEFERRED_ROUTINE>(dpc, ROUTINE).read() };
    // SAFETY: as above.
    let context = unsafe { field::<PVOID>(dpc, CONTEXT).read() };
    // SAFETY: as above.
    let argument1 = unsafe { field::<PVOID>(dpc, ARGUMENT1).read() };
    // SAFETY: as above.
    let argument2 = unsafe { field::<PVOID>(dpc, ARGUMENT2).read() };
    // Dequeued: the routine may queue it again.
    let from_timer = queued_marker(dpc).swap(0, Ordering::AcqRel) & TIMER_DPC != 0;
    let Some(routine) = routine else {
        return;
    };
    let combined_before = ctx.combined_apc_disable();
    let held_before = ctx.held.borrow().len();
    let started = Instant::now();
    let cpu = ctx.processor.get();
    ctx.machine
        .processors
        .mark_dpc(cpu, Some(ctx.machine.now_nanos()));
    ctx.in_dpc.set(true);
    // SAFETY: the routine and its arguments are exactly what the driver registered; it is
    // called at DISPATCH_LEVEL on the processor it was queued to, as its contract requires.
    ctx.call_driver(|| unsafe { routine(dpc, context, argument1, argument2) });
    ctx.in_dpc.set(false);
    ctx.machine.processors.mark_dpc(cpu, None);
    let elapsed = started.elapsed();
    let name = format!(
        "{}DPC routine {:#x}",
        if from_timer { "timer " } else { "" },
        routine as usize
    );
    let held = ctx.held.borrow().get(held_before).cloned();
    if let Some(hold) = held {
        context::raise(
            ctx,
            code::DPC_WATCHDOG_VIOLATION,
            [0, hold.addr as u64, 0, 0],
            "DPC return",
            format!(
                "{name} returned still holding the lock at {:#x} (acquired with {}): other \
                 processors would spin on it until the DPC watchdog fires",
                hold.addr, hold.acquired_by
            ),
        );
    }
    let level = ctx.irql.get();
    if level != irql::DISPATCH {
        context::raise(
            ctx,
            code::IRQL_UNEXPECTED_VALUE,
            [
                (u64::from(level) << 16) | (u64::from(irql::DISPATCH) << 8),
                routine as usize as u64,
                0,
                0,
            ],
            "DPC return",
            format!("{name} returned at IRQL {level}, not DISPATCH_LEVEL"),
        );
    }
    let combined_after = ctx.combined_apc_disable();
    if combined_after != combined_before {
        context::raise(
            ctx,
            code::TIMER_OR_DPC_INVALID,
            [
                if from_timer { 5 } else { 4 },
                routine as usize as u64,
                u64::from(combined_before),
                u64::from(combined_after),
            ],
            "DPC return",
            format!(
                "{name} changed CombinedApcDisable from {combined_before:#x} to {combined_after:#x}"
            ),
        );
    }
    let limit = ctx.machine.config.dpc_time_limit;
    if !limit.is_zero() && elapsed > limit {
        context::raise(
            ctx,
            code::DPC_WATCHDOG_VIOLATION,
            [0, ticks(elapsed), ticks(limit), 0],
            "DPC return",
            format!("{name} ran {elapsed:?}, over the single-DPC limit {limit:?}"),
        );
    }
}
