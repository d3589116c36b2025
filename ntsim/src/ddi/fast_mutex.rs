//! Fast mutexes (`FAST_MUTEX`), ddi.md section 4, and the mutex core that guarded mutexes
//! (`KGUARDED_MUTEX`, the same structure since Windows 8, section 5) share.
//!
//! `ExInitializeFastMutex` is `FORCEINLINE` in the WDK, so the driver initialises the 56-byte
//! structure itself (ddi.md 0.4): `Count = 1` (`FM_LOCK_BIT` set means *free*), `Owner = NULL`,
//! `Contention = 0`, and `KeInitializeEvent(&Event, SynchronizationEvent, FALSE)`. ntsim keeps its
//! whole state in the structure, as Windows does:
//!
//! - `Count` is the lock word, used as an atomic: bit 0 set = free; bits 2 and up count the
//!   contexts sleeping for it (in units of 4, Windows' `FM_LOCK_WAITER_INC`); bit 1 is never set.
//! - `Owner` is the owning thread (the value `PsGetCurrentThread` returns to it).
//! - `Contention` counts acquires that had to wait.
//! - `OldIrql` holds the IRQL the safe acquire raised from; the release restores it.
//! - `Event` is only checked: its header must say "synchronization event, not signaled". Waiters
//!   sleep on the machine's dispatcher condition variable instead (ddi.md 8: one lock for all
//!   blocking, so wake-ups cannot be lost).
//!
//! A structure in any other state on use is "not initialised" (0xC4/0x1002). The contended
//! acquire blocks; it never spins.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU8, AtomicUsize, Ordering};

use wdk_sys::{BOOLEAN, PFAST_MUTEX};

use crate::{
    bugcheck::{
        code::{
            DRIVER_VERIFIER_DETECTED_VIOLATION, KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE,
            MUTEX_ALREADY_OWNED,
        },
        verifier,
    },
    context::{self, enter, irql, Ctx, Entry, Hold, LockFamily},
    dispatcher::{self, object_type},
};

/// Byte offset of `Owner` in `FAST_MUTEX`.
const OWNER: usize = 8;
/// Byte offset of `Contention`.
const CONTENTION: usize = 16;
/// Byte offset of `Event` (a `KEVENT`, 24 bytes).
const EVENT: usize = 24;
/// Byte offset of `Event.Header.Size`.
const EVENT_SIZE: usize = EVENT + 2;
/// Byte offset of `Event.Header.SignalState`.
const EVENT_SIGNAL_STATE: usize = EVENT + dispatcher::SIGNAL_STATE_OFFSET;
/// Byte offset of `Event.Header.WaitListHead`.
const EVENT_WAIT_LIST: usize = EVENT + 8;
/// Byte offset of `OldIrql`.
const OLD_IRQL: usize = 48;

/// `FM_LOCK_BIT`: set while the mutex is free.
const FREE: i32 = 1;
/// Bit 1 is not used by ntsim's encoding; set means the structure was never initialised.
const RESERVED: i32 = 2;
/// One sleeping waiter.
const WAITER: i32 = 4;

/// The value `PsGetCurrentThread` returns on `ctx`: the thread object, or (for a context that
/// is not a system thread) a stable identity derived from its uid. Lock owners are recorded as
/// this value.
#[must_use]
pub(crate) fn thread_value(ctx: &Ctx) -> usize {
    if ctx.thread_object == 0 {
        usize::try_from(ctx.uid).unwrap_or(usize::MAX) << 4
    } else {
        ctx.thread_object
    }
}

/// The fields of one `FAST_MUTEX` that ntsim reads and writes concurrently, as atomics.
pub(crate) struct MutexView<'a> {
    addr: usize,
    count: &'a AtomicI32,
    owner: &'a AtomicUsize,
    contention: &'a AtomicU32,
    old_irql: &'a AtomicU32,
    event_type: &'a AtomicU8,
    event_signal: &'a AtomicI32,
}

impl MutexView<'_> {
    /// The mutex address, as bug check parameters show it.
    pub(crate) const fn addr(&self) -> u64 {
        self.addr as u64
    }
}

