//! Event objects (ddi.md 8.2): `KeInitializeEvent`, `KeSetEvent`, `KeResetEvent`,
//! `KeClearEvent`, `KeReadStateEvent`, `KePulseEvent`.
//!
//! A `KEVENT` is a bare `DISPATCHER_HEADER` in driver memory: type 0 (notification) or 1
//! (synchronization), signal state 0 or 1. A notification event releases every waiter and stays
//! signaled; a synchronization event satisfies exactly one wait and resets (the wait engine,
//! [`crate::dispatcher`], applies that when it satisfies the wait).

use wdk_sys::{BOOLEAN, EVENT_TYPE, KPRIORITY, LONG, PRKEVENT};

use crate::{
    bugcheck::verifier,
    context::{enter, irql},
    ddi::wait::{check_header, check_set_irql, leave_raised_for_wait, require_irql_at_most},
    dispatcher,
};

/// `sizeof(KEVENT) / 4`, the header's `Size` byte.
const EVENT_SIZE_IN_LONGS: u8 = 6;

/// Signals the event under the dispatcher lock and satisfies what waits it can; returns the
/// previous state. With `pulse`, the event is reset afterwards, so it ends not signaled.
fn signal(event: usize, pulse: bool, machine: &crate::machine::MachineInner) -> LONG {
    let mut locked = machine.dispatcher.lock();
    // SAFETY: `event` was checked non-null and aligned; the DDI contract makes it an
    // initialised, resident KEVENT. The dispatcher lock is held.
    let previous = unsafe { dispatcher::load_state(event) };
    if previous == 0 {
        // SAFETY: as above.
        unsafe { dispatcher::store_state(event, 1) };
        // SAFETY: as above; the other objects of its waiters are live while they wait.
        unsafe { locked.wait_test(event) };
    }
    if pulse {
        // SAFETY: as above.
        unsafe { dispatcher::store_state(event, 0) };
    }
    previous
}

export! {
    /// Initialises an event: `Type` `NotificationEvent` (0) or `SynchronizationEvent` (1),
    /// signaled when `State` is TRUE. Any IRQL.
    fn KeInitializeEvent(Event: PRKEVENT, Type: EVENT_TYPE, State: BOOLEAN) {
        let e = enter("KeInitializeEvent");
        let event = check_header(&e, Event);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "the type byte")]
        let kind = Type as u8;
        // SAFETY: `Event` is non-null and aligned (checked) and, per the DDI contract, a
        // writable 24-byte KEVENT that is not in use.
        unsafe { Event.cast::<u8>().wrapping_add(2).write(EVENT_SIZE_IN_LONGS) };
        // SAFETY: as above.
        unsafe { dispatcher::store_type(event, kind) };
        // SAFETY: as above.
        unsafe { dispatcher::store_state(event, i32::from(State != 0)) };
        // SAFETY: as above.
        unsafe { dispatcher::init_wait_list(event) };
    }
}

export! {
    /// Signals the event and returns its previous state (nonzero: it was signaled). A
    /// notification event releases every waiter and stays signaled; a synchronization event
    /// satisfies one wait and resets. IRQL <= `DISPATCH_LEVEL` (above: 0xC4/0x80); with `Wait`
    /// TRUE <= `APC_LEVEL` (DDI rule `IrqlKeSetEvent`, 0xC4/0x20016), and the call returns at
    /// `DISPATCH_LEVEL`: the next call must be a `KeWait…` (errata 2).
    fn KeSetEvent(Event: PRKEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG {
        let e = enter("KeSetEvent");
        let _ = Increment;
        let event = check_header(&e, Event);
        check_set_irql(
            &e,
            Wait,
            event,
            verifier::SET_EVENT_ABOVE_DISPATCH,
            irql::APC,
            verifier::RULE_IRQL_KE_SET_EVENT,
        );
        let previous = signal(event, false, &e.machine);
        if Wait != 0 {
            leave_raised_for_wait(&e, event);
        }
        previous
    }
}

export! {
    /// Atomically signals the event, satisfies every wait it can, and resets it; returns the
    /// previous state. IRQL <= `DISPATCH_LEVEL` (DDI rule `IrqlKeDispatchLte`); with `Wait`
    /// TRUE <= `APC_LEVEL` (0xC4/0xE5), returning at `DISPATCH_LEVEL` for the wait that must
    /// follow (errata 2).
    fn KePulseEvent(Event: PRKEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG {
        let e = enter("KePulseEvent");
        let _ = Increment;
        let event = check_header(&e, Event);
        check_set_irql(
            &e,
            Wait,
            event,
            verifier::RULE_IRQL_KE_DISPATCH_LTE,
            irql::APC,
            verifier::API_AT_WRONG_IRQL,
        );
        let previous = signal(event, true, &e.machine);
        if Wait != 0 {
            leave_raised_for_wait(&e, event);
        }
        previous
    }
}

export! {
    /// Sets the event not signaled; returns its previous state. IRQL <= `DISPATCH_LEVEL`
    /// (DDI rule `IrqlKeDispatchLte`).
    fn KeResetEvent(Event: PRKEVENT) -> LONG {
        let e = enter("KeResetEvent");
        let event = check_header(&e, Event);
        require_irql_at_most(&e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, event);
        let _locked = e.machine.dispatcher.lock();
        // SAFETY: checked non-null and aligned; an initialised KEVENT per the DDI contract; the
        // dispatcher lock is held.
        let previous = unsafe { dispatcher::load_state(event) };
        // SAFETY: as above.
        unsafe { dispatcher::store_state(event, 0) };
        previous
    }
}

export! {
    /// Sets the event not signaled. IRQL <= `DISPATCH_LEVEL` (DDI rule `IrqlKeDispatchLte`).
    fn KeClearEvent(Event: PRKEVENT) {
        let e = enter("KeClearEvent");
        let event = check_header(&e, Event);
        require_irql_at_most(&e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, event);
        let _locked = e.machine.dispatcher.lock();
        // SAFETY: checked non-null and aligned; an initialised KEVENT per the DDI contract; the
        // dispatcher lock is held.
        unsafe { dispatcher::store_state(event, 0) };
    }
}

export! {
    /// The event's state, nonzero when signaled (an unsynchronised read). IRQL <=
    /// `DISPATCH_LEVEL` (DDI rule `IrqlKeDispatchLte`).
    fn KeReadStateEvent(Event: PRKEVENT) -> LONG {
        let e = enter("KeReadStateEvent");
        let event = check_header(&e, Event);
        require_irql_at_most(&e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, event);
        // SAFETY: checked non-null and aligned; an initialised KEVENT per the DDI contract.
        unsafe { dispatcher::load_state(event) }
    }
}
