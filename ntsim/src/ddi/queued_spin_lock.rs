//! In-stack queued spin locks (ddi.md section 2): the six `Ke…InStackQueuedSpinLock…` DDIs.
//!
//! The lock is an ordinary `KSPIN_LOCK`; the caller's `KLOCK_QUEUE_HANDLE` is its node in an MCS
//! queue, exactly as on Windows: while the lock is in use the lock word holds the address of the
//! last node (the tail) with bits 1 and 0 set (`QUEUED` and `HELD` of [`super::spin_lock`]); an
//! acquirer swaps itself in as the tail, links itself behind its predecessor
//! (`LockQueue.Next`) and spins on its own node until the predecessor hands the lock over by
//! clearing the wait bit of its `LockQueue.Lock` (the lock address with bit 0 = waiting, bit 1 =
//! owner). So the lock is granted strictly first come, first served (ddi.md 2 rule 4), and each
//! waiter spins on its own node.
//!
//! Which handles are in use is kept per machine ([`QueueHandles`]), so that reusing a handle
//! that is in use (0xC4/0x1008) and releasing with a handle that no acquire filled, or that was
//! filled for another lock (0xC4/0x1009), are detected whoever the handle belongs to (ddi.md 2
//! rule 2, 13.3). A lock held through the ordinary routines and acquired through these (or the
//! reverse) is 0xC4/0x1008 (2 rule 5); a recursive acquire is 0xF; nested queued locks released
//! out of order are 0xC4/0x1003 (2 rule 3).
//!
//! IRQL checks follow the ordinary routines and the Windows verifier's thunks: a raising acquire
//! above `DISPATCH_LEVEL` is 0xC4/0x42; `…AtDpcLevel` below `DISPATCH_LEVEL` is 0xC4/0x40 (P3 the
//! handle); every release below `DISPATCH_LEVEL` is 0xC4/0x32 (P3 the handle); above
//! `DISPATCH_LEVEL` the `…AtDpcLevel`/`…FromDpcLevel` pair is DDI rule `IrqlDispatch` (errata 5)
//! and the restoring releases are 0xC4/0x32.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, MutexGuard, PoisonError,
    },
    time::Instant,
};

use wdk_sys::{PKLOCK_QUEUE_HANDLE, PKSPIN_LOCK};

use super::spin_lock::{self, HELD, QUEUED};
use crate::{
    bugcheck::{code::DRIVER_VERIFIER_DETECTED_VIOLATION, verifier},
    context::{enter, irql, Entry, Hold, LockFamily},
    machine::MachineInner,
    processor::spin_wait,
};

/// `LockQueue.Lock` bit: waiting for the predecessor to hand the lock over.
const WAIT: usize = 1;
/// `LockQueue.Lock` bit: owner of the lock.
const OWNER: usize = 2;
/// Byte offset of `LockQueue.Lock` in a `KLOCK_QUEUE_HANDLE`.
const LOCK_OFFSET: usize = 8;
/// Byte offset of `OldIrql` in a `KLOCK_QUEUE_HANDLE`.
const OLD_IRQL_OFFSET: usize = 16;

const SHARDS: usize = 16;

/// One `KLOCK_QUEUE_HANDLE` in use: filled by an acquire and not yet released.
#[derive(Clone, Copy, Debug)]
struct HandleUse {
    /// The `KSPIN_LOCK` it was filled for.
    lock: usize,
    /// uid of the context that filled it.
    owner: u64,
}

/// The `KLOCK_QUEUE_HANDLE`s in use on one machine, keyed by address (sharded, so contexts
/// using different handles rarely meet on one mutex).
pub struct QueueHandles {
    shards: [Mutex<HashMap<usize, HandleUse>>; SHARDS],
}

