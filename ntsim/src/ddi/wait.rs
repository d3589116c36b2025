//! Waits (ddi.md 8.6, 10.3, 13.4, errata 2): `KeWaitForSingleObject`,
//! `KeWaitForMultipleObjects` and `KeDelayExecutionThread`.
//!
//! This module is the waiting half of the wait engine: the IRQL rules, the timeout forms, the
//! wait-block limits, the follow-up wait of a `Wait = TRUE` set/release call, and blocking. The
//! signaling half (which objects are signaled for whom, what a satisfied wait changes, the
//! targeted wake-ups) is [`crate::dispatcher`].
//!
//! Return values: `STATUS_SUCCESS` (single object, `WaitAll`), `STATUS_WAIT_0 + i` (`WaitAny`,
//! lowest satisfiable index, ddi.md 13.4), `STATUS_TIMEOUT`. ntsim raises no alerts and delivers
//! no APCs, so no wait ends with `STATUS_ALERTED` or `STATUS_USER_APC` (a kernel-mode
//! non-alertable wait never would), and kernel mutexes are never abandoned (errata 4), so there
//! is no `STATUS_ABANDONED_WAIT_0 + i`.

use std::{
    sync::{Arc, Condvar},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use wdk_sys::{
    _WAIT_TYPE, BOOLEAN, KPROCESSOR_MODE, KWAIT_REASON, NTSTATUS, PKWAIT_BLOCK, PLARGE_INTEGER,
    PVOID, ULONG, WAIT_TYPE,
};

use crate::{
    bugcheck::{code, verifier},
    context::{self, enter, irql, Ctx, Entry, PendingWait},
    dispatcher::{self, object_type, Claimant, Outcome},
    exception,
};

/// `MAXIMUM_WAIT_OBJECTS`.
const MAXIMUM_WAIT_OBJECTS: u32 = 64;
/// `THREAD_WAIT_OBJECTS`: wait blocks built into every thread.
const THREAD_WAIT_OBJECTS: u32 = 3;
/// `STATUS_ACCESS_VIOLATION`: what touching a bad object pointer raises.
const STATUS_ACCESS_VIOLATION: NTSTATUS = wdk_sys::STATUS_ACCESS_VIOLATION;

/// 100-ns intervals between 1601-01-01 and 1970-01-01.
const EPOCH_DIFFERENCE_100NS: i64 = 116_444_736_000_000_000;

/// The current system time in 100-ns units since 1601 (`KeQuerySystemTime`'s value).
#[must_use]
pub fn system_time() -> i64 {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    EPOCH_DIFFERENCE_100NS + i64::try_from(since_unix.as_nanos() / 100).unwrap_or(i64::MAX)
}

/// The instant an NT time value names: negative is relative (100-ns units from now), zero or
/// positive an absolute system time (100-ns units since 1601; a past time is now).
#[must_use]
pub fn deadline_of(ticks: i64) -> Instant {
    let ahead = if ticks < 0 {
        ticks.unsigned_abs()
    } else {
        ticks.saturating_sub(system_time()).max(0).unsigned_abs()
    };
    later(Duration::from_nanos(ahead.saturating_mul(100)))
}

/// `now + ahead`, capped at a thousand years (as good as never) instead of overflowing.
#[must_use]
pub fn later(ahead: Duration) -> Instant {
    const NEVER: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(ahead.min(NEVER))
        .or_else(|| now.checked_add(Duration::from_secs(3600)))
        .unwrap_or(now)
}

/// A decoded `Timeout` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// NULL: wait forever.
    Infinite,
    /// Zero: test and return.
    Poll,
    /// Until this instant (relative or absolute forms, converted).
    Until(Instant),
}

impl Timeout {
    /// Decodes a `PLARGE_INTEGER` timeout: NULL forever, 0 poll, negative relative (100 ns),
    /// positive absolute system time.
    ///
    /// # Safety
    /// `timeout` must be null or point to a readable `LARGE_INTEGER`.
    pub unsafe fn decode(timeout: PLARGE_INTEGER) -> Self {
        // SAFETY: forwarded caller guarantee.
        let Some(value) = (unsafe { timeout.as_ref() }) else {
            return Self::Infinite;
        };
        // SAFETY: every bit pattern of the union is a valid i64.
        let ticks = unsafe { value.QuadPart };
        if ticks == 0 {
            Self::Poll
        } else {
            Self::Until(deadline_of(ticks))
        }
    }

    fn deadline(self) -> Option<Instant> {
        match self {
            Self::Infinite => None,
            Self::Poll => Some(Instant::now()),
            Self::Until(t) => Some(t),
        }
    }
}