/// Views the driver's `FAST_MUTEX` at `mutex`; a null or misaligned pointer is 0xC4/0xE1.
pub(crate) fn view<'a>(e: &Entry, mutex: PFAST_MUTEX) -> MutexView<'a> {
    if mutex.is_null() || !mutex.cast::<u64>().is_aligned() {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [0xE1, mutex as u64, 0, 0],
            format!("{} on an invalid or misaligned mutex {mutex:p}", e.ddi),
        );
    }
    let base = mutex.cast::<u8>();
    // SAFETY: `mutex` is non-null and 8-byte aligned (checked above); the DDI contract makes it
    // a 56-byte FAST_MUTEX in resident memory that stays valid while it is in use; the fields
    // ntsim shares between threads are accessed through atomics only, each at an offset aligned
    // for its type. `Count` is the LONG at offset 0.
    let count = unsafe { AtomicI32::from_ptr(base.cast()) };
    // SAFETY: as above; `Owner` is the pointer-sized field at offset 8.
    let owner = unsafe { AtomicUsize::from_ptr(base.wrapping_add(OWNER).cast()) };
    // SAFETY: as above; `Contention` is the ULONG at offset 16.
    let contention = unsafe { AtomicU32::from_ptr(base.wrapping_add(CONTENTION).cast()) };
    // SAFETY: as above; `OldIrql` is the ULONG at offset 48.
    let old_irql = unsafe { AtomicU32::from_ptr(base.wrapping_add(OLD_IRQL).cast()) };
    // SAFETY: as above; `Event.Header.Type` is the byte at offset 24.
    let event_type = unsafe { AtomicU8::from_ptr(base.wrapping_add(EVENT)) };
    // SAFETY: as above; `Event.Header.SignalState` is the LONG at offset 28.
    let event_signal = unsafe { AtomicI32::from_ptr(base.wrapping_add(EVENT_SIGNAL_STATE).cast()) };
    MutexView {
        addr: mutex as usize,
        count,
        owner,
        contention,
        old_irql,
        event_type,
        event_signal,
    }
}

/// Bug checks 0xC4/0x1002 unless the mutex is in a state ntsim's initialisation or use produces:
/// a synchronization event that is not signaled, and a lock word with bit 1 clear and a
/// non-negative waiter count.
pub(crate) fn check_initialised(e: &Entry, v: &MutexView<'_>) {
    let count = v.count.load(Ordering::Relaxed);
    let event_type = v.event_type.load(Ordering::Relaxed);
    let signal = v.event_signal.load(Ordering::Relaxed);
    if count < 0
        || count & RESERVED != 0
        || event_type != object_type::EVENT_SYNCHRONIZATION
        || signal != 0
    {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::UNINITIALIZED_LOCK, v.addr(), 0, 0],
            format!(
                "{} on mutex {:#x}, which is not initialised (Count {count:#x}, Event type \
                 {event_type}, signal state {signal}); initialise it as ExInitializeFastMutex \
                 does: Count = 1, Owner = NULL, Contention = 0, KeInitializeEvent(&Event, \
                 SynchronizationEvent, FALSE)",
                e.ddi, v.addr
            ),
        );
    }
}

/// Bug checks 0xBF (`MUTEX_ALREADY_OWNED`, P1 mutex, P2 thread) when the caller already holds
/// the mutex: on Windows the acquire would wait for itself forever (emulator convention).
pub(crate) fn check_not_recursive(e: &Entry, v: &MutexView<'_>) {
    if let Some(index) = e.find_hold(v.addr) {
        let by = e.held.borrow()[index].acquired_by;
        e.bugcheck(
            MUTEX_ALREADY_OWNED,
            [v.addr(), thread_value(e) as u64, 0, 0],
            format!(
                "{} of mutex {:#x}, which this thread already holds (acquired with {by}): \
                 fast and guarded mutexes are not recursive, Windows would deadlock",
                e.ddi, v.addr
            ),
        );
    }
}

