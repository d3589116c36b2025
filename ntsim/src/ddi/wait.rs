//! Waits (ddi.md 8.6, 10.3): `KeWaitForSingleObject` and `KeDelayExecutionThread`.
//!
//! This module holds the IRQL rules and the timeout forms; the object-specific semantics
//! (which objects are signaled, what a satisfied wait changes) are in [`signal_check`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wdk_sys::{BOOLEAN, KPROCESSOR_MODE, KWAIT_REASON, NTSTATUS, PLARGE_INTEGER, PVOID};

use crate::{
    bugcheck::{code, verifier},
    context::{enter, irql, Entry},
    dispatcher::{self, object_type, Locked},
};

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
        match ticks {
            0 => Self::Poll,
            t if t < 0 => {
                Self::Until(Instant::now() + Duration::from_nanos(t.unsigned_abs() * 100))
            }
            t => {
                let ahead = t.saturating_sub(system_time()).max(0);
                Self::Until(Instant::now() + Duration::from_nanos(ahead.unsigned_abs() * 100))
            }
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

/// The IRQL rules of every wait (ddi.md 13.4): a blocking wait needs IRQL <= `APC_LEVEL` and not
/// a DPC; a poll needs IRQL <= `DISPATCH_LEVEL`.
pub fn check_wait_irql(e: &Entry, timeout: Timeout, object: usize, timeout_ptr: u64) {
    let level = e.irql.get();
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

/// Whether `object` is signaled for this waiter; when it is, applies the side effects of a
/// satisfied wait. Dispatcher lock held.
///
/// # Safety
/// `object` must point to a live dispatcher object.
unsafe fn signal_check(e: &Entry, object: *mut u8, locked: &Locked<'_>) -> bool {
    // SAFETY: forwarded caller guarantee.
    let kind = unsafe { dispatcher::type_of(object) };
    match kind {
        // A thread object stays signaled once its thread has ended: no side effect.
        // SAFETY: forwarded caller guarantee; the lock is held.
        object_type::THREAD => (unsafe { dispatcher::signal_state(object, locked) }) > 0,
        other => e.bugcheck(
            code::KMODE_EXCEPTION_NOT_HANDLED,
            [0xC000_0005, object as u64, u64::from(other), 0],
            format!(
                "{} on {object:p}: not a dispatcher object ntsim knows (type byte {other})",
                e.ddi
            ),
        ),
    }
}

export! {
    /// Waits for one dispatcher object: `STATUS_SUCCESS` when it is (or becomes) signaled,
    /// `STATUS_TIMEOUT` when the timeout passes first. IRQL rules of ddi.md 8.6.
    fn KeWaitForSingleObject(
        Object: PVOID,
        WaitReason: KWAIT_REASON,
        WaitMode: KPROCESSOR_MODE,
        Alertable: BOOLEAN,
        Timeout: PLARGE_INTEGER,
    ) -> NTSTATUS {
        let e = enter("KeWaitForSingleObject");
        let _ = (WaitReason, WaitMode, Alertable);
        // SAFETY: the DDI contract makes `Timeout` null or a readable LARGE_INTEGER.
        let timeout = unsafe { self::Timeout::decode(Timeout) };
        check_wait_irql(&e, timeout, Object as usize, Timeout as u64);
        let deadline = timeout.deadline();
        let dispatcher = &e.machine.dispatcher;
        let mut locked = dispatcher.lock();
        loop {
            // SAFETY: the DDI contract makes `Object` a live dispatcher object.
            if unsafe { signal_check(&e, Object.cast(), &locked) } {
                return wdk_sys::STATUS_SUCCESS;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return wdk_sys::STATUS_TIMEOUT;
            }
            let (again, _) = dispatcher.sleep(locked, deadline);
            locked = again;
            dispatcher::check_alive(&e.machine);
        }
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