/// The IRQL rules of every wait (ddi.md 13.4), judged at `level`.
///
/// A blocking wait needs IRQL <= `APC_LEVEL` and not a DPC (0xB8); at `DISPATCH_LEVEL` it is 0xC4/0x121 without a timeout and
/// 0xC4/0x3B with a nonzero one; above `DISPATCH_LEVEL` any wait is 0xC4/0x120. A poll needs
/// IRQL <= `DISPATCH_LEVEL`.
pub fn check_wait_irql(e: &Entry, level: u8, timeout: Timeout, object: usize, timeout_ptr: u64) {
    let blocking = timeout != Timeout::Poll;
    if blocking && e.in_dpc.get() {
        e.bugcheck(
            code::ATTEMPTED_SWITCH_FROM_DPC,
            [0, object as u64, 0, 0],
            format!("{} with a nonzero timeout inside a DPC routine", e.ddi),
        );
    }
    if level > irql::DISPATCH {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::WAIT_ABOVE_DISPATCH,
                u64::from(level),
                object as u64,
                timeout_ptr,
            ],
            format!("{} at IRQL {level}", e.ddi),
        );
    }
    if level == irql::DISPATCH && blocking {
        let (sub, what) = if timeout == Timeout::Infinite {
            (verifier::WAIT_AT_DISPATCH_INFINITE, "no timeout")
        } else {
            (verifier::WAIT_AT_DISPATCH, "a nonzero timeout")
        };
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [sub, u64::from(level), object as u64, timeout_ptr],
            format!("{} at DISPATCH_LEVEL with {what}", e.ddi),
        );
    }
}

/// Whether `e` runs in a KMDF queue callback that KMDF may call at `DISPATCH_LEVEL` and
/// `MachineConfig::dispatch_level_callback_checks` asks to judge it so.
#[must_use]
pub fn judged_at_dispatch(e: &Entry) -> bool {
    e.may_run_at_dispatch.get() && e.machine.config.dispatch_level_callback_checks
}

/// Judges a blocking wait in a queue callback KMDF may call at `DISPATCH_LEVEL`.
///
/// With `MachineConfig::dispatch_level_callback_checks` the wait is what it would be there
/// (ddi.md 13.4): 0xC4/0x121 with no timeout, 0xC4/0x3B with a nonzero one; P2 = 2, P3 the
/// object, P4 the timeout pointer (ntsim convention: the callback actually runs at the
/// caller's IRQL).
pub fn check_callback_wait(e: &Entry, timeout: Timeout, object: usize, timeout_ptr: u64) {
    if timeout == Timeout::Poll || !judged_at_dispatch(e) {
        return;
    }
    let (sub, what) = if timeout == Timeout::Infinite {
        (verifier::WAIT_AT_DISPATCH_INFINITE, "no timeout")
    } else {
        (verifier::WAIT_AT_DISPATCH, "a nonzero timeout")
    };
    e.bugcheck(
        code::DRIVER_VERIFIER_DETECTED_VIOLATION,
        [sub, u64::from(irql::DISPATCH), object as u64, timeout_ptr],
        format!(
            "{} with {what} in a KMDF queue callback whose execution level is not \
             WdfExecutionLevelPassive: KMDF may call it at DISPATCH_LEVEL, where the wait is \
             invalid (MachineConfig::dispatch_level_callback_checks)",
            e.ddi
        ),
    );
}

/// The DDIs that may follow a `Wait = TRUE` set/release call (errata 2).
const FOLLOW_UP_WAITS: [&str; 2] = ["KeWaitForSingleObject", "KeWaitForMultipleObjects"];

/// Whether `ddi` may be called while a `Wait = TRUE` call awaits its follow-up wait.
#[must_use]
pub fn is_follow_up_wait(ddi: &str) -> bool {
    FOLLOW_UP_WAITS.contains(&ddi)
}

/// Bugchecks 0xC4/0xE5 when a `Wait = TRUE` set/release call is not followed by a wait.
///
/// ddi.md 13.2 rule 3 (*emulator convention*): `what` is the DDI called instead, or the exit
/// path that ended the context. P2 is the current IRQL, P3 the object of the `Wait = TRUE` call,
/// P4 the IRQL it saved.
pub fn missing_follow_up_wait(ctx: &Ctx, pending: PendingWait, what: &'static str) -> ! {
    context::raise(
        ctx,
        code::DRIVER_VERIFIER_DETECTED_VIOLATION,
        [
            verifier::API_AT_WRONG_IRQL,
            u64::from(ctx.irql.get()),
            pending.object as u64,
            u64::from(pending.saved_irql),
        ],
        what,
        format!(
            "{}(Wait = TRUE) on {:#x} returned at DISPATCH_LEVEL; the next call must be \
             KeWaitForSingleObject or KeWaitForMultipleObjects, not {what}",
            pending.by, pending.object
        ),
    )
}