/// One attempt to take the lock word; true when it is now ours.
fn try_take_word(v: &MutexView<'_>) -> bool {
    let mut current = v.count.load(Ordering::Relaxed);
    while current & FREE != 0 {
        match v.count.compare_exchange_weak(
            current,
            current & !FREE,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
    false
}

/// Records the caller as owner of a mutex whose lock word it just took. A free mutex has no
/// owner: one left in `Owner` means the structure was never initialised.
fn set_owner(e: &Entry, v: &MutexView<'_>) {
    let previous = v.owner.swap(thread_value(e), Ordering::Relaxed);
    if previous != 0 {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::UNINITIALIZED_LOCK, v.addr(), 0, 0],
            format!(
                "{} on mutex {:#x}: Count says free but Owner is {previous:#x}; the structure \
                 is not an initialised FAST_MUTEX",
                e.ddi, v.addr
            ),
        );
    }
}

/// Halts the caller (releasing `locked` first) when its machine died or is being torn down.
fn halt_if_stopped<'a>(e: &Entry, locked: dispatcher::Locked<'a>) -> dispatcher::Locked<'a> {
    if e.machine.is_dead() || e.machine.is_shutting_down() {
        drop(locked);
        context::halt();
    }
    locked
}

/// Takes the mutex, sleeping on the dispatcher while another thread holds it.
pub(crate) fn take(e: &Entry, v: &MutexView<'_>) {
    if !try_take_word(v) {
        v.contention.fetch_add(1, Ordering::Relaxed);
        let dispatcher = &e.machine.dispatcher;
        let mut locked = dispatcher.lock();
        // Registered as a sleeper under the dispatcher lock: a release that frees the word after
        // this sees the waiter and signals under the same lock, so the wake-up cannot be lost.
        v.count.fetch_add(WAITER, Ordering::Relaxed);
        loop {
            let current = v.count.load(Ordering::Relaxed);
            if current & FREE != 0 {
                if v.count
                    .compare_exchange(
                        current,
                        current - FREE - WAITER,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    break;
                }
                continue;
            }
            let (again, _) = dispatcher.sleep(locked, None);
            locked = halt_if_stopped(e, again);
        }
        drop(locked);
    }
    set_owner(e, v);
}

/// One attempt: true when the mutex is now owned by the caller.
pub(crate) fn try_take(e: &Entry, v: &MutexView<'_>) -> bool {
    if try_take_word(v) {
        set_owner(e, v);
        true
    } else {
        false
    }
}

/// Records a hold of the mutex acquired through `family` (saving `saved_irql` in the mutex too
/// when the acquire raised IRQL).
pub(crate) fn hold(e: &Entry, v: &MutexView<'_>, family: LockFamily, saved_irql: Option<u8>) {
    if let Some(old) = saved_irql {
        v.old_irql.store(u32::from(old), Ordering::Relaxed);
    }
    e.held.borrow_mut().push(Hold {
        addr: v.addr,
        family,
        saved_irql,
        acquired_by: e.ddi,
    });
}

/// Checks that the caller holds the mutex through `family` and that releasing it now keeps
/// IRQL-restoring releases in reverse order; removes the hold, frees the mutex (waking sleepers)
/// and returns the IRQL saved in the mutex by the acquire.
///
/// Not held by the caller: 0xC4/0x1004 when another thread holds it, 0xC4/0x1007 when nobody
/// does (Deadlock Detection, ddi.md 12.4); with deadlock detection off, `AutoBoost`'s 0x162.
pub(crate) fn release(e: &Entry, v: &MutexView<'_>, family: LockFamily) -> u8 {
    let me = thread_value(e);
    let mut holds = e.held.borrow_mut();
    let Some(index) = holds.iter().rposition(|h| h.addr == v.addr) else {
        drop(holds);
        not_owned(e, v, me);
    };
    let hold = holds[index].clone();
    if hold.family != family {
        drop(holds);
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::RELEASE_API_MISMATCH, v.addr(), 0, 0],
            format!(
                "{} releases mutex {:#x}, acquired with {}: the release must match the acquire \
                 (safe and Unsafe, fast and guarded routines are not interchangeable)",
                e.ddi, v.addr, hold.acquired_by
            ),
        );
    }
    if family.restores_irql() {
        if let Some(later) = holds[index + 1..].iter().find(|h| h.family.restores_irql()) {
            let (later_addr, later_by) = (later.addr, later.acquired_by);
            drop(holds);
            e.bugcheck(
                DRIVER_VERIFIER_DETECTED_VIOLATION,
                [
                    verifier::RELEASED_OUT_OF_ORDER,
                    v.addr(),
                    later_addr as u64,
                    0,
                ],
                format!(
                    "{} of {:#x} before {later_addr:#x} (acquired after it with {later_by}): \
                     IRQL-restoring locks must be released in reverse order",
                    e.ddi, v.addr
                ),
            );
        }
    }
    holds.remove(index);
    drop(holds);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the acquire stored an IRQL (<= APC_LEVEL) there"
    )]
    let saved = v.old_irql.load(Ordering::Relaxed) as u8;
    v.owner.store(0, Ordering::Relaxed);
    let previous = v.count.fetch_or(FREE, Ordering::Release);
    debug_assert_eq!(previous & FREE, 0, "a held mutex has FM_LOCK_BIT clear");
    if previous >= WAITER {
        let locked = e.machine.dispatcher.lock();
        e.machine.dispatcher.signal(&locked);
    }
    saved
}

