//! KMDF wait locks: `WdfWaitLockCreate`, `WdfWaitLockAcquire`, `WdfWaitLockRelease`.
//!
//! KMDF builds a wait lock from a synchronization event and an owner field; the acquire enters a
//! critical region (`KeEnterCriticalRegion`) before it waits and stays in it while the lock is
//! held, the release leaves it, and a timed-out acquire leaves it again. ntsim does the same with
//! the context's `KernelApcDisable` (so a callback returning with the lock held is 0x10D/0xF,
//! and a thread ending with it held is 0x20), and blocks on the dispatcher like every other
//! wait. The lock is not one Driver Verifier's deadlock detection knows (it is an event), so it
//! is not in the context's list of held locks.
//!
//! Verdicts: a `NULL`-timeout acquire by the owner is 0x10D/0x2 (the recursion KMDF's verifier
//! reports; a timed acquire by the owner simply times out, as KMDF allows); a release by a thread
//! that does not hold the lock is 0x10D/0xB (P3 = 1, ntsim extends the WDF spin lock's verdict;
//! KMDF itself only asserts); a blocking acquire above `PASSIVE_LEVEL`, a zero-timeout acquire
//! above `DISPATCH_LEVEL` and create/release above `DISPATCH_LEVEL` are the generic 0xC4/0xE5 of
//! ddi.md 13.2 (KMDF's own IRQL check returns `STATUS_INVALID_DEVICE_REQUEST` and breaks into the
//! debugger).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use wdk_sys::{NTSTATUS, PLONGLONG, PWDF_OBJECT_ATTRIBUTES, WDFWAITLOCK};

use super::{apply_attributes, Kind};
use crate::{
    bugcheck::{code, verifier, wdf as sub},
    context::{self, enter, irql, Entry},
    ddi::wait::system_time,
};

/// Bits of the lock word holding the owner's context uid (0 = free).
const OWNER_MASK: u64 = (1 << 48) - 1;
/// One context sleeping for the lock.
const SLEEPER_ONE: u64 = 1 << 48;

/// The state of one wait lock.
#[derive(Debug, Default)]
pub(crate) struct WaitLock {
    /// Owner uid in the low 48 bits, sleepers above.
    word: AtomicU64,
}

/// A decoded `Timeout`: `None` waits forever, `Some(None)` only tries, `Some(Some(t))` waits
/// until `t`.
type Deadline = Option<Option<Instant>>;

/// Decodes a KMDF timeout (`NULL` forever; 0 try; negative relative, positive absolute, 100 ns).
///
/// # Safety
/// `timeout` must be null or point to a readable `LONGLONG`.
unsafe fn decode(timeout: PLONGLONG) -> Deadline {
    // SAFETY: forwarded caller guarantee.
    let ticks = unsafe { timeout.as_ref() }.copied()?;
    Some(match ticks {
        0 => None,
        t if t < 0 => Some(Instant::now() + Duration::from_nanos(t.unsigned_abs() * 100)),
        t => {
            let ahead = t.saturating_sub(system_time()).max(0);
            Some(Instant::now() + Duration::from_nanos(ahead.unsigned_abs() * 100))
        }
    })
}

/// The lock behind `handle`, or 0x10D/0x4 when it is not a live wait lock.
fn lookup(e: &Entry, handle: WDFWAITLOCK) -> Arc<WaitLock> {
    let table = e.machine.io.objects.lock();
    if let Some(Kind::WaitLock(lock)) = table.map.get(&(handle as usize)).map(|o| &o.kind) {
        return Arc::clone(lock);
    }
    drop(table);
    e.bugcheck(
        code::WDF_VIOLATION,
        [sub::INVALID_HANDLE, handle as u64, 0, 0],
        format!("{} with {handle:p}, which is not a live WDFWAITLOCK", e.ddi),
    )
}

/// 0xC4/0xE5 (P2 IRQL, P3 lock handle) when the caller is above `max`.
fn require_irql(e: &Entry, handle: WDFWAITLOCK, max: u8, why: &str) {
    let level = e.irql.get();
    if level > max {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(level),
                handle as u64,
                0,
            ],
            format!("{} at IRQL {level}: {why}", e.ddi),
        );
    }
}

