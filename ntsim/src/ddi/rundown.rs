//! Run-down protection (ddi.md 9).
//!
//! `ExInitializeRundownProtection`,
//! `ExAcquireRundownProtection[Ex]`, `ExReleaseRundownProtection[Ex]`,
//! `ExWaitForRundownProtectionRelease`, `ExRundownCompleted`, `ExReInitializeRundownProtection`,
//! and the cache-aware family.
//!
//! The state lives in the driver's `EX_RUNDOWN_REF`, as the header lays it out: bit 0
//! (`EX_RUNDOWN_ACTIVE`) is set once run-down has begun, the rest counts the holders in steps of
//! `EX_RUNDOWN_COUNT_INC` (2). So a word of 0 is a fresh reference, `2n` has `n` holders,
//! `2n + 1` is running down with `n` holders left, and 1 is run down (the wait finished, or
//! `ExRundownCompleted`). Acquires fail once bit 0 is set; the wait returns when the word is 1.
//!
//! Next to the word, the machine tracks which context holds how much protection on which
//! reference ([`Tracker`]). There is no owner (any context may release what another acquired),
//! so a release is charged to the releaser's own acquisitions first, then to the other holders'.
//! This is what detects the one self-deadlock the primitive has: a context that waits for
//! run-down on a reference it still holds.
//!
//! Misuse has no documented bug check; ntsim follows the emulator conventions of ddi.md 13.3:
//! releasing more than was acquired is 0xC4/0x1007 (P2 the reference, P3 the holders, P4 the
//! count released); `ExRundownCompleted`/`ExReInitializeRundownProtection` before the wait has
//! finished is 0xC4/0xE5 (P2 IRQL, P3 the reference, P4 the word); a wait by a context that holds
//! protection on that reference is 0xC4/0x1000 (P2 the reference, P3 what the caller holds, P4
//! all holders). IRQL contracts (stricter of docs and header): acquire and release
//! `<= DISPATCH_LEVEL`, everything else `<= APC_LEVEL`; violations are 0xC4/0xE5 (P2 IRQL, P3 the
//! reference, P4 the highest IRQL allowed).
//!
//! The cache-aware variant is a 128-byte object (`ExSizeOfRundownProtectionCacheAware`): a
//! 64-byte header as on Windows x64 (`RunRefs`, `PoolToFree`, `RunRefSize`, `Number`) and one
//! counter on its own cache line. Windows spreads the count over one counter per processor;
//! ntsim keeps a single counter, which has the same semantics.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard, PoisonError,
    },
};

use wdk_sys::{BOOLEAN, PEX_RUNDOWN_REF, PEX_RUNDOWN_REF_CACHE_AWARE, POOL_TYPE, SIZE_T, ULONG};

use crate::{
    bugcheck::{code, verifier},
    context::{enter, irql, Entry},
    pool::{self, FreeError},
};

/// `EX_RUNDOWN_ACTIVE`.
const ACTIVE: u64 = 0x1;
/// `EX_RUNDOWN_COUNT_INC`.
const INC: u64 = 0x2;

/// Size of ntsim's cache-aware run-down object.
pub const CACHE_AWARE_SIZE: usize = 128;
/// Offset of its counter (an `EX_RUNDOWN_REF` on its own cache line).
const CACHE_AWARE_COUNTER: usize = 64;

/// Which contexts hold run-down protection on which references.
#[derive(Default)]
pub struct Tracker {
    /// Reference address → (context uid → protection held).
    holders: Mutex<HashMap<usize, HashMap<u64, u64>>>,
}

type Holders = HashMap<usize, HashMap<u64, u64>>;

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, Holders> {
        self.holders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Protection held on `addr` by context `uid`.
    #[must_use]
    pub fn held_by(&self, addr: usize, uid: u64) -> u64 {
        self.lock()
            .get(&addr)
            .and_then(|m| m.get(&uid))
            .copied()
            .unwrap_or(0)
    }
}

fn acquired(holders: &mut Holders, addr: usize, uid: u64, n: u64) {
    *holders.entry(addr).or_default().entry(uid).or_default() += n;
}

/// Charges a release of `n` to `uid`'s own holds first, then to the other holders (lowest uid
/// first).
fn released(holders: &mut Holders, addr: usize, uid: u64, n: u64) {
    let Some(map) = holders.get_mut(&addr) else {
        return;
    };
    let mut left = n;
    let mut order: Vec<u64> = map.keys().copied().filter(|&u| u != uid).collect();
    order.sort_unstable();
    order.insert(0, uid);
    for who in order {
        if left == 0 {
            break;
        }
        if let Some(count) = map.get_mut(&who) {
            let take = (*count).min(left);
            *count -= take;
            left -= take;
        }
    }
    map.retain(|_, c| *c > 0);
    if map.is_empty() {
        holders.remove(&addr);
    }
}