impl Default for QueueHandles {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl QueueHandles {
    fn shard(&self, handle: usize) -> MutexGuard<'_, HashMap<usize, HandleUse>> {
        // Fibonacci hashing: handles of different threads often share their low bits.
        let index = (handle as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        #[allow(clippy::cast_possible_truncation, reason = "index < 16")]
        self.shards[index as usize % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `handle` in use; the current use when it already is.
    fn register(&self, handle: usize, filled: HandleUse) -> Result<(), HandleUse> {
        let mut shard = self.shard(handle);
        if let Some(current) = shard.get(&handle) {
            return Err(*current);
        }
        shard.insert(handle, filled);
        Ok(())
    }

    /// Ends the use of `handle`; what it was filled for, if it was in use.
    fn take(&self, handle: usize) -> Option<HandleUse> {
        self.shard(handle).remove(&handle)
    }

    /// Calls `visit(handle, use)` for every handle in use for `lock`, with its shard locked (so
    /// the handle stays in place meanwhile).
    fn for_each_of(&self, lock: usize, mut visit: impl FnMut(usize, HandleUse)) {
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for (&handle, &filled) in shard.iter().filter(|(_, u)| u.lock == lock) {
                visit(handle, filled);
            }
        }
    }
}

/// `LockQueue.Next` of the handle at `node`.
const fn next_of<'a>(node: usize) -> &'a AtomicUsize {
    // SAFETY: `node` is a KLOCK_QUEUE_HANDLE that is in use (registered in QueueHandles): it was
    // checked non-null and 8-byte aligned by its acquire and, by the DDI contract (ddi.md 2 rule
    // 1), stays in place until its release. `LockQueue.Next` is its pointer-sized first field;
    // ntsim only accesses it atomically while the handle is in use.
    unsafe { AtomicUsize::from_ptr(node as *mut usize) }
}

/// `LockQueue.Lock` of the handle at `node`.
const fn lock_of<'a>(node: usize) -> &'a AtomicUsize {
    // SAFETY: as in `next_of`; `LockQueue.Lock` is the pointer-sized field at offset 8.
    unsafe { AtomicUsize::from_ptr((node + LOCK_OFFSET) as *mut usize) }
}

/// Bug checks 0xC4/0xE1 unless `handle` is non-null and 8-byte aligned.
fn check_handle(e: &Entry, handle: PKLOCK_QUEUE_HANDLE) {
    if handle.is_null() || !handle.cast::<u64>().is_aligned() {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [0xE1, handle as u64, 0, 0],
            format!(
                "{} with an invalid or misaligned KLOCK_QUEUE_HANDLE {handle:p}",
                e.ddi
            ),
        );
    }
}

fn name_of(machine: &MachineInner, uid: u64) -> String {
    machine
        .context_name(uid)
        .unwrap_or_else(|| format!("context {uid}"))
}

/// Who owns the queued lock at `lock` and how many wait behind, for hang messages.
pub(crate) fn describe_queue(machine: &MachineInner, lock: usize) -> String {
    let mut owner = None;
    let mut waiting = 0_usize;
    machine.queue_handles.for_each_of(lock, |handle, filled| {
        if lock_of(handle).load(Ordering::Relaxed) & OWNER != 0 {
            owner = Some(filled.owner);
        } else {
            waiting += 1;
        }
    });
    owner.map_or_else(
        || format!(", queued spin lock with {waiting} waiting"),
        |uid| {
            format!(
                ", held through the in-stack queued routines by {} ({waiting} waiting)",
                name_of(machine, uid)
            )
        },
    )
}

/// Acquires `lock` through `handle` (FIFO), the caller being at `DISPATCH_LEVEL` already, and
/// records the hold. `saved` is the IRQL the release restores (raising variants).
fn acquire(
    e: &Entry,
    lock: PKSPIN_LOCK,
    handle: PKLOCK_QUEUE_HANDLE,
    family: LockFamily,
    saved: Option<u8>,
) {
    let word = spin_lock::word(e, lock);
    check_handle(e, handle);
    spin_lock::check_not_owned(e, lock as usize);
    e.machine.lock_order.acquire(e, lock as usize);
    let node = handle as usize;
    let filled = HandleUse {
        lock: lock as usize,
        owner: e.uid,
    };
    if let Err(current) = e.machine.queue_handles.register(node, filled) {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::ACQUIRE_API_MISMATCH,
                lock as u64,
                handle as u64,
                current.lock as u64,
            ],
            format!(
                "{} with KLOCK_QUEUE_HANDLE {handle:p}, which is in use (filled by {} for spin \
                 lock {:#x} and not released): each acquisition needs its own handle",
                e.ddi,
                name_of(&e.machine, current.owner),
                current.lock
            ),
        );
    }
    next_of(node).store(0, Ordering::Relaxed);
    lock_of(node).store(lock as usize | WAIT, Ordering::Relaxed);
    let tail = node as u64 | QUEUED | HELD;
    let previous = loop {
        let current = word.load(Ordering::Relaxed);
        if current != 0 && current & QUEUED == 0 {
            spin_lock::mixed_families(e, lock as usize, false);
        }
        if word
            .compare_exchange_weak(current, tail, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            break current;
        }
        std::hint::spin_loop();
    };
    if previous != 0 {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "a node address read back from the word"
        )]
        let predecessor = (previous & !7) as usize;
        next_of(predecessor).store(node, Ordering::Release);
        let began = Instant::now();
        let mut spins = 0;
        while lock_of(node).load(Ordering::Acquire) & WAIT != 0 {
            spin_wait(e, &mut spins, began, lock as u64, || {
                format!(
                    "queued spin lock {lock:p}{}",
                    describe_queue(&e.machine, lock as usize)
                )
            });
        }
    }
    lock_of(node).store(lock as usize | OWNER, Ordering::Relaxed);
    if let Some(old) = saved {
        // SAFETY: `handle` is a valid, aligned KLOCK_QUEUE_HANDLE (checked above; DDI contract)
        // and `OldIrql` is the byte at offset 16, which only its owner (this context) touches.
        unsafe { handle.cast::<u8>().wrapping_add(OLD_IRQL_OFFSET).write(old) };
    }
    spin_lock::hold(e, lock as usize, family, saved);
}