/// Enters the `Wait = TRUE` state after a set/release call (errata 2): the thread is left at
/// `DISPATCH_LEVEL` with its previous IRQL saved for the wait that must follow.
pub(crate) fn leave_raised_for_wait(e: &Entry, object: usize) {
    let saved = e.irql.get();
    e.set_irql(irql::DISPATCH);
    e.wait_next.set(Some(PendingWait {
        saved_irql: saved,
        object,
        by: e.ddi,
    }));
}

/// Ends the `Wait = TRUE` state at the start of a wait: returns the IRQL the wait is judged at
/// (the saved one, errata 2) and whether it must be restored before waiting.
fn take_pending(e: &Entry) -> (u8, Option<u8>) {
    e.wait_next.take().map_or_else(
        || (e.irql.get(), None),
        |pending| (pending.saved_irql, Some(pending.saved_irql)),
    )
}

/// Checks that `object` is something ntsim can wait on; anything else is the access violation a
/// wait on garbage would take.
fn check_object(e: &Entry, object: PVOID) -> usize {
    let addr = object as usize;
    let valid = addr != 0
        && addr.is_multiple_of(8)
        // SAFETY: non-null and 8-byte aligned (checked just before); the DDI contract makes a
        // non-null `Object` a resident dispatcher object.
        && object_type::is_waitable(unsafe { dispatcher::load_type(addr) });
    if !valid {
        exception::raise_status(
            e,
            STATUS_ACCESS_VIOLATION,
            addr,
            format!("{} on {object:p}, which is not a dispatcher object", e.ddi),
        );
    }
    addr
}

thread_local! {
    /// The condition variable this host thread sleeps on while it waits.
    static WAKE: Arc<Condvar> = Arc::new(Condvar::new());
}

/// Applies the waiter's part of a satisfied wait: normal kernel APCs disabled once per mutex it
/// came to own, and the exception a mutex recursion past `MINLONG` raises.
fn finish(e: &Entry, outcome: Outcome) -> NTSTATUS {
    let disable = e.kernel_apc_disable.get();
    e.kernel_apc_disable
        .set(disable.wrapping_sub(outcome.mutexes_acquired));
    if let Some((status, object)) = outcome.exception {
        exception::raise_status(
            e,
            status,
            object,
            format!("{} on mutex {object:#x}: recursion past MINLONG", e.ddi),
        );
    }
    outcome.status
}

/// The wait proper: satisfies it at once if it can, polls, or blocks until a signaler satisfies
/// it or `timeout` passes. `objects` were checked by [`check_object`].
fn wait(e: &Entry, objects: &[usize], wait_all: bool, timeout: Timeout) -> NTSTATUS {
    // Deadlock detection covers dispatcher mutexes: checked before the dispatcher lock is taken.
    for &object in objects {
        // SAFETY: `check_object` verified a live, aligned dispatcher object; byte 0 is its type.
        let kind = unsafe { (object as *const u8).read_volatile() };
        if kind == dispatcher::object_type::MUTANT {
            e.machine.lock_order.acquire(e, object);
        }
    }
    let claimant = Claimant::of(e);
    let machine = &e.machine;
    let mut locked = machine.dispatcher.lock();
    // SAFETY: every object was checked to be a live (DDI contract), aligned, waitable object.
    let now = unsafe { locked.try_satisfy_now(objects, wait_all, claimant) };
    if let Some(outcome) = now {
        drop(locked);
        return finish(e, outcome);
    }
    if timeout == Timeout::Poll {
        return wdk_sys::STATUS_TIMEOUT;
    }
    let deadline = timeout.deadline();
    let wake = WAKE.with(Arc::clone);
    let id = locked.register(objects, wait_all, claimant, Arc::clone(&wake));
    loop {
        // Checked under the lock right before sleeping: `die` sets the flag before it takes the
        // lock to wake every waiter, so either this sees it or that wake-up reaches this sleep.
        if machine.is_dead() || machine.is_shutting_down() {
            drop(locked);
            context::halt();
        }
        let (again, expired) = dispatcher::sleep(locked, &wake, deadline);
        locked = again;
        if let Some(outcome) = locked.take_outcome(id) {
            drop(locked);
            return finish(e, outcome);
        }
        if expired {
            let late = locked.cancel(id);
            drop(locked);
            return late.map_or(wdk_sys::STATUS_TIMEOUT, |outcome| finish(e, outcome));
        }
    }
}