/// The release of a mutex the caller does not hold.
fn not_owned(e: &Entry, v: &MutexView<'_>, me: usize) -> ! {
    let held_by_someone = v.count.load(Ordering::Relaxed) & FREE == 0;
    let owner = v.owner.load(Ordering::Relaxed);
    if !e.machine.config.deadlock_detection {
        e.bugcheck(
            KERNEL_AUTO_BOOST_INVALID_LOCK_RELEASE,
            [me as u64, v.addr(), 0, 0],
            format!(
                "{} of mutex {:#x}, which this thread does not own (`AutoBoost` lock tracking)",
                e.ddi, v.addr
            ),
        );
    }
    if held_by_someone {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::RELEASED_BY_OTHER_THREAD,
                v.addr(),
                owner as u64,
                me as u64,
            ],
            format!(
                "{} of mutex {:#x}, which is held by thread {owner:#x}, not the caller",
                e.ddi, v.addr
            ),
        );
    }
    e.bugcheck(
        DRIVER_VERIFIER_DETECTED_VIOLATION,
        [verifier::RELEASED_NOT_ACQUIRED, v.addr(), 0, 0],
        format!("{} of mutex {:#x}, which is not held", e.ddi, v.addr),
    );
}

/// Writes the initial state (`ExInitializeFastMutex`'s, which `KeInitializeGuardedMutex` shares):
/// free, no owner, no contention, a non-signaled synchronization event. Re-initialising a mutex
/// that is held is 0xC4/0x1005.
pub(crate) fn initialise(e: &Entry, mutex: PFAST_MUTEX) {
    let v = view(e, mutex);
    let count = v.count.load(Ordering::Relaxed);
    let looks_held = count >= 0
        && count & (FREE | RESERVED) == 0
        && v.owner.load(Ordering::Relaxed) != 0
        && v.event_type.load(Ordering::Relaxed) == object_type::EVENT_SYNCHRONIZATION;
    if looks_held {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::LOCK_INITIALIZED_TWICE, v.addr(), 0, 0],
            format!(
                "{} of mutex {:#x}, which is held by thread {:#x}",
                e.ddi,
                v.addr,
                v.owner.load(Ordering::Relaxed)
            ),
        );
    }
    v.owner.store(0, Ordering::Relaxed);
    v.contention.store(0, Ordering::Relaxed);
    v.event_signal.store(0, Ordering::Relaxed);
    v.event_type
        .store(object_type::EVENT_SYNCHRONIZATION, Ordering::Relaxed);
    let base = mutex.cast::<u8>();
    // SAFETY: `view` checked that `mutex` is non-null and aligned; the DDI contract makes it a
    // writable FAST_MUTEX that nobody uses while it is initialised. Header byte 2 is `Size`, in
    // 4-byte units (a KEVENT is 24 bytes).
    unsafe { AtomicU8::from_ptr(base.wrapping_add(EVENT_SIZE)) }.store(6, Ordering::Relaxed);
    let list = base.wrapping_add(EVENT_WAIT_LIST) as usize;
    // SAFETY: as above; the empty wait list points to itself (Flink at +0, Blink at +8, both
    // 8-byte aligned).
    unsafe { AtomicUsize::from_ptr(base.wrapping_add(EVENT_WAIT_LIST).cast()) }
        .store(list, Ordering::Relaxed);
    // SAFETY: as above.
    unsafe { AtomicUsize::from_ptr(base.wrapping_add(EVENT_WAIT_LIST + 8).cast()) }
        .store(list, Ordering::Relaxed);
    v.count.store(FREE, Ordering::Release);
}