fn word<'a>(e: &Entry, run_ref: usize) -> &'a AtomicU64 {
    let ptr = run_ref as *mut u64;
    if ptr.is_null() || !ptr.is_aligned() {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::INVALID_SYNC_OBJECT_ADDRESS, run_ref as u64, 0, 0],
            format!(
                "{} on an invalid or misaligned run-down reference {run_ref:#x}",
                e.ddi
            ),
        );
    }
    // SAFETY: `ptr` is non-null and 8-byte aligned (checked); the DDI contract makes it a
    // resident EX_RUNDOWN_REF that lives while in use, and ntsim only accesses it atomically.
    unsafe { AtomicU64::from_ptr(ptr) }
}

fn require_max(e: &Entry, max: u8, run_ref: usize) {
    let level = e.irql.get();
    if level > max {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(level),
                run_ref as u64,
                u64::from(max),
            ],
            format!("{} at IRQL {level}: requires IRQL <= {max}", e.ddi),
        );
    }
}

fn initialize(e: &Entry, run_ref: usize) {
    require_max(e, irql::APC, run_ref);
    let word = word(e, run_ref);
    let mut holders = e.machine.rundown.lock();
    word.store(0, Ordering::Release);
    holders.remove(&run_ref);
}

fn acquire(e: &Entry, run_ref: usize, n: u32) -> BOOLEAN {
    require_max(e, irql::DISPATCH, run_ref);
    let word = word(e, run_ref);
    let n = u64::from(n);
    let mut holders = e.machine.rundown.lock();
    let mut current = word.load(Ordering::Acquire);
    loop {
        if current & ACTIVE != 0 {
            return 0;
        }
        let Some(next) = n.checked_mul(INC).and_then(|add| current.checked_add(add)) else {
            return 0;
        };
        match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(seen) => current = seen,
        }
    }
    acquired(&mut holders, run_ref, e.uid, n);
    1
}

fn release(e: &Entry, run_ref: usize, n: u32) {
    require_max(e, irql::DISPATCH, run_ref);
    let word = word(e, run_ref);
    let n = u64::from(n);
    let mut holders = e.machine.rundown.lock();
    let mut current = word.load(Ordering::Acquire);
    let next = loop {
        let count = current >> 1;
        if count < n {
            drop(holders);
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::RELEASED_NOT_ACQUIRED, run_ref as u64, count, n],
                format!(
                    "{} of {n} on run-down reference {run_ref:#x}, which has {count} holder(s): \
                     released more than was acquired",
                    e.ddi
                ),
            );
        }
        let next = current - n * INC;
        match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break next,
            Err(seen) => current = seen,
        }
    };
    released(&mut holders, run_ref, e.uid, n);
    drop(holders);
    if next == ACTIVE {
        // The last holder left while run-down is under way: wake the waiter.
        let locked = e.machine.dispatcher.lock();
        e.machine.dispatcher.signal(&locked);
    }
}

fn wait(e: &Entry, run_ref: usize) {
    require_max(e, irql::APC, run_ref);
    let word = word(e, run_ref);
    {
        let holders = e.machine.rundown.lock();
        let map = holders.get(&run_ref);
        let own = map.and_then(|m| m.get(&e.uid)).copied().unwrap_or(0);
        if own > 0 {
            let all: u64 = map.map_or(0, |m| m.values().sum());
            drop(holders);
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::SELF_DEADLOCK, run_ref as u64, own, all],
                format!(
                    "{} on run-down reference {run_ref:#x} by a context that itself holds {own} \
                     of its {all} protection(s): the wait can never end (self-deadlock)",
                    e.ddi
                ),
            );
        }
        if word.fetch_or(ACTIVE, Ordering::AcqRel) >> 1 == 0 {
            return;
        }
    }
    let dispatcher = &e.machine.dispatcher;
    let mut locked = dispatcher.lock();
    loop {
        if word.load(Ordering::Acquire) >> 1 == 0 {
            return;
        }
        let (again, _) = dispatcher.sleep(locked, None);
        locked = again;
        if e.machine.is_dead() || e.machine.is_shutting_down() {
            // Halt without the dispatcher lock: the machine's teardown takes it.
            drop(locked);
            crate::context::halt();
        }
    }
}

