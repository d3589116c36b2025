//! Interlocked lists and `SList`s (ddi.md 10.3).
//!
//! `ExInterlockedInsertHeadList`,
//! `ExInterlockedInsertTailList`, `ExInterlockedRemoveHeadList` on doubly linked `LIST_ENTRY`
//! lists guarded by a `KSPIN_LOCK`, and the sequenced singly linked lists (`SLIST_HEADER`):
//! `InitializeSListHead` (what `ExInitializeSListHead` expands to),
//! `ExpInterlockedPushEntrySList`, `ExpInterlockedPopEntrySList`, `ExpInterlockedFlushSList`
//! (what the `ExInterlocked…SList` macros expand to on x64, errata 3 and ddi.md 0.4),
//! `ExQueryDepthSList`.
//!
//! The `ExInterlocked…List` routines take the caller's spin lock for the duration of the call,
//! as Windows does: through ntsim's spin-lock code, at `DISPATCH_LEVEL` (raised for the call
//! when the caller is below), so a lock the caller already holds is 0xF and another holder makes
//! them spin. Callable at any IRQL.
//!
//! `SLIST_HEADER` keeps the x64 layout (`HeaderX64`): word 0 = `Depth` (16 bits) | `Sequence`
//! (48 bits), word 1 = `NextEntry` (the first entry's address; entries are 16-byte aligned) with
//! 4 reserved low bits. Windows updates both words with one 16-byte compare-and-swap; ntsim
//! serialises the operations on a header with a host lock instead (same atomicity, no ABA).
//! Callable at any IRQL. A header or entry that is not 16-byte aligned is 0xC4/0xE1 (emulator
//! convention: Windows would corrupt the list).

use std::sync::{Mutex, MutexGuard, PoisonError};

use wdk_sys::{PKSPIN_LOCK, PLIST_ENTRY, PSLIST_ENTRY, PSLIST_HEADER, USHORT};

use crate::{
    bugcheck::{code, verifier},
    context::{enter, irql, Entry, Hold, LockFamily},
    ddi::spin_lock::{spin_acquire, spin_release},
};

/// Runs `f` holding `lock` at `DISPATCH_LEVEL` or above, as the `ExInterlocked…List` routines
/// do.
fn with_lock<R>(e: &Entry, lock: PKSPIN_LOCK, f: impl FnOnce() -> R) -> R {
    let old = e.irql.get();
    if old < irql::DISPATCH {
        e.set_irql(irql::DISPATCH);
    }
    spin_acquire(e, lock);
    e.held.borrow_mut().push(Hold {
        addr: lock as usize,
        family: LockFamily::Interlocked,
        saved_irql: Some(old),
        acquired_by: e.ddi,
    });
    let result = f();
    spin_release(e, lock, LockFamily::Interlocked);
    if old < irql::DISPATCH {
        e.set_irql(old);
    }
    result
}

fn check_entries(e: &Entry, head: PLIST_ENTRY, entry: Option<PLIST_ENTRY>) {
    for p in std::iter::once(head).chain(entry) {
        if p.is_null() || !p.is_aligned() {
            e.bugcheck(
                code::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [verifier::INVALID_SYNC_OBJECT_ADDRESS, p as u64, 0, 0],
                format!("{} with an invalid LIST_ENTRY {p:p}", e.ddi),
            );
        }
    }
}

/// `Some(p)` unless `p` is the list head (an empty list's neighbour).
fn unless_head(p: PLIST_ENTRY, head: PLIST_ENTRY) -> PLIST_ENTRY {
    if p == head {
        std::ptr::null_mut()
    } else {
        p
    }
}

export! {
    /// Inserts `ListEntry` at the head of the list under `Lock`; returns the previous first
    /// entry, or NULL when the list was empty. Any IRQL.
    fn ExInterlockedInsertHeadList(ListHead: PLIST_ENTRY, ListEntry: PLIST_ENTRY, Lock: PKSPIN_LOCK) -> PLIST_ENTRY {
        let e = enter("ExInterlockedInsertHeadList");
        check_entries(&e, ListHead, Some(ListEntry));
        with_lock(&e, Lock, || {
            // SAFETY: the head is an initialised list head and the entry is not on a list (DDI
            // contract); both are valid and aligned (checked); `Lock` serialises every change.
            let first = unsafe { (*ListHead).Flink };
            // SAFETY: as above; `first` is a live entry of the list (or the head).
            unsafe {
                (*ListEntry).Flink = first;
            }
            // SAFETY: as above.
            unsafe {
                (*ListEntry).Blink = ListHead;
            }
            // SAFETY: as above.
            unsafe {
                (*first).Blink = ListEntry;
            }
            // SAFETY: as above.
            unsafe {
                (*ListHead).Flink = ListEntry;
            }
            unless_head(first, ListHead)
        })
    }
}