/// True when normal kernel APCs are disabled (ddi.md 0.3): a critical or guarded region, or
/// IRQL >= `APC_LEVEL`.
pub(crate) fn normal_apcs_disabled(e: &Entry) -> bool {
    e.irql.get() >= irql::APC || e.kernel_apc_disable.get() != 0 || e.special_apc_disable.get() != 0
}

/// Bug checks 0xC4 with `subcode` (P2 IRQL, P3 `CombinedApcDisable`, P4 lock).
pub(crate) fn apc_violation(e: &Entry, subcode: u64, lock: u64, why: &str) -> ! {
    let level = e.irql.get();
    e.bugcheck(
        DRIVER_VERIFIER_DETECTED_VIOLATION,
        [
            subcode,
            u64::from(level),
            u64::from(e.combined_apc_disable()),
            lock,
        ],
        format!(
            "{} on {lock:#x} at IRQL {level} with CombinedApcDisable {:#x}: {why}",
            e.ddi,
            e.combined_apc_disable()
        ),
    )
}

/// `ExAcquireFastMutex` / `ExTryToAcquireFastMutex` precondition: IRQL <= `APC_LEVEL`
/// (0xC4/0x33, P2 IRQL, P3 mutex).
fn require_acquire_irql(e: &Entry, mutex: PFAST_MUTEX) {
    let level = e.irql.get();
    if level > irql::APC {
        e.bugcheck(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [
                verifier::FAST_MUTEX_ACQUIRE_IRQL,
                u64::from(level),
                mutex as u64,
                0,
            ],
            format!("{} at IRQL {level}: requires <= APC_LEVEL", e.ddi),
        );
    }
}

/// The Unsafe routines' precondition: APCs already disabled, i.e. IRQL exactly `APC_LEVEL`, or
/// below it inside a critical or guarded region (ddi.md 4 rule 5, 13.2).
fn require_unsafe_state(e: &Entry, mutex: PFAST_MUTEX, subcode: u64) {
    let level = e.irql.get();
    let in_region = e.kernel_apc_disable.get() != 0 || e.special_apc_disable.get() != 0;
    if level > irql::APC || (level < irql::APC && !in_region) {
        apc_violation(
            e,
            subcode,
            mutex as u64,
            "the Unsafe fast-mutex routines need IRQL == APC_LEVEL or a critical/guarded region",
        );
    }
}

export! {
    /// Acquires a fast mutex: raises to `APC_LEVEL`, saves the previous IRQL in the mutex, and
    /// waits (sleeping, not spinning) while another thread owns it. IRQL <= `APC_LEVEL` (above:
    /// 0xC4/0x33). Not recursive (0xBF).
    fn ExAcquireFastMutex(FastMutex: PFAST_MUTEX) {
        let e = enter("ExAcquireFastMutex");
        require_acquire_irql(&e, FastMutex);
        let v = view(&e, FastMutex);
        check_initialised(&e, &v);
        check_not_recursive(&e, &v);
        e.machine.lock_order.acquire(&e, v.addr);
        let old = e.irql.get();
        e.set_irql(irql::APC);
        take(&e, &v);
        hold(&e, &v, LockFamily::FastMutex, Some(old));
    }
}

