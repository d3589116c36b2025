//! Semaphore objects (ddi.md 8.4, 13.4): `KeInitializeSemaphore`, `KeReleaseSemaphore`,
//! `KeReadStateSemaphore`.
//!
//! The state is the driver's `KSEMAPHORE`: `SignalState` is the count, `Limit` (offset 24) its
//! maximum. Each satisfied wait takes one from the count; a release that would pass the limit
//! raises `STATUS_SEMAPHORE_LIMIT_EXCEEDED` and leaves the count unchanged.

use wdk_sys::{BOOLEAN, KPRIORITY, LONG, PRKSEMAPHORE};

use crate::{
    bugcheck::verifier,
    context::{enter, irql},
    ddi::wait::{check_header, check_set_irql, leave_raised_for_wait, require_irql_at_most},
    dispatcher::{self, object_type},
    exception,
};

/// `sizeof(KSEMAPHORE) / 4`, the header's `Size` byte.
const SEMAPHORE_SIZE_IN_LONGS: u8 = 8;
/// Offset of `KSEMAPHORE.Limit`.
const LIMIT_OFFSET: usize = 24;

export! {
    /// Initialises a semaphore with count `Count` (nonzero: signaled) and maximum `Limit`.
    /// `PASSIVE_LEVEL`: the docs' value, stricter than the header's <= `DISPATCH_LEVEL` (ddi.md
    /// 14; not in rule `IrqlKeDispatchLte`, errata 10), so 0xC4/0xE5 above it.
    fn KeInitializeSemaphore(Semaphore: PRKSEMAPHORE, Count: LONG, Limit: LONG) {
        let e = enter("KeInitializeSemaphore");
        let semaphore = check_header(&e, Semaphore);
        require_irql_at_most(&e, irql::PASSIVE, verifier::API_AT_WRONG_IRQL, semaphore);
        let bytes = Semaphore.cast::<u8>();
        // SAFETY: `Semaphore` is non-null and aligned (checked) and, per the DDI contract, a
        // writable 32-byte KSEMAPHORE that is not in use.
        unsafe { bytes.write_bytes(0, 32) };
        // SAFETY: as above; the header's Size byte.
        unsafe { bytes.wrapping_add(2).write(SEMAPHORE_SIZE_IN_LONGS) };
        // SAFETY: as above; `Limit` is the LONG at offset 24.
        unsafe { Semaphore.wrapping_byte_add(LIMIT_OFFSET).cast::<LONG>().write(Limit) };
        // SAFETY: as above.
        unsafe { dispatcher::init_wait_list(semaphore) };
        // SAFETY: as above.
        unsafe { dispatcher::store_type(semaphore, object_type::SEMAPHORE) };
        // SAFETY: as above.
        unsafe { dispatcher::store_state(semaphore, Count) };
    }
}

export! {
    /// Adds `Adjustment` to the count and satisfies the waits it can; returns the previous
    /// count (0: it was not signaled). A count that would pass `Limit` (or an adjustment that
    /// would lower it) raises `STATUS_SEMAPHORE_LIMIT_EXCEEDED` with the count unchanged (0x7E,
    /// P1 0xC0000047, in a system thread). IRQL <= `DISPATCH_LEVEL` (DDI rule
    /// `IrqlKeDispatchLte`); with `Wait` TRUE `PASSIVE_LEVEL` (the docs' value, stricter than the
    /// header's, ddi.md 14; 0xC4/0xE5), returning at `DISPATCH_LEVEL` for the wait that must
    /// follow (errata 2).
    fn KeReleaseSemaphore(
        Semaphore: PRKSEMAPHORE,
        Increment: KPRIORITY,
        Adjustment: LONG,
        Wait: BOOLEAN,
    ) -> LONG {
        let e = enter("KeReleaseSemaphore");
        let _ = Increment;
        let semaphore = check_header(&e, Semaphore);
        check_set_irql(
            &e,
            Wait,
            semaphore,
            verifier::RULE_IRQL_KE_DISPATCH_LTE,
            irql::PASSIVE,
            verifier::API_AT_WRONG_IRQL,
        );
        let mut locked = e.machine.dispatcher.lock();
        // SAFETY: checked non-null and aligned; an initialised KSEMAPHORE per the DDI contract.
        let limit = unsafe { Semaphore.wrapping_byte_add(LIMIT_OFFSET).cast::<LONG>().read() };
        // SAFETY: as above; the dispatcher lock is held.
        let previous = unsafe { dispatcher::load_state(semaphore) };
        let next = previous.checked_add(Adjustment).filter(|&n| n <= limit && n >= previous);
        let Some(next) = next else {
            drop(locked);
            exception::raise_status(
                &e,
                wdk_sys::STATUS_SEMAPHORE_LIMIT_EXCEEDED,
                semaphore,
                format!(
                    "KeReleaseSemaphore of {semaphore:#x} by {Adjustment}: count {previous}, \
                     limit {limit}"
                ),
            );
        };
        // SAFETY: as above.
        unsafe { dispatcher::store_state(semaphore, next) };
        if next > previous {
            // SAFETY: as above; the other objects of its waiters are live while they wait.
            unsafe { locked.wait_test(semaphore) };
        }
        drop(locked);
        if Wait != 0 {
            leave_raised_for_wait(&e, semaphore);
        }
        previous
    }
}

export! {
    /// The semaphore's count; 0 means not signaled (an unsynchronised read). IRQL <=
    /// `DISPATCH_LEVEL` (the header's value, stricter than the docs' "any").
    fn KeReadStateSemaphore(Semaphore: PRKSEMAPHORE) -> LONG {
        let e = enter("KeReadStateSemaphore");
        let semaphore = check_header(&e, Semaphore);
        require_irql_at_most(&e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, semaphore);
        // SAFETY: checked non-null and aligned; an initialised KSEMAPHORE per the DDI contract.
        unsafe { dispatcher::load_state(semaphore) }
    }
}
