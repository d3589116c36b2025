//! Kernel mutex objects, `KMUTEX` (ddi.md 8.3, 13.4, errata 4 and 8): `KeInitializeMutex`,
//! `KeReleaseMutex`, `KeReadStateMutex`.
//!
//! A mutex is acquired by waiting on it
//! (`KeWaitForSingleObject`, what `KeWaitForMutexObject` expands to, or
//! `KeWaitForMultipleObjects`).
//!
//! The state is the driver's `KMUTANT`: `SignalState` is 1 when free and `1 - n` when owned `n`
//! times (recursion), `OwnerThread` the owner. Becoming the owner disables normal kernel APCs
//! once (`KernelApcDisable -= 1`); the final release enables them again; recursive acquires
//! change nothing. Only the owner may release, and only in the same DPC-or-not context it
//! acquired in (errata 8); anything else raises `STATUS_MUTANT_NOT_OWNED`. A thread that ends
//! owning a mutex is 0x4000008A (`crate::thread`); a kernel mutex is never abandoned (errata 4).

use wdk_sys::{BOOLEAN, LONG, PRKMUTEX, ULONG};

use crate::{
    bugcheck::verifier,
    context::{enter, irql},
    ddi::wait::{check_header, check_set_irql, leave_raised_for_wait, require_irql_at_most},
    dispatcher::{self, object_type, Claimant},
    exception,
};

/// `sizeof(KMUTANT) / 4`, the header's `Size` byte.
const MUTANT_SIZE_IN_LONGS: u8 = 14;
/// Offset of `KMUTANT.Abandoned`.
const ABANDONED_OFFSET: usize = 48;
/// Offset of `KMUTANT.ApcDisable`.
const APC_DISABLE_OFFSET: usize = 49;

export! {
    /// Initialises a mutex to the free (signaled) state. `Level` is reserved (pass 0). Any IRQL.
    fn KeInitializeMutex(Mutex: PRKMUTEX, Level: ULONG) {
        let e = enter("KeInitializeMutex");
        let _ = Level;
        let mutex = check_header(&e, Mutex);
        let bytes = Mutex.cast::<u8>();
        // SAFETY: `Mutex` is non-null and aligned (checked) and, per the DDI contract, a
        // writable 56-byte KMUTANT that is not in use.
        unsafe { bytes.write_bytes(0, 56) };
        // SAFETY: as above; the header's Size byte.
        unsafe { bytes.wrapping_add(2).write(MUTANT_SIZE_IN_LONGS) };
        // SAFETY: as above.
        unsafe { bytes.wrapping_add(ABANDONED_OFFSET).write(0) };
        // SAFETY: as above; a kernel mutex disables normal kernel APCs while owned.
        unsafe { bytes.wrapping_add(APC_DISABLE_OFFSET).write(1) };
        // SAFETY: as above.
        unsafe { dispatcher::init_wait_list(mutex) };
        let mut locked = e.machine.dispatcher.lock();
        // SAFETY: as above; the dispatcher lock is held.
        unsafe { dispatcher::store_type(mutex, object_type::MUTANT) };
        // SAFETY: as above.
        unsafe { dispatcher::store_state(mutex, 1) };
        locked.forget_mutex(mutex);
    }
}

export! {
    /// Releases one acquisition of a mutex the caller owns; returns the previous signal state
    /// (0: the mutex is now free and signaled). The final release enables normal kernel APCs
    /// again and satisfies the first waiter that can take it. Releasing a mutex the caller does
    /// not own, or from a DPC when it was acquired outside one (or the reverse), raises
    /// `STATUS_MUTANT_NOT_OWNED` (errata 8; 0x7E in a system thread). IRQL <= `DISPATCH_LEVEL`
    /// (DDI rule `IrqlKeDispatchLte`); with `Wait` TRUE <= `APC_LEVEL` (0xC4/0xE5), returning at
    /// `DISPATCH_LEVEL` for the wait that must follow (errata 2).
    fn KeReleaseMutex(Mutex: PRKMUTEX, Wait: BOOLEAN) -> LONG {
        let e = enter("KeReleaseMutex");
        let mutex = check_header(&e, Mutex);
        check_set_irql(
            &e,
            Wait,
            mutex,
            verifier::RULE_IRQL_KE_DISPATCH_LTE,
            irql::APC,
            verifier::API_AT_WRONG_IRQL,
        );
        let claimant = Claimant::of(&e);
        let mut locked = e.machine.dispatcher.lock();
        let owner = locked.mutex_owner(mutex);
        let problem = match owner {
            None => Some("which is not owned".to_owned()),
            Some(o) if o.thread != claimant.thread => Some(format!(
                "which is owned by {}",
                e.machine
                    .context_name(o.uid)
                    .unwrap_or_else(|| format!("thread {:#x}", o.thread))
            )),
            Some(o) if o.in_dpc != claimant.in_dpc => Some(
                if o.in_dpc {
                    "acquired inside a DPC routine, released outside one"
                } else {
                    "acquired outside a DPC routine, released inside one"
                }
                .to_owned(),
            ),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            drop(locked);
            exception::raise_status(
                &e,
                wdk_sys::STATUS_MUTANT_NOT_OWNED,
                mutex,
                format!("KeReleaseMutex of {mutex:#x}, {problem}"),
            );
        }
        // SAFETY: checked non-null and aligned; an initialised KMUTANT per the DDI contract;
        // the dispatcher lock is held.
        let previous = unsafe { dispatcher::load_state(mutex) };
        // SAFETY: as above.
        unsafe { dispatcher::store_state(mutex, previous + 1) };
        if previous == 0 {
            // SAFETY: as above.
            unsafe { dispatcher::store_mutex_owner(mutex, 0) };
            locked.mutex_released(mutex);
            e.kernel_apc_disable.set(e.kernel_apc_disable.get().wrapping_add(1));
            // SAFETY: as above; the other objects of its waiters are live while they wait.
            unsafe { locked.wait_test(mutex) };
        }
        drop(locked);
        if Wait != 0 {
            leave_raised_for_wait(&e, mutex);
        }
        previous
    }
}

export! {
    /// The mutex's signal state: 1 when free (an unsynchronised read). IRQL <=
    /// `DISPATCH_LEVEL` (DDI rule `IrqlKeDispatchLte`).
    fn KeReadStateMutex(Mutex: PRKMUTEX) -> LONG {
        let e = enter("KeReadStateMutex");
        let mutex = check_header(&e, Mutex);
        require_irql_at_most(&e, irql::DISPATCH, verifier::RULE_IRQL_KE_DISPATCH_LTE, mutex);
        // SAFETY: checked non-null and aligned; an initialised KMUTANT per the DDI contract.
        unsafe { dispatcher::load_state(mutex) }
    }
}