export! {
    /// One attempt to acquire a fast mutex: TRUE when now owned (raised to `APC_LEVEL`, previous
    /// IRQL saved), FALSE at once when it is busy (nothing changed; also when the caller owns
    /// it, as on Windows). IRQL <= `APC_LEVEL` (above: 0xC4/0x33).
    fn ExTryToAcquireFastMutex(FastMutex: PFAST_MUTEX) -> BOOLEAN {
        let e = enter("ExTryToAcquireFastMutex");
        require_acquire_irql(&e, FastMutex);
        let v = view(&e, FastMutex);
        check_initialised(&e, &v);
        let old = e.irql.get();
        e.set_irql(irql::APC);
        if try_take(&e, &v) {
            hold(&e, &v, LockFamily::FastMutex, Some(old));
            1
        } else {
            e.set_irql(old);
            0
        }
    }
}

export! {
    /// Releases a fast mutex taken with `ExAcquireFastMutex`/`ExTryToAcquireFastMutex` and
    /// restores the IRQL saved by the acquire. At exactly `APC_LEVEL` (else 0xC4/0x34, P2 IRQL,
    /// P3 `CombinedApcDisable`, P4 mutex); by the owner (else 0xC4/0x1004 or 0x1007); with the
    /// matching routine (else 0xC4/0x1009); in reverse order of IRQL-restoring acquires (else
    /// 0xC4/0x1003).
    fn ExReleaseFastMutex(FastMutex: PFAST_MUTEX) {
        let e = enter("ExReleaseFastMutex");
        if e.irql.get() != irql::APC {
            apc_violation(
                &e,
                verifier::FAST_MUTEX_RELEASE_IRQL,
                FastMutex as u64,
                "ExReleaseFastMutex requires exactly APC_LEVEL",
            );
        }
        let v = view(&e, FastMutex);
        check_initialised(&e, &v);
        let saved = release(&e, &v, LockFamily::FastMutex);
        e.set_irql(saved);
    }
}

export! {
    /// Acquires a fast mutex without changing IRQL or the APC state. The caller must already
    /// have APCs disabled: IRQL `APC_LEVEL`, or a critical or guarded region below it (else
    /// 0xC4/0x39, P2 IRQL, P3 `CombinedApcDisable`, P4 mutex). Not recursive (0xBF).
    fn ExAcquireFastMutexUnsafe(FastMutex: PFAST_MUTEX) {
        let e = enter("ExAcquireFastMutexUnsafe");
        require_unsafe_state(&e, FastMutex, verifier::UNSAFE_MUTEX_ACQUIRE_APCS_ENABLED);
        let v = view(&e, FastMutex);
        check_initialised(&e, &v);
        check_not_recursive(&e, &v);
        e.machine.lock_order.acquire(&e, v.addr);
        take(&e, &v);
        hold(&e, &v, LockFamily::FastMutexUnsafe, None);
    }
}

export! {
    /// Releases a fast mutex taken with `ExAcquireFastMutexUnsafe`; IRQL unchanged. Same APC
    /// precondition as the acquire (else 0xC4/0x3A); owner and matching-routine checks as
    /// `ExReleaseFastMutex`.
    fn ExReleaseFastMutexUnsafe(FastMutex: PFAST_MUTEX) {
        let e = enter("ExReleaseFastMutexUnsafe");
        require_unsafe_state(&e, FastMutex, verifier::UNSAFE_MUTEX_RELEASE_APCS_ENABLED);
        let v = view(&e, FastMutex);
        check_initialised(&e, &v);
        release(&e, &v, LockFamily::FastMutexUnsafe);
    }
}

/// Host-side inspection: how many contexts are asleep waiting for the mutex at `mutex`.
///
/// For tests and tools, not a DDI: lets a test wait until a thread is really blocked in an
/// acquire.
///
/// # Safety
/// `mutex` must point to a live, 8-byte aligned `FAST_MUTEX`.
#[must_use]
pub unsafe fn sleeping_waiters(mutex: *const wdk_sys::FAST_MUTEX) -> u32 {
    // SAFETY: the caller guarantees a live, aligned FAST_MUTEX; `Count` is its first LONG and
    // ntsim accesses it atomically only.
    let count = unsafe { AtomicI32::from_ptr(mutex.cast_mut().cast()) }.load(Ordering::Relaxed);
    u32::try_from(count.max(0) / WAITER).unwrap_or(0)
}