/// `ExRundownCompleted` (`reinitialize == false`) or `ExReInitializeRundownProtection`: only on a
/// reference whose run-down wait has finished (the word is exactly `EX_RUNDOWN_ACTIVE`).
fn after_wait(e: &Entry, run_ref: usize, reinitialize: bool) {
    require_max(e, irql::APC, run_ref);
    let word = word(e, run_ref);
    let mut holders = e.machine.rundown.lock();
    let current = word.load(Ordering::Acquire);
    if current != ACTIVE {
        drop(holders);
        let why = if current & ACTIVE == 0 {
            "run-down was never waited for".to_owned()
        } else {
            format!(
                "the run-down wait has not finished ({} holder(s) left)",
                current >> 1
            )
        };
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::API_AT_WRONG_IRQL,
                u64::from(e.irql.get()),
                run_ref as u64,
                current,
            ],
            format!(
                "{} on run-down reference {run_ref:#x}: {why}; it must follow \
                 ExWaitForRundownProtectionRelease",
                e.ddi
            ),
        );
    }
    if reinitialize {
        word.store(0, Ordering::Release);
        holders.remove(&run_ref);
    } else {
        word.store(ACTIVE, Ordering::Release);
    }
}

export! {
    /// Initialises a run-down reference: no holders, not run down. IRQL <= `APC_LEVEL`.
    fn ExInitializeRundownProtection(RunRef: PEX_RUNDOWN_REF) {
        let e = enter("ExInitializeRundownProtection");
        initialize(&e, RunRef as usize);
    }
}

export! {
    /// Acquires protection: TRUE and one more holder, or FALSE (nothing changed) once run-down
    /// has begun. IRQL <= `DISPATCH_LEVEL`.
    fn ExAcquireRundownProtection(RunRef: PEX_RUNDOWN_REF) -> BOOLEAN {
        let e = enter("ExAcquireRundownProtection");
        acquire(&e, RunRef as usize, 1)
    }
}

export! {
    /// Acquires `Count` protections at once (TRUE), or none once run-down has begun (FALSE).
    /// IRQL <= `DISPATCH_LEVEL`.
    fn ExAcquireRundownProtectionEx(RunRef: PEX_RUNDOWN_REF, Count: ULONG) -> BOOLEAN {
        let e = enter("ExAcquireRundownProtectionEx");
        acquire(&e, RunRef as usize, Count)
    }
}

export! {
    /// Releases one protection; the last release during run-down wakes the waiter. Releasing
    /// more than was acquired is 0xC4/0x1007. IRQL <= `DISPATCH_LEVEL`.
    fn ExReleaseRundownProtection(RunRef: PEX_RUNDOWN_REF) {
        let e = enter("ExReleaseRundownProtection");
        release(&e, RunRef as usize, 1);
    }
}

export! {
    /// Releases `Count` protections (see `ExReleaseRundownProtection`). IRQL <= `DISPATCH_LEVEL`.
    fn ExReleaseRundownProtectionEx(RunRef: PEX_RUNDOWN_REF, Count: ULONG) {
        let e = enter("ExReleaseRundownProtectionEx");
        release(&e, RunRef as usize, Count);
    }
}

export! {
    /// Begins run-down (every later acquire fails) and blocks until the last holder has
    /// released; returns at once when there is none or run-down already finished. A context that
    /// itself holds protection on the reference is 0xC4/0x1000 (self-deadlock). IRQL <=
    /// `APC_LEVEL`.
    fn ExWaitForRundownProtectionRelease(RunRef: PEX_RUNDOWN_REF) {
        let e = enter("ExWaitForRundownProtectionRelease");
        wait(&e, RunRef as usize);
    }
}

export! {
    /// Marks run-down complete: later waits return at once, acquires still fail. Only after the
    /// wait finished (else 0xC4/0xE5, emulator convention). IRQL <= `APC_LEVEL`.
    fn ExRundownCompleted(RunRef: PEX_RUNDOWN_REF) {
        let e = enter("ExRundownCompleted");
        after_wait(&e, RunRef as usize, false);
    }
}

export! {
    /// Makes a run-down reference usable again (acquires succeed). Only after the wait finished
    /// (else 0xC4/0xE5, emulator convention). IRQL <= `APC_LEVEL`.
    fn ExReInitializeRundownProtection(RunRef: PEX_RUNDOWN_REF) {
        let e = enter("ExReInitializeRundownProtection");
        after_wait(&e, RunRef as usize, true);
    }
}