export! {
    /// Waits for one dispatcher object (event, mutex, semaphore, timer, thread):
    /// `STATUS_SUCCESS` when it is (or becomes) signaled, with the side effect of the satisfied
    /// wait (a synchronization event or timer resets, a semaphore count drops, a mutex is
    /// owned); `STATUS_TIMEOUT` when `Timeout` passes first (NULL: forever; 0: poll; negative:
    /// relative, 100 ns; positive: absolute system time). IRQL: a poll at <= `DISPATCH_LEVEL`,
    /// a blocking wait at <= `APC_LEVEL` outside DPCs (ddi.md 8.6); after a `Wait = TRUE` call,
    /// the saved IRQL is the one judged and restored (errata 2).
    fn KeWaitForSingleObject(
        Object: PVOID,
        WaitReason: KWAIT_REASON,
        WaitMode: KPROCESSOR_MODE,
        Alertable: BOOLEAN,
        Timeout: PLARGE_INTEGER,
    ) -> NTSTATUS {
        let e = enter("KeWaitForSingleObject");
        let _ = (WaitReason, WaitMode, Alertable);
        let (level, restore) = take_pending(&e);
        // SAFETY: the DDI contract makes `Timeout` null or a readable LARGE_INTEGER.
        let timeout = unsafe { self::Timeout::decode(Timeout) };
        check_wait_irql(&e, level, timeout, Object as usize, Timeout as u64);
        check_callback_wait(&e, timeout, Object as usize, Timeout as u64);
        let object = check_object(&e, Object);
        if let Some(saved) = restore {
            e.set_irql(saved);
        }
        wait(&e, &[object], false, timeout)
    }
}

export! {
    /// Waits for any (`WaitAny`: `STATUS_WAIT_0 + i`, the lowest signaled index) or all
    /// (`WaitAll`: `STATUS_SUCCESS`, every object taken atomically or none) of `Count` objects,
    /// or `STATUS_TIMEOUT`. `Count > MAXIMUM_WAIT_OBJECTS` (64), or `Count >
    /// THREAD_WAIT_OBJECTS` (3) with a NULL `WaitBlockArray`, is bug check 0xC (P1 `Count`,
    /// P2 `WaitBlockArray`: *ntsim convention*, the page lists no parameters). A `WaitType`
    /// other than `WaitAll`/`WaitAny` returns `STATUS_INVALID_PARAMETER` (ntsim convention).
    /// IRQL and timeouts as `KeWaitForSingleObject`.
    fn KeWaitForMultipleObjects(
        Count: ULONG,
        Object: *mut PVOID,
        WaitType: WAIT_TYPE,
        WaitReason: KWAIT_REASON,
        WaitMode: KPROCESSOR_MODE,
        Alertable: BOOLEAN,
        Timeout: PLARGE_INTEGER,
        WaitBlockArray: PKWAIT_BLOCK,
    ) -> NTSTATUS {
        let e = enter("KeWaitForMultipleObjects");
        let _ = (WaitReason, WaitMode, Alertable);
        if Count > MAXIMUM_WAIT_OBJECTS || (Count > THREAD_WAIT_OBJECTS && WaitBlockArray.is_null()) {
            let why = if Count > MAXIMUM_WAIT_OBJECTS {
                "more than MAXIMUM_WAIT_OBJECTS (64)"
            } else {
                "more than THREAD_WAIT_OBJECTS (3) and no WaitBlockArray"
            };
            e.bugcheck(
                code::MAXIMUM_WAIT_OBJECTS_EXCEEDED,
                [u64::from(Count), WaitBlockArray as u64, 0, 0],
                format!("KeWaitForMultipleObjects with Count {Count}: {why}"),
            );
        }
        let (level, restore) = take_pending(&e);
        // SAFETY: the DDI contract makes `Timeout` null or a readable LARGE_INTEGER.
        let timeout = unsafe { self::Timeout::decode(Timeout) };
        check_wait_irql(&e, level, timeout, Object as usize, Timeout as u64);
        check_callback_wait(&e, timeout, Object as usize, Timeout as u64);
        let wait_all = match WaitType {
            _WAIT_TYPE::WaitAll => true,
            _WAIT_TYPE::WaitAny => false,
            _ => return wdk_sys::STATUS_INVALID_PARAMETER,
        };
        let mut objects = Vec::with_capacity(Count as usize);
        if Count > 0 && Object.is_null() {
            exception::raise_status(
                &e,
                STATUS_ACCESS_VIOLATION,
                0,
                "KeWaitForMultipleObjects with a NULL Object array",
            );
        }
        for i in 0..Count as usize {
            // SAFETY: the DDI contract makes `Object` an array of `Count` readable pointers
            // (non-null, checked above).
            let object = unsafe { Object.wrapping_add(i).read() };
            objects.push(check_object(&e, object));
        }
        if let Some(saved) = restore {
            e.set_irql(saved);
        }
        wait(&e, &objects, wait_all, timeout)
    }
}

