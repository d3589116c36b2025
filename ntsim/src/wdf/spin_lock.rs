//! Framework spin locks: `WdfSpinLockCreate`, `WdfSpinLockAcquire`, `WdfSpinLockRelease`.
//!
//! A `WDFSPINLOCK` wraps a spin lock (here a word owned by the acquiring context's uid, spun on
//! like a `KSPIN_LOCK`) and the IRQL its acquire saved, which the release restores. With the
//! framework verifier on (ntsim always is), acquiring a lock the caller already holds is
//! 0x10D/0x2 and releasing a lock the caller did not acquire is 0x10D/0xB with P3 = 1 (ddi.md
//! 12.3). A hold still in place when a KMDF callback returns shows up as the callback's IRQL
//! change (0x10D/0xE); at system thread exit as 0xC4/0x100A.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};

use wdk_sys::{NTSTATUS, PWDF_OBJECT_ATTRIBUTES, WDFSPINLOCK};

use super::{apply_attributes, Kind};
use crate::{
    bugcheck::{code, wdf as sub},
    context::{enter, irql, Entry, LockFamily},
    ddi::spin_lock,
    processor::spin_wait,
};

/// The state behind a `WDFSPINLOCK`.
#[derive(Default)]
pub(crate) struct SpinLockObject {
    /// uid of the holding context; 0 when free.
    owner: AtomicU64,
}

/// The lock object behind `handle` (0x10D/0x4 unless it is a live `WDFSPINLOCK`).
fn object(e: &Entry, handle: WDFSPINLOCK) -> Arc<SpinLockObject> {
    let found = e
        .machine
        .io
        .objects
        .lock()
        .map
        .get(&(handle as usize))
        .and_then(|o| match &o.kind {
            Kind::SpinLock(lock) => Some(Arc::clone(lock)),
            _ => None,
        });
    found.unwrap_or_else(|| {
        e.bugcheck(
            code::WDF_VIOLATION,
            [sub::INVALID_HANDLE, handle as u64, 0, 0],
            format!("{} with {handle:p}, which is not a live WDFSPINLOCK", e.ddi),
        )
    })
}

fn describe(e: &Entry, handle: WDFSPINLOCK, owner: u64) -> String {
    let name = e
        .machine
        .context_name(owner)
        .unwrap_or_else(|| format!("context {owner}"));
    format!("WDFSPINLOCK {handle:p}, held by {name}")
}

wdf_export! {
    /// Creates a framework spin lock (parent and context from `SpinLockAttributes`, optional).
    /// IRQL <= `DISPATCH_LEVEL` (above: `STATUS_INVALID_DEVICE_REQUEST`, as the framework
    /// verifier answers). A NULL `SpinLock` is 0x10D/0x4.
    fn WdfSpinLockCreate as PFN_WDFSPINLOCKCREATE(
        SpinLockAttributes: PWDF_OBJECT_ATTRIBUTES,
        SpinLock: *mut WDFSPINLOCK,
    ) -> NTSTATUS {
        let e = enter("WdfSpinLockCreate");
        if SpinLock.is_null() {
            e.bugcheck(
                code::WDF_VIOLATION,
                [sub::REQUIRED_PARAMETER_IS_NULL, 0, 0, 0],
                "WdfSpinLockCreate with a NULL SpinLock pointer",
            );
        }
        if e.irql.get() > irql::DISPATCH {
            return wdk_sys::STATUS_INVALID_DEVICE_REQUEST;
        }
        let handle = e
            .machine
            .io
            .objects
            .lock()
            .insert(Kind::SpinLock(Arc::new(SpinLockObject::default())));
        let status = apply_attributes(&e, handle, SpinLockAttributes);
        if !wdk_sys::NT_SUCCESS(status) {
            e.machine.io.objects.lock().map.remove(&handle);
            return status;
        }
        // SAFETY: `SpinLock` is non-null (checked above) and, by the KMDF contract, writable.
        unsafe { SpinLock.write(handle as WDFSPINLOCK) };
        wdk_sys::STATUS_SUCCESS
    }
}

wdf_export! {
    /// Raises to `DISPATCH_LEVEL` and acquires the lock, saving the previous IRQL in the lock
    /// object. IRQL <= `DISPATCH_LEVEL` (above: 0xC4/0x42). Acquiring a lock the caller holds is
    /// 0x10D/0x2 (P2 the handle).
    fn WdfSpinLockAcquire as PFN_WDFSPINLOCKACQUIRE(SpinLock: WDFSPINLOCK) {
        let e = enter("WdfSpinLockAcquire");
        let lock = object(&e, SpinLock);
        let old = spin_lock::require_at_most_dispatch(&e, SpinLock as u64);
        if lock.owner.load(Ordering::Relaxed) == e.uid {
            e.bugcheck(
                code::WDF_VIOLATION,
                [sub::RECURSIVE_LOCK, SpinLock as u64, 0, 0],
                format!("WdfSpinLockAcquire of {SpinLock:p}, which this context already holds"),
            );
        }
        e.set_irql(irql::DISPATCH);
        let began = Instant::now();
        let mut spins = 0;
        while lock
            .owner
            .compare_exchange_weak(0, e.uid, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spin_wait(&e, &mut spins, began, SpinLock as u64, || {
                describe(&e, SpinLock, lock.owner.load(Ordering::Relaxed))
            });
        }
        spin_lock::hold(&e, SpinLock as usize, LockFamily::WdfSpinLock, Some(old));
    }
}

wdf_export! {
    /// Releases the lock and restores the IRQL its acquire saved. Releasing a lock the caller did
    /// not acquire is 0x10D/0xB with P3 = 1; otherwise at exactly `DISPATCH_LEVEL` (else
    /// 0xC4/0x32).
    fn WdfSpinLockRelease as PFN_WDFSPINLOCKRELEASE(SpinLock: WDFSPINLOCK) {
        let e = enter("WdfSpinLockRelease");
        let lock = object(&e, SpinLock);
        let owner = lock.owner.load(Ordering::Relaxed);
        let hold = if owner == e.uid {
            spin_lock::require_dispatch_for_release(&e, SpinLock as u64);
            spin_lock::release_hold(&e, SpinLock as usize, LockFamily::WdfSpinLock, 0)
        } else {
            None
        };
        let Some(hold) = hold else {
            let by = if owner == 0 {
                "it is not held".to_owned()
            } else {
                describe(&e, SpinLock, owner)
            };
            e.bugcheck(
                code::WDF_VIOLATION,
                [sub::INVALID_LOCK_OPERATION, SpinLock as u64, 1, 0],
                format!(
                    "WdfSpinLockRelease of {SpinLock:p} by a context that did not acquire it ({by})"
                ),
            );
        };
        lock.owner.store(0, Ordering::Release);
        e.set_irql(hold.saved_irql.unwrap_or(irql::DISPATCH));
    }
}