export! {
    /// Inserts `ListEntry` at the tail of the list under `Lock`; returns the previous last
    /// entry, or NULL when the list was empty. Any IRQL.
    fn ExInterlockedInsertTailList(ListHead: PLIST_ENTRY, ListEntry: PLIST_ENTRY, Lock: PKSPIN_LOCK) -> PLIST_ENTRY {
        let e = enter("ExInterlockedInsertTailList");
        check_entries(&e, ListHead, Some(ListEntry));
        with_lock(&e, Lock, || {
            // SAFETY: as in ExInterlockedInsertHeadList.
            let last = unsafe { (*ListHead).Blink };
            // SAFETY: as above; `last` is a live entry of the list (or the head).
            unsafe {
                (*ListEntry).Flink = ListHead;
            }
            // SAFETY: as above.
            unsafe {
                (*ListEntry).Blink = last;
            }
            // SAFETY: as above.
            unsafe {
                (*last).Flink = ListEntry;
            }
            // SAFETY: as above.
            unsafe {
                (*ListHead).Blink = ListEntry;
            }
            unless_head(last, ListHead)
        })
    }
}

export! {
    /// Removes and returns the first entry under `Lock`, or NULL when the list is empty. Any
    /// IRQL.
    fn ExInterlockedRemoveHeadList(ListHead: PLIST_ENTRY, Lock: PKSPIN_LOCK) -> PLIST_ENTRY {
        let e = enter("ExInterlockedRemoveHeadList");
        check_entries(&e, ListHead, None);
        with_lock(&e, Lock, || {
            // SAFETY: the head is an initialised list head (DDI contract), valid and aligned
            // (checked); `Lock` serialises every change.
            let first = unsafe { (*ListHead).Flink };
            if first == ListHead {
                return std::ptr::null_mut();
            }
            // SAFETY: `first` is a live entry of the list.
            let next = unsafe { (*first).Flink };
            // SAFETY: as above.
            unsafe {
                (*ListHead).Flink = next;
            }
            // SAFETY: `next` is a live entry of the list (or the head).
            unsafe {
                (*next).Blink = ListHead;
            }
            first
        })
    }
}

/// Host locks serialising the operations on `SLIST_HEADER`s, striped by address.
static SLIST_LOCKS: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];

fn slist_lock(header: PSLIST_HEADER) -> MutexGuard<'static, ()> {
    let index = (header as usize >> 4) % SLIST_LOCKS.len();
    SLIST_LOCKS[index]
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

const DEPTH_MASK: u64 = 0xFFFF;
const RESERVED_MASK: u64 = 0xF;

fn check_aligned16(e: &Entry, p: usize) {
    if p == 0 || !p.is_multiple_of(16) {
        e.bugcheck(
            code::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [verifier::INVALID_SYNC_OBJECT_ADDRESS, p as u64, 16, 0],
            format!(
                "{} with {p:#x}: SList headers and entries are 16-byte aligned",
                e.ddi
            ),
        );
    }
}

/// The two words of a header.
const fn words(header: PSLIST_HEADER) -> (*mut u64, *mut u64) {
    let w = header.cast::<u64>();
    (w, w.wrapping_add(1))
}

/// Reads (depth/sequence word, next-entry word). Caller holds the header's lock.
///
/// # Safety
/// `header` must be a valid, 16-byte aligned `SLIST_HEADER`.
unsafe fn read(header: PSLIST_HEADER) -> (u64, u64) {
    let (w0, w1) = words(header);
    // SAFETY: forwarded caller guarantee; both words are inside the header.
    let a = unsafe { w0.read_volatile() };
    // SAFETY: as above.
    let b = unsafe { w1.read_volatile() };
    (a, b)
}