/// Releases the lock `handle` was filled for, after the handle rules (never filled or filled
/// for another lock: 0xC4/0x1009; filled by another context: 0xC4/0x1004) and the release rules
/// shared with ordinary spin locks (family, order); hands the lock to the next handle in the
/// queue. Returns the hold.
fn release(e: &Entry, handle: PKLOCK_QUEUE_HANDLE, family: LockFamily) -> Hold {
    check_handle(e, handle);
    let node = handle as usize;
    let claimed = lock_of(node).load(Ordering::Relaxed) & !(WAIT | OWNER);
    let Some(filled) = e.machine.queue_handles.take(node) else {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RELEASE_API_MISMATCH,
                claimed as u64,
                handle as u64,
                0,
            ],
            format!(
                "{} with KLOCK_QUEUE_HANDLE {handle:p}, which no acquire filled (or which was \
                 released already)",
                e.ddi
            ),
        );
    };
    if filled.owner != e.uid {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RELEASED_BY_OTHER_THREAD,
                filled.lock as u64,
                filled.owner,
                e.uid,
            ],
            format!(
                "{} with KLOCK_QUEUE_HANDLE {handle:p}, filled by {} for spin lock {:#x}",
                e.ddi,
                name_of(&e.machine, filled.owner),
                filled.lock
            ),
        );
    }
    if filled.lock != claimed {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RELEASE_API_MISMATCH,
                claimed as u64,
                handle as u64,
                filled.lock as u64,
            ],
            format!(
                "{} with KLOCK_QUEUE_HANDLE {handle:p}, which names spin lock {claimed:#x} but \
                 was filled for {:#x}",
                e.ddi, filled.lock
            ),
        );
    }
    let lock = filled.lock as PKSPIN_LOCK;
    let Some(hold) = spin_lock::release_hold(e, filled.lock, family, handle as u64) else {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RELEASED_NOT_ACQUIRED,
                lock as u64,
                handle as u64,
                0,
            ],
            format!("{} of spin lock {lock:p}: no acquisition recorded", e.ddi),
        );
    };
    let word = spin_lock::word(e, lock);
    let tail = node as u64 | QUEUED | HELD;
    let mut next = next_of(node).load(Ordering::Acquire);
    if next == 0 {
        if word
            .compare_exchange(tail, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            lock_of(node).store(filled.lock, Ordering::Relaxed);
            return hold;
        }
        // A successor swapped itself in as the tail and is about to link itself behind us.
        let began = Instant::now();
        let mut spins = 0;
        loop {
            next = next_of(node).load(Ordering::Acquire);
            if next != 0 {
                break;
            }
            spin_wait(e, &mut spins, began, lock as u64, || {
                format!("the successor in the queue of spin lock {lock:p} to link itself")
            });
        }
    }
    lock_of(node).store(filled.lock, Ordering::Relaxed);
    lock_of(next).fetch_and(!WAIT, Ordering::Release);
    hold
}