/// Takes the word when free; true when it is now the caller's.
fn try_take(word: &AtomicU64, me: u64, registered: u64) -> bool {
    let mut current = word.load(Ordering::Relaxed);
    while current & OWNER_MASK == 0 {
        match word.compare_exchange_weak(
            current,
            (current | me) - registered,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
    false
}

/// Sleeps on the dispatcher until the lock is the caller's (true) or `deadline` passes (false).
fn sleep_for(e: &Entry, word: &AtomicU64, me: u64, deadline: Option<Instant>) -> bool {
    let dispatcher = &e.machine.dispatcher;
    let mut locked = dispatcher.lock();
    // Registered under the dispatcher lock: a release after this signals under the same lock.
    word.fetch_add(SLEEPER_ONE, Ordering::Relaxed);
    loop {
        if try_take(word, me, SLEEPER_ONE) {
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            word.fetch_sub(SLEEPER_ONE, Ordering::Relaxed);
            return false;
        }
        let (again, _) = dispatcher.sleep(locked, deadline);
        if e.machine.is_dead() || e.machine.is_shutting_down() {
            drop(again);
            context::halt();
        }
        locked = again;
    }
}

wdf_export! {
    /// Creates a wait lock (free). IRQL <= `DISPATCH_LEVEL`.
    fn WdfWaitLockCreate as PFN_WDFWAITLOCKCREATE(
        LockAttributes: PWDF_OBJECT_ATTRIBUTES,
        Lock: *mut WDFWAITLOCK,
    ) -> NTSTATUS {
        let e = enter("WdfWaitLockCreate");
        require_irql(&e, std::ptr::null_mut(), irql::DISPATCH, "requires <= DISPATCH_LEVEL");
        if Lock.is_null() {
            return wdk_sys::STATUS_INVALID_PARAMETER;
        }
        let handle = e
            .machine
            .io
            .objects
            .lock()
            .insert(Kind::WaitLock(Arc::new(WaitLock::default())));
        let status = apply_attributes(&e, handle, LockAttributes);
        if !wdk_sys::NT_SUCCESS(status) {
            e.machine.io.objects.lock().map.remove(&handle);
            return status;
        }
        // SAFETY: the KMDF contract makes Lock a writable WDFWAITLOCK (checked non-null above).
        unsafe { Lock.write(handle as WDFWAITLOCK) };
        wdk_sys::STATUS_SUCCESS
    }
}

wdf_export! {
    /// Acquires a wait lock: enters a critical region, then waits. `Timeout` NULL waits forever
    /// (`STATUS_SUCCESS`); otherwise 100-ns units (negative relative, positive absolute, 0 just
    /// tries) and `STATUS_TIMEOUT` when it passes (the critical region is left again). A blocking
    /// acquire needs `PASSIVE_LEVEL`; a zero timeout allows up to `DISPATCH_LEVEL` (else
    /// 0xC4/0xE5). A NULL-timeout acquire by the owner is 0x10D/0x2.
    fn WdfWaitLockAcquire as PFN_WDFWAITLOCKACQUIRE(
        Lock: WDFWAITLOCK,
        Timeout: PLONGLONG,
    ) -> NTSTATUS {
        let e = enter("WdfWaitLockAcquire");
        // SAFETY: the KMDF contract makes Timeout null or a readable LONGLONG.
        let deadline = unsafe { decode(Timeout) };
        if deadline == Some(None) {
            require_irql(&e, Lock, irql::DISPATCH, "a zero-timeout acquire requires <= DISPATCH_LEVEL");
        } else {
            require_irql(&e, Lock, irql::PASSIVE, "a blocking acquire requires PASSIVE_LEVEL");
        }
        let lock = lookup(&e, Lock);
        let me = e.uid & OWNER_MASK;
        if deadline.is_none() && lock.word.load(Ordering::Relaxed) & OWNER_MASK == me {
            e.bugcheck(
                code::WDF_VIOLATION,
                [sub::RECURSIVE_LOCK, Lock as u64, 0, 0],
                format!("WdfWaitLockAcquire of wait lock {Lock:p}, which this thread already holds"),
            );
        }
        e.kernel_apc_disable.set(e.kernel_apc_disable.get() - 1);
        let acquired = try_take(&lock.word, me, 0)
            || match deadline {
                Some(None) => false,
                None => sleep_for(&e, &lock.word, me, None),
                Some(until) => sleep_for(&e, &lock.word, me, until),
            };
        if acquired {
            wdk_sys::STATUS_SUCCESS
        } else {
            e.kernel_apc_disable.set(e.kernel_apc_disable.get() + 1);
            wdk_sys::STATUS_TIMEOUT
        }
    }
}

wdf_export! {
    /// Releases a wait lock the caller holds and leaves the critical region its acquire entered.
    /// IRQL <= `DISPATCH_LEVEL` (else 0xC4/0xE5); a lock the caller does not hold is 0x10D/0xB.
    fn WdfWaitLockRelease as PFN_WDFWAITLOCKRELEASE(Lock: WDFWAITLOCK) {
        let e = enter("WdfWaitLockRelease");
        require_irql(&e, Lock, irql::DISPATCH, "requires <= DISPATCH_LEVEL");
        let lock = lookup(&e, Lock);
        let me = e.uid & OWNER_MASK;
        let owner = lock.word.load(Ordering::Relaxed) & OWNER_MASK;
        if owner != me {
            let holder = if owner == 0 {
                "nobody".to_owned()
            } else {
                e.machine.context_name(owner).unwrap_or_else(|| format!("context {owner}"))
            };
            e.bugcheck(
                code::WDF_VIOLATION,
                [sub::INVALID_LOCK_OPERATION, Lock as u64, 1, 0],
                format!("WdfWaitLockRelease of wait lock {Lock:p}, which is held by {holder}, not the caller"),
            );
        }
        e.kernel_apc_disable.set(e.kernel_apc_disable.get() + 1);
        let before = lock.word.fetch_and(!OWNER_MASK, Ordering::Release);
        if before >= SLEEPER_ONE {
            let locked = e.machine.dispatcher.lock();
            e.machine.dispatcher.signal(&locked);
        }
    }
}

/// Host-side inspection: the number of contexts asleep waiting for the wait lock `handle`.
///
/// For tests and tools, not a KMDF method. `None` when `handle` is not a live wait lock, or when
/// the caller is not an emulated context (it must run on one of the lock's machine).
#[must_use]
pub fn sleeping_waiters(handle: WDFWAITLOCK) -> Option<u32> {
    let ctx = context::try_current()?;
    let table = ctx.machine.io.objects.lock();
    match table.map.get(&(handle as usize)).map(|o| &o.kind) {
        Some(Kind::WaitLock(lock)) => {
            u32::try_from(lock.word.load(Ordering::Relaxed) / SLEEPER_ONE).ok()
        }
        _ => None,
    }
}