export! {
    /// Sleeps for `Interval` (negative: relative, 100 ns; positive: absolute). IRQL <=
    /// `APC_LEVEL` (DDI rule `IrqlKeApcLte1`), never in a DPC.
    fn KeDelayExecutionThread(
        WaitMode: KPROCESSOR_MODE,
        Alertable: BOOLEAN,
        Interval: PLARGE_INTEGER,
    ) -> NTSTATUS {
        let e = enter("KeDelayExecutionThread");
        let _ = (WaitMode, Alertable);
        if e.in_dpc.get() {
            e.bugcheck(code::ATTEMPTED_SWITCH_FROM_DPC, [0; 4], "KeDelayExecutionThread in a DPC");
        }
        let level = e.irql.get();
        if level > irql::APC {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [0x0002_000F, u64::from(level), 0, 0],
                format!("KeDelayExecutionThread at IRQL {level}: requires <= APC_LEVEL"),
            );
        }
        // SAFETY: the DDI contract makes `Interval` a readable LARGE_INTEGER.
        let until = match unsafe { self::Timeout::decode(Interval) } {
            self::Timeout::Until(t) => t,
            self::Timeout::Poll | self::Timeout::Infinite => Instant::now(),
        };
        if until > Instant::now() && judged_at_dispatch(&e) {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [0x0002_000F, u64::from(irql::DISPATCH), 0, 0],
                "KeDelayExecutionThread with a nonzero interval in a KMDF queue callback whose \
                 execution level is not WdfExecutionLevelPassive: KMDF may call it at \
                 DISPATCH_LEVEL (MachineConfig::dispatch_level_callback_checks)",
            );
        }
        loop {
            let now = Instant::now();
            if now >= until {
                return wdk_sys::STATUS_SUCCESS;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(20)));
            e.check_alive();
        }
    }
}

/// Checks a dispatcher object pointer passed to an object DDI: null or not 8-byte aligned is
/// 0xC4/0xE1 (a synchronization object at an invalid address). Returns the address.
pub(crate) fn check_header(e: &Entry, object: *mut impl Sized) -> usize {
    let addr = object as usize;
    if addr == 0 || !addr.is_multiple_of(8) {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::INVALID_SYNC_OBJECT_ADDRESS, addr as u64, 0, 0],
            format!("{} on an invalid or misaligned object {addr:#x}", e.ddi),
        );
    }
    addr
}

/// Bugchecks 0xC4/`rule` (P2 IRQL, P3 object) unless the caller is at or below `max`.
pub(crate) fn require_irql_at_most(e: &Entry, max: u8, rule: u64, object: usize) {
    let level = e.irql.get();
    if level > max {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [rule, u64::from(level), object as u64, 0],
            format!("{} at IRQL {level}: requires IRQL <= {max}", e.ddi),
        );
    }
}

/// The IRQL rule of a set/release routine's `Wait` argument (ddi.md 8.1): `Wait == FALSE` needs
/// IRQL <= `DISPATCH_LEVEL` (0xC4/`above_dispatch`), `Wait == TRUE` needs IRQL <= `wait_max`
/// (0xC4/`wait_rule`).
pub(crate) fn check_set_irql(
    e: &Entry,
    wait: BOOLEAN,
    object: usize,
    above_dispatch: u64,
    wait_max: u8,
    wait_rule: u64,
) {
    require_irql_at_most(e, irql::DISPATCH, above_dispatch, object);
    if wait != 0 {
        let level = e.irql.get();
        if level > wait_max {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [wait_rule, u64::from(level), object as u64, 1],
                format!(
                    "{}(Wait = TRUE) at IRQL {level}: requires IRQL <= {wait_max} (P4 = 1: Wait)",
                    e.ddi
                ),
            );
        }
    }
}