export! {
    /// Raises to `DISPATCH_LEVEL`, saves the previous IRQL in `LockHandle->OldIrql` and acquires
    /// the lock through the caller's handle, first come first served. IRQL <= `DISPATCH_LEVEL`
    /// (above: 0xC4/0x42). The handle must not be in use (0xC4/0x1008); the lock must not be
    /// held by the caller (0xF) nor through the ordinary routines (0xC4/0x1008).
    fn KeAcquireInStackQueuedSpinLock(SpinLock: PKSPIN_LOCK, LockHandle: PKLOCK_QUEUE_HANDLE) {
        let e = enter("KeAcquireInStackQueuedSpinLock");
        let old = spin_lock::require_at_most_dispatch(&e, SpinLock as u64);
        e.set_irql(irql::DISPATCH);
        acquire(&e, SpinLock, LockHandle, LockFamily::QueuedRaise, Some(old));
    }
}

export! {
    /// Releases the lock `LockHandle` was filled for by `KeAcquireInStackQueuedSpinLock`, hands
    /// it to the next waiter, and restores the saved IRQL. At exactly `DISPATCH_LEVEL` (else
    /// 0xC4/0x32, P3 the handle).
    fn KeReleaseInStackQueuedSpinLock(LockHandle: PKLOCK_QUEUE_HANDLE) {
        let e = enter("KeReleaseInStackQueuedSpinLock");
        spin_lock::require_dispatch_for_release(&e, LockHandle as u64);
        let hold = release(&e, LockHandle, LockFamily::QueuedRaise);
        e.set_irql(hold.saved_irql.unwrap_or(irql::DISPATCH));
    }
}

export! {
    /// Acquires the lock through the caller's handle at `DISPATCH_LEVEL`, IRQL unchanged. At
    /// exactly `DISPATCH_LEVEL` (below: 0xC4/0x40, P3 the handle; above: 0xC4/0x20003).
    fn KeAcquireInStackQueuedSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK, LockHandle: PKLOCK_QUEUE_HANDLE) {
        let e = enter("KeAcquireInStackQueuedSpinLockAtDpcLevel");
        spin_lock::require_dispatch(
            &e,
            LockHandle as u64,
            verifier::ACQUIRE_AT_DPC_LEVEL_BELOW_DISPATCH,
        );
        acquire(&e, SpinLock, LockHandle, LockFamily::QueuedAtDpc, None);
    }
}

export! {
    /// Releases a lock taken with `KeAcquireInStackQueuedSpinLockAtDpcLevel`, IRQL unchanged. At
    /// exactly `DISPATCH_LEVEL` (below: 0xC4/0x32, P3 the handle; above: 0xC4/0x20003).
    fn KeReleaseInStackQueuedSpinLockFromDpcLevel(LockHandle: PKLOCK_QUEUE_HANDLE) {
        let e = enter("KeReleaseInStackQueuedSpinLockFromDpcLevel");
        spin_lock::require_dispatch(&e, LockHandle as u64, verifier::RELEASE_SPIN_LOCK_BAD_IRQL);
        release(&e, LockHandle, LockFamily::QueuedAtDpc);
    }
}

export! {
    /// For a threaded DPC: acquires through the caller's handle, raising a caller below
    /// `DISPATCH_LEVEL` to `DISPATCH_LEVEL` (a caller at `DISPATCH_LEVEL` stays there) and
    /// saving the previous IRQL in the handle. IRQL <= `DISPATCH_LEVEL` (above: 0xC4/0x42).
    fn KeAcquireInStackQueuedSpinLockForDpc(SpinLock: PKSPIN_LOCK, LockHandle: PKLOCK_QUEUE_HANDLE) {
        let e = enter("KeAcquireInStackQueuedSpinLockForDpc");
        let old = spin_lock::require_at_most_dispatch(&e, SpinLock as u64);
        e.set_irql(irql::DISPATCH);
        acquire(&e, SpinLock, LockHandle, LockFamily::QueuedForDpc, Some(old));
    }
}

export! {
    /// Releases a lock taken with `KeAcquireInStackQueuedSpinLockForDpc` and returns to the IRQL
    /// saved at the acquire. At exactly `DISPATCH_LEVEL` (else 0xC4/0x32, P3 the handle).
    fn KeReleaseInStackQueuedSpinLockForDpc(LockHandle: PKLOCK_QUEUE_HANDLE) {
        let e = enter("KeReleaseInStackQueuedSpinLockForDpc");
        spin_lock::require_dispatch_for_release(&e, LockHandle as u64);
        let hold = release(&e, LockHandle, LockFamily::QueuedForDpc);
        e.set_irql(hold.saved_irql.unwrap_or(irql::DISPATCH));
    }
}