/// The counter of a cache-aware reference (checked non-null and aligned).
fn counter(e: &Entry, run_ref: PEX_RUNDOWN_REF_CACHE_AWARE) -> usize {
    let base = run_ref.cast::<u64>();
    if base.is_null() || !base.is_aligned() {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::INVALID_SYNC_OBJECT_ADDRESS, run_ref as u64, 0, 0],
            format!(
                "{} on an invalid cache-aware run-down reference {run_ref:p}",
                e.ddi
            ),
        );
    }
    run_ref as usize + CACHE_AWARE_COUNTER
}

/// Writes the header of a cache-aware reference at `base` and initialises its counter.
///
/// # Safety
/// `base` must be writable for [`CACHE_AWARE_SIZE`] bytes and 8-byte aligned.
unsafe fn write_cache_aware(e: &Entry, base: *mut u8, pool_to_free: usize) {
    // SAFETY: forwarded caller guarantee: the whole object is writable.
    unsafe { base.write_bytes(0, CACHE_AWARE_SIZE) };
    #[allow(
        clippy::cast_ptr_alignment,
        reason = "8-byte aligned (caller contract)"
    )]
    let header = base.cast::<u64>();
    let counter = base as usize + CACHE_AWARE_COUNTER;
    // SAFETY: offset 0 (`RunRefs`) is inside the object and 8-aligned.
    unsafe { header.write(counter as u64) };
    // SAFETY: offset 8 (`PoolToFree`) is inside the object and 8-aligned.
    unsafe { header.wrapping_add(1).write(pool_to_free as u64) };
    // SAFETY: offset 16 (`RunRefSize` = 8, `Number` = 1 as two ULONGs) is inside and aligned.
    unsafe { header.wrapping_add(2).write(8 | (1 << 32)) };
    initialize(e, counter);
}

export! {
    /// The size of a cache-aware run-down object, for `ExInitializeRundownProtectionCacheAware`.
    /// IRQL <= `APC_LEVEL`.
    fn ExSizeOfRundownProtectionCacheAware() -> SIZE_T {
        let e = enter("ExSizeOfRundownProtectionCacheAware");
        require_max(&e, irql::APC, 0);
        CACHE_AWARE_SIZE as SIZE_T
    }
}

export! {
    /// Initialises a cache-aware reference in caller storage of `RunRefSize` bytes, which must be
    /// at least `ExSizeOfRundownProtectionCacheAware()` (smaller storage would be overwritten on
    /// Windows; ntsim reports it as 0xC4/0xE1 with P3 the size given, P4 the size needed).
    /// IRQL <= `APC_LEVEL`.
    fn ExInitializeRundownProtectionCacheAware(
        RunRefCacheAware: PEX_RUNDOWN_REF_CACHE_AWARE,
        RunRefSize: SIZE_T,
    ) {
        let e = enter("ExInitializeRundownProtectionCacheAware");
        require_max(&e, irql::APC, RunRefCacheAware as usize);
        counter(&e, RunRefCacheAware);
        if usize::try_from(RunRefSize).unwrap_or(usize::MAX) < CACHE_AWARE_SIZE {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [
                    verifier::INVALID_SYNC_OBJECT_ADDRESS,
                    RunRefCacheAware as u64,
                    RunRefSize,
                    CACHE_AWARE_SIZE as u64,
                ],
                format!(
                    "ExInitializeRundownProtectionCacheAware({RunRefCacheAware:p}, {RunRefSize}): \
                     the object needs {CACHE_AWARE_SIZE} bytes"
                ),
            );
        }
        // SAFETY: the storage is non-null, aligned (checked by `counter`) and, per the DDI
        // contract and the size check, writable for CACHE_AWARE_SIZE bytes.
        unsafe { write_cache_aware(&e, RunRefCacheAware.cast(), 0) };
    }
}

export! {
    /// Allocates and initialises a cache-aware reference from pool with `PoolTag` (charged to
    /// the driver; free it with `ExFreeCacheAwareRundownProtection`). NULL when pool is
    /// exhausted. IRQL <= `APC_LEVEL`.
    fn ExAllocateCacheAwareRundownProtection(PoolType: POOL_TYPE, PoolTag: ULONG) -> PEX_RUNDOWN_REF_CACHE_AWARE {
        let e = enter("ExAllocateCacheAwareRundownProtection");
        require_max(&e, irql::APC, 0);
        let _ = PoolType;
        let block = pool::allocate(Some(e.machine.pool), CACHE_AWARE_SIZE, 64, PoolTag, true);
        if block.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: a fresh, 64-byte aligned pool block of CACHE_AWARE_SIZE bytes.
        unsafe { write_cache_aware(&e, block, block as usize) };
        block.cast()
    }
}