/// Writes a new first entry and depth, bumping the sequence. Caller holds the header's lock.
///
/// # Safety
/// `header` must be a valid, 16-byte aligned `SLIST_HEADER`.
unsafe fn write(header: PSLIST_HEADER, old: (u64, u64), first: u64, depth: u64) {
    let (w0, w1) = words(header);
    let sequence = (old.0 >> 16).wrapping_add(1) & 0xFFFF_FFFF_FFFF;
    // SAFETY: forwarded caller guarantee.
    unsafe { w0.write_volatile((sequence << 16) | (depth & DEPTH_MASK)) };
    // SAFETY: as above.
    unsafe { w1.write_volatile(first | (old.1 & RESERVED_MASK)) };
}

export! {
    /// Initialises an `SLIST_HEADER` to the empty list (what `ExInitializeSListHead` expands
    /// to). Any IRQL.
    fn InitializeSListHead(SListHead: PSLIST_HEADER) {
        let e = enter("InitializeSListHead");
        check_aligned16(&e, SListHead as usize);
        let _guard = slist_lock(SListHead);
        let (w0, w1) = words(SListHead);
        // SAFETY: a valid, 16-byte aligned header (checked; DDI contract).
        unsafe { w0.write_volatile(0) };
        // SAFETY: as above.
        unsafe { w1.write_volatile(0) };
    }
}

export! {
    /// Pushes `ListEntry` onto the list; returns the previous first entry, or NULL when the list
    /// was empty. Any IRQL.
    fn ExpInterlockedPushEntrySList(ListHead: PSLIST_HEADER, ListEntry: PSLIST_ENTRY) -> PSLIST_ENTRY {
        let e = enter("ExpInterlockedPushEntrySList");
        check_aligned16(&e, ListHead as usize);
        check_aligned16(&e, ListEntry as usize);
        let _guard = slist_lock(ListHead);
        // SAFETY: a valid, aligned header (checked; DDI contract); its lock is held.
        let old = unsafe { read(ListHead) };
        let first = old.1 & !RESERVED_MASK;
        // SAFETY: the entry is valid, aligned (checked) and not on a list (DDI contract).
        unsafe { (*ListEntry).Next = first as PSLIST_ENTRY };
        let depth = (old.0 & DEPTH_MASK).wrapping_add(1);
        // SAFETY: as above.
        unsafe { write(ListHead, old, ListEntry as u64, depth) };
        first as PSLIST_ENTRY
    }
}

export! {
    /// Pops the first entry, or returns NULL when the list is empty. Any IRQL.
    fn ExpInterlockedPopEntrySList(ListHead: PSLIST_HEADER) -> PSLIST_ENTRY {
        let e = enter("ExpInterlockedPopEntrySList");
        check_aligned16(&e, ListHead as usize);
        let _guard = slist_lock(ListHead);
        // SAFETY: a valid, aligned header (checked; DDI contract); its lock is held.
        let old = unsafe { read(ListHead) };
        let first = old.1 & !RESERVED_MASK;
        if first == 0 {
            return std::ptr::null_mut();
        }
        let entry = first as PSLIST_ENTRY;
        // SAFETY: `entry` is on the list, so it is a live, aligned SLIST_ENTRY (DDI contract).
        let next = unsafe { (*entry).Next } as u64;
        let depth = (old.0 & DEPTH_MASK).wrapping_sub(1);
        // SAFETY: as above.
        unsafe { write(ListHead, old, next, depth) };
        entry
    }
}

export! {
    /// Empties the list and returns its former first entry (the chain stays linked), or NULL.
    /// Any IRQL.
    fn ExpInterlockedFlushSList(ListHead: PSLIST_HEADER) -> PSLIST_ENTRY {
        let e = enter("ExpInterlockedFlushSList");
        check_aligned16(&e, ListHead as usize);
        let _guard = slist_lock(ListHead);
        // SAFETY: a valid, aligned header (checked; DDI contract); its lock is held.
        let old = unsafe { read(ListHead) };
        let first = old.1 & !RESERVED_MASK;
        if first != 0 {
            // SAFETY: as above.
            unsafe { write(ListHead, old, 0, 0) };
        }
        first as PSLIST_ENTRY
    }
}

export! {
    /// The number of entries on the list (a snapshot). Any IRQL.
    fn ExQueryDepthSList(ListHead: PSLIST_HEADER) -> USHORT {
        let e = enter("ExQueryDepthSList");
        check_aligned16(&e, ListHead as usize);
        let _guard = slist_lock(ListHead);
        // SAFETY: a valid, aligned header (checked; DDI contract); its lock is held.
        let (w0, _) = unsafe { read(ListHead) };
        USHORT::try_from(w0 & DEPTH_MASK).unwrap_or(USHORT::MAX)
    }
}