export! {
    /// Frees a reference from `ExAllocateCacheAwareRundownProtection` (anything else is 0xC2/0x7,
    /// as freeing a block that is not allocated). IRQL <= `APC_LEVEL`.
    fn ExFreeCacheAwareRundownProtection(RunRefCacheAware: PEX_RUNDOWN_REF_CACHE_AWARE) {
        let e = enter("ExFreeCacheAwareRundownProtection");
        require_max(&e, irql::APC, RunRefCacheAware as usize);
        let counter = counter(&e, RunRefCacheAware);
        match pool::free_checked(e.machine.pool, RunRefCacheAware.cast(), None) {
            Ok(()) => {
                e.machine.rundown.lock().remove(&counter);
            }
            Err(FreeError::NotLive | FreeError::WrongTag { .. }) => e.bugcheck(
                code::BAD_POOL_CALLER,
                [0x7, 0, RunRefCacheAware as u64, 0],
                format!(
                    "ExFreeCacheAwareRundownProtection({RunRefCacheAware:p}): not a reference \
                     allocated by ExAllocateCacheAwareRundownProtection (or already freed)"
                ),
            ),
        }
    }
}

export! {
    /// `ExAcquireRundownProtection` on a cache-aware reference. IRQL <= `DISPATCH_LEVEL`.
    fn ExAcquireRundownProtectionCacheAware(RunRefCacheAware: PEX_RUNDOWN_REF_CACHE_AWARE) -> BOOLEAN {
        let e = enter("ExAcquireRundownProtectionCacheAware");
        let counter = counter(&e, RunRefCacheAware);
        acquire(&e, counter, 1)
    }
}

export! {
    /// `ExAcquireRundownProtectionEx` on a cache-aware reference. IRQL <= `DISPATCH_LEVEL`.
    fn ExAcquireRundownProtectionCacheAwareEx(
        RunRefCacheAware: PEX_RUNDOWN_REF_CACHE_AWARE,
        Count: ULONG,
    ) -> BOOLEAN {
        let e = enter("ExAcquireRundownProtectionCacheAwareEx");
        let counter = counter(&e, RunRefCacheAware);
        acquire(&e, counter, Count)
    }
}

export! {
    /// `ExReleaseRundownProtection` on a cache-aware reference. IRQL <= `DISPATCH_LEVEL`.
    fn ExReleaseRundownProtectionCacheAware(RunRefCacheAware: PEX_RUNDOWN_REF_CACHE_AWARE) {
        let e = enter("ExReleaseRundownProtectionCacheAware");
        let counter = counter(&e, RunRefCacheAware);
        release(&e, counter, 1);
    }
}

export! {
    /// `ExReleaseRundownProtectionEx` on a cache-aware reference. IRQL <= `DISPATCH_LEVEL`.
    fn ExReleaseRundownProtectionCacheAwareEx(RunRef: PEX_RUNDOWN_REF_CACHE_AWARE, Count: ULONG) {
        let e = enter("ExReleaseRundownProtectionCacheAwareEx");
        let counter = counter(&e, RunRef);
        release(&e, counter, Count);
    }
}

export! {
    /// `ExWaitForRundownProtectionRelease` on a cache-aware reference. IRQL <= `APC_LEVEL`.
    fn ExWaitForRundownProtectionReleaseCacheAware(RunRef: PEX_RUNDOWN_REF_CACHE_AWARE) {
        let e = enter("ExWaitForRundownProtectionReleaseCacheAware");
        let counter = counter(&e, RunRef);
        wait(&e, counter);
    }
}

export! {
    /// `ExRundownCompleted` on a cache-aware reference. IRQL <= `APC_LEVEL`.
    fn ExRundownCompletedCacheAware(RunRefCacheAware: PEX_RUNDOWN_REF_CACHE_AWARE) {
        let e = enter("ExRundownCompletedCacheAware");
        let counter = counter(&e, RunRefCacheAware);
        after_wait(&e, counter, false);
    }
}

export! {
    /// `ExReInitializeRundownProtection` on a cache-aware reference. IRQL <= `APC_LEVEL`.
    fn ExReInitializeRundownProtectionCacheAware(RunRefCacheAware: PEX_RUNDOWN_REF_CACHE_AWARE) {
        let e = enter("ExReInitializeRundownProtectionCacheAware");
        let counter = counter(&e, RunRefCacheAware);
        after_wait(&e, counter, true);
    }
}
